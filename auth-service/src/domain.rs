//! Parsed request values: a value of these types is valid by construction.

use secrecy::{ExposeSecret, SecretString};
use shared::FieldError;

/// A username: 3..=32 of `[A-Za-z0-9_.-]`, unique case-insensitively.
#[derive(Clone, Debug)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !(3..=32).contains(&raw.len()) {
            Err(FieldError::new(
                "username",
                "must be 3 to 32 characters long",
            ))
        } else if !valid_chars {
            Err(FieldError::new(
                "username",
                "may contain only letters, digits, '_', '.' and '-'",
            ))
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    /// As given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive form the uniqueness index is on.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A new password: 8..=128 characters of any kind, never truncated, not the username.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Parses a password for `username`.
    pub fn parse(raw: SecretString, username: Option<&Username>) -> Result<Self, FieldError> {
        let chars = raw.expose_secret().chars().count();
        if !(8..=128).contains(&chars) {
            return Err(FieldError::new(
                "password",
                "must be 8 to 128 characters long",
            ));
        }
        if username.is_some_and(|u| u.as_str().eq_ignore_ascii_case(raw.expose_secret())) {
            return Err(FieldError::new("password", "must differ from the username"));
        }
        Ok(Self(raw))
    }

    /// The secret.
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// An email address: one `@`, a non-empty local part, a dotted domain, no spaces, <= 254 bytes.
#[derive(Clone, Debug)]
pub struct Email(String);

impl Email {
    /// Parses an email address.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("email", "is not a valid email address");
        if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').count() >= 2
            && domain
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if local.is_empty() || local.len() > 64 || domain.contains('@') || !labels_ok {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }

    /// As given.
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_passwords_and_emails_are_checked() {
        for bad in ["ab", "a b c", "ünïcode", &"x".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        let alice = Username::parse("Alice.B-2").unwrap();
        assert_eq!(alice.key(), "alice.b-2");
        assert!(NewPassword::parse(SecretString::from("short"), None).is_err());
        assert!(NewPassword::parse(SecretString::from("ALICE.B-2"), Some(&alice)).is_err());
        assert!(NewPassword::parse(SecretString::from("пароль-пароль"), Some(&alice)).is_ok());
        for bad in ["a@b", "@x.io", "a b@x.io", "a@x..io", "a@@x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse("a.b+c@example.co.uk").is_ok());
    }
}
