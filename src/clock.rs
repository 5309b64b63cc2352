//! The one place that reads the time. A run reads it once per planning round
//! and hands it down; the executor reads it when it stamps an effect (a record
//! published, a certificate deployed). Decisions never read it themselves.
//!
//! Builds with the `test-hooks` feature (the test suite) can start the clock at
//! another time: `CRYPTDOMAINMGR_TEST_NOW=2030-01-01T00:00:00Z` makes the
//! process's clock start there and run at the normal rate, so that tests move
//! days and years ahead without sleeping.

use chrono::{DateTime, Utc};

/// The current time.
pub(crate) fn now() -> DateTime<Utc> {
    #[cfg(feature = "test-hooks")]
    if let Some(now) = test_clock::now() {
        return now;
    }
    Utc::now()
}

#[cfg(feature = "test-hooks")]
mod test_clock {
    use std::sync::OnceLock;
    use std::time::Instant;

    use chrono::{DateTime, Utc};

    /// The environment variable that sets the start of the test clock.
    const VARIABLE: &str = "CRYPTDOMAINMGR_TEST_NOW";

    /// The configured start and the instant the process first read it.
    static START: OnceLock<Option<(DateTime<Utc>, Instant)>> = OnceLock::new();

    pub(super) fn now() -> Option<DateTime<Utc>> {
        let (start, read_at) = START.get_or_init(|| {
            let text = std::env::var(VARIABLE).ok()?;
            match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(at) => Some((at.with_timezone(&Utc), Instant::now())),
                Err(e) => {
                    log::error!("{VARIABLE}={text:?} is not an RFC 3339 time ({e}); using the system clock");
                    None
                }
            }
        })
        .as_ref()?;
        let elapsed = chrono::Duration::from_std(read_at.elapsed()).unwrap_or_default();
        Some(*start + elapsed)
    }
}
