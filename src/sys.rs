//! The few calls into C that the standard library and the crates do not
//! offer (libc; AWS-LC's RSA generator for sizes aws-lc-rs does not make),
//! each wrapped safely here: the only module allowed `unsafe` code.
#![allow(unsafe_code)]

use std::ffi::CString;

/// Whether the program runs as root (effective user id 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no side effects.
    unsafe { libc::geteuid() == 0 }
}

/// Sends SIGKILL to the process group `leader` leads (a child we started with
/// `process_group(0)` and have not reaped).
pub(crate) fn kill_process_group(leader: u32) {
    if let Ok(pid) = i32::try_from(leader) {
        // SAFETY: kill(2) has no memory effects; a stale group id only fails.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Kills this process at once with SIGKILL (no destructors, no flush): a crash.
#[cfg(feature = "test-hooks")]
pub(crate) fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// Stops this process with SIGSTOP, as a stalled host would be, until a
/// SIGCONT.
#[cfg(feature = "test-hooks")]
pub(crate) fn stop_self() {
    // SAFETY: kill(2) on our own pid has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGSTOP);
    }
}

/// This host's name (`gethostname(2)`), or `None` when it cannot be read.
pub(crate) fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The user id of the account `name` in the system's account database.
pub(crate) fn user_id(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all pointers are valid for the call; the buffer outlives it and
    // `pwd` is only read when getpwnam_r reported success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(pwd.pw_uid)
    }
}

/// The group id of the group `name` in the system's account database.
pub(crate) fn group_id(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in `user_id`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            c_name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
    }
}

/// A new RSA key of `bits` (public exponent 65537) from AWS-LC's generator,
/// as PKCS#1 DER; `None` when the generator fails.
pub(crate) fn rsa_generate_pkcs1(bits: u32) -> Option<Vec<u8>> {
    use aws_lc_sys::{
        BN_free, BN_new, BN_set_word, OPENSSL_free, RSA_free, RSA_generate_key_ex, RSA_new,
        RSA_private_key_to_bytes,
    };
    let bits = libc::c_int::try_from(bits).ok()?;
    // SAFETY: every pointer is checked for null before use and freed exactly
    // once on every path; the output buffer is copied before it is freed.
    unsafe {
        let e = BN_new();
        if e.is_null() {
            return None;
        }
        let rsa = RSA_new();
        if rsa.is_null() {
            BN_free(e);
            return None;
        }
        let generated = BN_set_word(e, 65537) == 1
            && RSA_generate_key_ex(rsa, bits, e, std::ptr::null_mut()) == 1;
        BN_free(e);
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len: usize = 0;
        let encoded = generated && RSA_private_key_to_bytes(&mut out, &mut len, rsa) == 1;
        RSA_free(rsa);
        if !encoded || out.is_null() {
            return None;
        }
        let pkcs1 = std::slice::from_raw_parts(out, len).to_vec();
        OPENSSL_free(out.cast());
        Some(pkcs1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_resolve_and_unknown_ones_do_not() {
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(user_id("no-such-user-cdm"), None);
        assert_eq!(user_id("nul\0byte"), None);
    }
}
