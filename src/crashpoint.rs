//! Crash points for the crash-safety tests: when the environment variable
//! `CRYPTDOMAINMGR_CRASH_AT` names a step, the process kills itself there with
//! SIGKILL, as a power loss or `kill -9` would, so a test can check that a
//! re-run completes the phase.
//!
//! Only builds with the `test-hooks` feature (which the test suite turns on)
//! have them; in every other build [`reached`] is empty and the variable is
//! never read.

/// Every crash point, with the phase that reaches it: each follows a side
/// effect (a file, a DNS change, an ACME request) and precedes the state
/// update that records it. `tests/crash_steps.rs` crashes at each in turn.
#[cfg(feature = "test-hooks")]
pub const STEPS: &[(&str, &str)] = &[
    // First: an --auto run writes the policy only once (tests/auto_crash.rs).
    ("update", "mtasts:written"),
    ("update", "zone:applied"),
    ("prepare", "prepare:key-written"),
    ("prepare", "prepare:order-created"),
    ("prepare", "dns01:published"),
    ("prepare", "prepare:issued"),
    ("prepare", "dkim:journaled"),
    ("prepare", "dkim:key-written"),
    ("prepare", "dhparam:generated"),
    ("prepare", "zone:applied"),
    ("rollover", "rollover:version-written"),
    ("rollover", "rollover:deployed"),
    ("rollover", "dkim:installed"),
    ("rollover", "dhparam:deployed"),
    ("rollover", "services:before-reload"),
    ("cleanup", "cleanup:removed"),
];

/// Kills the process if `step` is the configured crash point; stops it
/// (SIGSTOP, as a stalled host would be) if it is `CRYPTDOMAINMGR_PAUSE_AT`.
#[cfg(feature = "test-hooks")]
pub fn reached(step: &str) {
    if std::env::var("CRYPTDOMAINMGR_PAUSE_AT").is_ok_and(|v| v == step) {
        log::error!("pause point {step} reached: stopping the process (CRYPTDOMAINMGR_PAUSE_AT)");
        crate::sys::stop_self();
    }
    if std::env::var("CRYPTDOMAINMGR_CRASH_AT").is_ok_and(|v| v == step) {
        debug_assert!(
            STEPS.iter().any(|(_, s)| *s == step),
            "unlisted crash point {step}"
        );
        log::error!("crash point {step} reached: killing the process (CRYPTDOMAINMGR_CRASH_AT)");
        crate::sys::kill_self();
    }
}

/// Without test hooks a crash point is nothing.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn reached(_step: &str) {}
