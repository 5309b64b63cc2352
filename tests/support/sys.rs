//! The libc calls the test harnesses need, in one place: the only test code
//! allowed `unsafe`.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// kill(2): `sig` to `pid` (a negative pid: that process group). Returns
/// kill's result (0 on success).
pub fn signal(pid: i32, sig: libc::c_int) -> i32 {
    // SAFETY: kill(2) has no memory effects; the callers signal their own
    // children (or the groups those lead), which they have not reaped.
    unsafe { libc::kill(pid, sig) }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no side effects.
    unsafe { libc::geteuid() == 0 }
}

/// Makes `command`'s child start with `umask`.
pub fn umask_in_child(command: &mut Command, umask: u32) {
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
}
