//! The one backoff policy for everything that asks again: ACME requests, API
//! calls that answered "try later", and polls for a state to change. The delay
//! doubles with each attempt up to a cap; a caller that honours a server's
//! `Retry-After` takes the longer of the two.

use std::time::Duration;

/// Exponential backoff: `first`, doubled per attempt, never above `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Attempts in all (the first try included) before giving up.
    pub attempts: u32,
}

impl Backoff {
    /// The wait after attempt `attempt` (1 for the first try) failed.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// Whether attempt `attempt` was the last one allowed.
    pub(crate) fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.attempts
    }

    /// The successive waits of a poll that never gives up on its own (the
    /// caller has its deadline): `first`, `2 × first`, … capped at `max`.
    pub(crate) fn waits(self) -> impl Iterator<Item = Duration> {
        (1..).map(move |attempt| self.delay(attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = Backoff {
            first: Duration::from_millis(250),
            max: Duration::from_secs(1),
            attempts: 4,
        };
        let delays: Vec<u128> = (1..=5).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 1000, 1000]);
        assert!(!policy.exhausted(3));
        assert!(policy.exhausted(4));
        let waits: Vec<u128> = policy.waits().take(4).map(|d| d.as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 1000]);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let policy = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
            attempts: 3,
        };
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(8));
        assert_eq!(policy.delay(0), Duration::from_secs(1));
    }
}
