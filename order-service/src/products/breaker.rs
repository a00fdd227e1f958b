//! The circuit breaker around product-service (the `failsafe` crate's state machine): after
//! `failures` consecutive failed attempts it opens and calls fail fast without touching the
//! network; after an open period (jittered, doubling up to a maximum while failures go on) it lets
//! calls through again, and the first success closes it.

use std::time::Duration;

use failsafe::StateMachine;
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use rand::Rng;

/// The breaker type.
pub type Breaker = StateMachine<ConsecutiveFailures<OpenPeriods>, BreakerLog>;

/// Builds a breaker.
pub fn breaker(failures: u32, open: Duration, max_open: Duration) -> Breaker {
    let periods = OpenPeriods {
        start: open.max(Duration::from_millis(10)),
        max: max_open.max(open),
        attempt: 0,
    };
    failsafe::Config::new()
        .failure_policy(consecutive_failures(failures.max(1), periods))
        .instrument(BreakerLog)
        .build()
}

/// Open periods: `start * 2^n` up to `max`, with equal jitter (half fixed, half random), so that
/// replicas do not all probe product-service at the same instant. Millisecond resolution.
#[derive(Clone, Debug)]
pub struct OpenPeriods {
    start: Duration,
    max: Duration,
    attempt: u32,
}

impl Iterator for OpenPeriods {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let full = self
            .start
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = full / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        Some(half + Duration::from_millis(jitter))
    }
}

/// Logs the breaker's transitions.
#[derive(Clone, Copy, Debug)]
pub struct BreakerLog;

impl failsafe::Instrument for BreakerLog {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        tracing::warn!("product-service circuit opened: failing fast");
    }

    fn on_half_open(&self) {
        tracing::info!("product-service circuit half-open: probing");
    }

    fn on_closed(&self) {
        tracing::info!("product-service circuit closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_closes_after_a_success() {
        let b = breaker(3, Duration::from_millis(20), Duration::from_millis(40));
        for _ in 0..3 {
            assert!(b.is_call_permitted());
            b.on_error();
        }
        assert!(!b.is_call_permitted(), "open after three failures");
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.is_call_permitted(), "half-open after the open period");
        b.on_success();
        assert!(b.is_call_permitted(), "closed again");
    }

    #[test]
    fn open_periods_grow_up_to_the_maximum() {
        let periods: Vec<Duration> = OpenPeriods {
            start: Duration::from_millis(100),
            max: Duration::from_millis(400),
            attempt: 0,
        }
        .take(5)
        .collect();
        assert!(
            periods[0] >= Duration::from_millis(50) && periods[0] <= Duration::from_millis(100)
        );
        assert!(
            periods[4] >= Duration::from_millis(200) && periods[4] <= Duration::from_millis(400)
        );
    }
}
