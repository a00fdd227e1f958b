//! Abuse limits: how many orders one user may place per minute, per replica.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::Problem;

/// A token bucket per user id for `POST /orders`. Kept in memory: each replica limits on its own,
/// so the effective limit is at most the configured one times the number of replicas.
#[derive(Clone)]
pub struct OrderRateLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl OrderRateLimiter {
    /// `per_minute` orders a minute per user with bursts of `burst`; `per_minute == 0` turns the
    /// limit off.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let Some(per_minute) = NonZeroU32::new(per_minute) else {
            return Self { limiter: None };
        };
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::keyed(
            Quota::per_minute(per_minute).allow_burst(burst),
        ));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(limiter) => limiter.retain_recent(),
                    None => break,
                }
            }
        });
        Self {
            limiter: Some(limiter),
        }
    }

    /// Takes one order from `user_id`'s bucket, or answers 429 with `Retry-After`.
    pub fn check(&self, user_id: &str) -> Result<(), Problem> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&user_id.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::info!(user.id = %user_id, "order rate limit reached");
            Problem::too_many_requests(
                wait.as_secs() + 1,
                "too many orders in a short time; retry later",
            )
        })
    }
}
