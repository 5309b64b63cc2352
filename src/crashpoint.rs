//! Crash points for the crash-safety tests: when the environment variable
//! `CRYPTDOMAINMGR_CRASH_AT` names a step, the process aborts there, as if it had
//! been killed, so a test can check that a re-run completes the phase. Without
//! the variable this does nothing.

/// Aborts the process if `step` is the configured crash point.
pub fn reached(step: &str) {
    if std::env::var("CRYPTDOMAINMGR_CRASH_AT").is_ok_and(|v| v == step) {
        log::error!("crash point {step} reached: aborting (CRYPTDOMAINMGR_CRASH_AT)");
        std::process::abort();
    }
}
