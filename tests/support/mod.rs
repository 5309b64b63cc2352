//! Test servers started on loopback by the tests themselves (see TESTING.md).
//! Temporary: the shared version (with knot.rs) lands from another branch.
#![allow(dead_code)]

pub mod pebble;

/// Whether `binary` is installed. Under `CI=true` a missing binary fails the
/// test; otherwise it prints a loud SKIPPED line and the test passes.
pub fn require(binary: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(binary).is_file())
    });
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{binary} is not installed, but CI=true: run scripts/test.sh");
        }
        eprintln!("SKIPPED: {binary} not installed, run scripts/test.sh");
    }
    found
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A free port usable for both UDP and TCP on 127.0.0.1 (for DNS servers).
pub fn free_udp_tcp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
