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

/// Makes `command`'s child run in a mount namespace of its own in which
/// `source` is bind-mounted over `target` (a private `/etc/resolv.conf`).
pub fn bind_mount_in_child(command: &mut Command, source: &std::path::Path, target: &str) {
    use std::ffi::CString;
    let source = CString::new(source.display().to_string()).expect("path");
    let target = CString::new(target).expect("path");
    let root = CString::new("/").expect("path");
    // SAFETY: between fork and exec only async-signal-safe calls (unshare,
    // mount) on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
