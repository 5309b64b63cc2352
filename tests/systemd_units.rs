//! The systemd units in dist/systemd/: `systemd-analyze verify` accepts them
//! (with the service's ExecStart pointed at the binary under test, since
//! /usr/bin/cryptdomainmgr is not installed here), and the configuration
//! directory the service names is read as the unit expects.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cdm::{cdm, write_config};

const INSTALLED: &str = "/usr/bin/cryptdomainmgr";

fn unit(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("dist/systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `systemd-analyze verify` on `files`; returns its status and stderr.
fn verify(files: &[&Path]) -> (bool, String) {
    let analyze = support::find_binary("systemd-analyze").expect("systemd-analyze");
    let output = Command::new(analyze)
        .arg("verify")
        // The man pages are checked once the package is installed (scripts/test.sh).
        .arg("--man=no")
        .args(files)
        .output()
        .expect("run systemd-analyze");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The units as installed, with the service running the binary under test.
fn units_in(dir: &Path, service: &str) -> (PathBuf, PathBuf) {
    assert!(
        service.contains(&format!("ExecStart={INSTALLED} ")),
        "{service}"
    );
    let service = service.replace(
        &format!("ExecStart={INSTALLED} "),
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_cryptdomainmgr")),
    );
    let service_path = dir.join("cryptdomainmgr.service");
    let timer_path = dir.join("cryptdomainmgr.timer");
    std::fs::write(&service_path, service).expect("write service");
    std::fs::write(&timer_path, unit("cryptdomainmgr.timer")).expect("write timer");
    (service_path, timer_path)
}

#[test]
fn systemd_analyze_verify_accepts_the_units_without_a_warning() {
    if !support::require("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (service, timer) = units_in(dir.path(), &unit("cryptdomainmgr.service"));
    let (ok, stderr) = verify(&[&service, &timer]);
    // verify only warns (status 0) on a setting it cannot parse, so any word
    // from it is a failure here.
    assert!(ok && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_check_finds_a_misspelt_setting() {
    if !support::require("systemd-analyze") {
        return;
    }
    // The check above can fail: a unit with a setting systemd cannot parse.
    let dir = tempfile::tempdir().unwrap();
    let broken =
        unit("cryptdomainmgr.service").replace("ProtectSystem=strict", "ProtectSystem=strikt");
    let (service, timer) = units_in(dir.path(), &broken);
    let (_, stderr) = verify(&[&service, &timer]);
    assert!(stderr.contains("strikt"), "{stderr}");
}

#[test]
fn the_service_runs_auto_on_the_configuration_directory_and_the_timer_every_15_minutes() {
    let service = unit("cryptdomainmgr.service");
    assert!(
        service.contains("\nExecStart=/usr/bin/cryptdomainmgr --auto /etc/cryptdomainmgr/\n"),
        "{service}"
    );
    assert!(service.contains("\nType=oneshot\n"), "{service}");
    let timer = unit("cryptdomainmgr.timer");
    for line in [
        "OnCalendar=*:0/15",
        "Persistent=true",
        "RandomizedDelaySec=",
    ] {
        assert!(timer.contains(&format!("\n{line}")), "{line} in {timer}");
    }
}

#[test]
fn a_directory_argument_reads_its_conf_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    write_config(&etc, "10-first.conf", "[cdm]\nstatedir = /srv/first\n");
    write_config(&etc, "20-second.conf", "[cdm]\nstatedir = /srv/second\n");
    // What dpkg leaves next to a changed conffile is not read: it does not parse.
    write_config(&etc, "20-second.conf.dpkg-dist", "[[[ not a config\n");
    let run = cdm(dir.path(), &["--check", etc.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("statedir = /srv/second\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("/srv/first"), "{}", run.stdout);
}

#[test]
fn a_directory_without_conf_files_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let run = cdm(dir.path(), &["--auto", "--dry-run", etc.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{}: no *.conf file", etc.display())),
        "{}",
        run.stderr
    );
}
