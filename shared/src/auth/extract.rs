use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::header;
use http::request::Parts;

use super::{AuthError, Claims, Role, Verifier};
use crate::problem::Problem;

/// A user authenticated by a valid access token. Service-client tokens are refused with 403.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// The user id (`sub`).
    pub id: String,
    /// The username.
    pub username: String,
    /// The role.
    pub role: Role,
}

impl AuthUser {
    /// Whether the user is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whose resources the user may act on, as a filter on the owner: `None` (anyone's) for an
    /// admin, else the user's own id.
    pub fn owner_filter(&self) -> Option<&str> {
        (!self.is_admin()).then_some(self.id.as_str())
    }
}

/// A user whose role is admin; anyone else gets 403.
#[derive(Clone, Debug)]
pub struct AdminUser(pub AuthUser);

/// A scope a [`ServiceClient`] must hold.
pub trait RequiredScope: Send + Sync {
    /// The scope name.
    const SCOPE: &'static str;
}

/// The scope order-service needs to reserve stock.
#[derive(Clone, Copy, Debug)]
pub struct StockReserve;

impl RequiredScope for StockReserve {
    const SCOPE: &'static str = "stock:reserve";
}

/// A service client (client-credentials token) holding scope `S`; user tokens get 403.
#[derive(Clone, Debug)]
pub struct ServiceClient<S: RequiredScope> {
    /// The client id.
    pub client_id: String,
    /// Every scope of the token.
    pub scopes: Vec<String>,
    _scope: PhantomData<S>,
}

/// Verifies the bearer token of a request.
pub async fn claims_of(parts: &Parts, verifier: &Verifier) -> Result<Arc<Claims>, Problem> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(false));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        tracing::debug!("authorization header is not a bearer token");
        return Err(Problem::unauthorized(true));
    };
    verifier.verify(token).await.map_err(|err| match err {
        AuthError::KeysUnavailable => {
            tracing::warn!("token refused: signing keys not fetched yet");
            Problem::unavailable(2, "token verification is not available yet; retry shortly")
        }
        other => {
            tracing::debug!(reason = %other, "token refused");
            Problem::unauthorized(true)
        }
    })
}

impl<S> FromRequestParts<S> for AuthUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = claims_of(parts, &Verifier::from_ref(state)).await?;
        match (claims.role, &claims.username, &claims.client_id) {
            (Some(role), Some(username), None) => Ok(AuthUser {
                id: claims.sub.clone(),
                username: username.clone(),
                role,
            }),
            _ => Err(Problem::forbidden(
                "this route is for users, not service clients",
            )),
        }
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(AdminUser(user))
        } else {
            Err(Problem::forbidden("this route is for admins"))
        }
    }
}

impl<St, S> FromRequestParts<St> for ServiceClient<S>
where
    Verifier: FromRef<St>,
    St: Send + Sync,
    S: RequiredScope,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let claims = claims_of(parts, &Verifier::from_ref(state)).await?;
        match &claims.client_id {
            Some(client_id) if claims.has_scope(S::SCOPE) => Ok(ServiceClient {
                client_id: client_id.clone(),
                scopes: claims.scopes().map(str::to_owned).collect(),
                _scope: PhantomData,
            }),
            _ => Err(Problem::forbidden(format!(
                "this route needs a service token with scope {}",
                S::SCOPE
            ))),
        }
    }
}

/// Any valid access token, a user's or a service client's: for read-only routes.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Arc<Claims>);

impl Authenticated {
    /// The user id when the caller is a user.
    pub fn user_id(&self) -> Option<&str> {
        self.0.client_id.is_none().then_some(self.0.sub.as_str())
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        claims_of(parts, &Verifier::from_ref(state))
            .await
            .map(Authenticated)
    }
}
