//! The planner decides and does nothing else: no file in `src/plan/` (outside
//! its unit tests) reads the clock, the disk, the network or the environment,
//! runs a program, or uses the modules that do (`apply`, `observe`, `clock`,
//! providers' I/O). The time comes in as `Input::now`; what the world holds
//! comes in as `Observed`.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::path::Path;

/// What a pure module never names.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::io",
    "std::net::Tcp",
    "std::net::Udp",
    "std::process",
    "std::env",
    "std::thread",
    "SystemTime",
    "Instant",
    "Utc::now",
    "Local::now",
    "tokio",
    "reqwest",
    "async fn",
    ".await",
    "crate::apply",
    "crate::observe",
    "crate::clock",
    "crate::http",
    "crate::publicip",
    "crate::acme::http",
    "crate::state::Store",
    "crate::state::load",
    "crate::state::save",
    "DnsProvider",
    "read_to_string",
];

#[test]
fn no_file_in_plan_does_io_or_reads_the_clock() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan");
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests may build their fixtures any way they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("src/plan/{name}:{}: {word}", number + 1));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files in {}", dir.display());
    assert!(
        found.is_empty(),
        "I/O in the planner:\n{}",
        found.join("\n")
    );
}

/// The check itself finds what it looks for (it would pass vacuously if it
/// read nothing).
#[test]
fn the_check_sees_a_forbidden_name() {
    let sample = "use std::fs::read;\nlet now = Utc::now();\n";
    let hits: Vec<&&str> = FORBIDDEN.iter().filter(|w| sample.contains(*w)).collect();
    assert_eq!(hits, [&"std::fs", &"Utc::now"]);
}
