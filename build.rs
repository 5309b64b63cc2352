//! Links the program with packed relative relocations (DT_RELR) where the C
//! library it is built against can load them.
//!
//! A position-independent executable carries one 24-byte relocation for every
//! pointer in its read-only data (vtables, string tables): 44,000 of them,
//! 1.1 MB of the binary. Packed, they take 4 KB. The dynamic loader of glibc
//! 2.36 (Debian 12) and later applies them, and the binary then requires it
//! (the Debian package declares it: Cargo.toml). Built against an older glibc,
//! or when the version cannot be told (cross builds), the program is linked as
//! before. README, "Build".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_is_gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    if target_is_gnu_linux && native && host_glibc().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The version of the build machine's glibc, from `getconf GNU_LIBC_VERSION`
/// ("glibc 2.36").
fn host_glibc() -> Option<(u32, u32)> {
    let output = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let version = text.trim().strip_prefix("glibc ")?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
