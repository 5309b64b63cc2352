//! DH parameters end to end through the binary: what lands on disk is checked
//! with openssl (`dhparam -check`, and the RFC 7919 groups as openssl itself
//! knows them).

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::cdm::{cdm, write_config};

fn openssl(args: &[&str]) -> String {
    support::openssl(Path::new("."), args)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn der_of(pem: &Path, out: &Path) -> Vec<u8> {
    openssl(&[
        "dhparam",
        "-in",
        &pem.display().to_string(),
        "-outform",
        "DER",
        "-out",
        &out.display().to_string(),
    ]);
    std::fs::read(out).unwrap()
}

#[test]
fn generated_parameters_pass_openssl_check_and_roll_over() {
    if !support::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("etc/dh.pem");
    let state_files = dir.path().join("state/dhparams/gen");
    let conf = write_config(
        dir.path(),
        "cdm.conf",
        &format!(
            "[cdm]\nstatedir = {}\n[dhparam:gen]\nkeysize = 512\nfilename = {}\n",
            dir.path().join("state").display(),
            target.display()
        ),
    );
    let run = |args: &[&str]| {
        let run = cdm(dir.path(), args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run
    };

    // A dry run makes nothing.
    let dry = run(&["--prepare", "--dry-run", &conf]);
    assert!(
        dry.stdout.contains("dhparam gen: make 512-bit"),
        "{}",
        dry.stdout
    );
    assert!(files_in(&state_files).is_empty());

    run(&["--prepare", &conf]);
    let prepared = files_in(&state_files);
    assert_eq!(prepared.len(), 1);
    assert!(!target.exists(), "prepare deploys nothing");
    // A second prepare keeps the prepared parameters.
    run(&["--prepare", &conf]);
    assert_eq!(files_in(&state_files), prepared);

    run(&["--rollover", &conf]);
    let status = run(&["--status", &conf]);
    assert!(
        status
            .stdout
            .contains("DH parameters [dhparam:gen] (openssl, 512 bits)")
            && status.stdout.contains("  current: 512 bits, sha256 ")
            && status.stdout.contains("  prepared: none"),
        "{}",
        status.stdout
    );
    // openssl reports the check's verdict on stderr.
    let check = std::process::Command::new("openssl")
        .args(["dhparam", "-check", "-noout", "-in"])
        .arg(&target)
        .output()
        .unwrap();
    let verdict = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{verdict}");
    assert!(
        verdict.contains("DH parameters appear to be ok"),
        "{verdict}"
    );
    let text = openssl(&[
        "dhparam",
        "-text",
        "-noout",
        "-in",
        &target.display().to_string(),
    ]);
    assert!(
        text.contains("(512 bit)") && text.contains("G:    2 (0x2)"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&prepared[0]).unwrap()
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // The next cycle generates new parameters; cleanup deletes the old file.
    run(&["--cleanup", &conf]);
    run(&["--prepare", &conf]);
    let both = files_in(&state_files);
    assert_eq!(both.len(), 2);
    let first = std::fs::read(&target).unwrap();
    run(&["--rollover", &conf]);
    let second = std::fs::read(&target).unwrap();
    assert_ne!(first, second, "rollover deploys the new parameters");
    run(&["--cleanup", &conf]);
    let left = files_in(&state_files);
    assert_eq!(left.len(), 1);
    assert_eq!(std::fs::read(&left[0]).unwrap(), second);
}

#[test]
fn ffdhe_groups_are_the_rfc_7919_groups_openssl_knows() {
    if !support::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sizes = [2048, 3072, 4096, 6144, 8192];
    let mut text = format!(
        "[cdm]\nstatedir = {}\n[dhparam]\nhandler = ffdhe\n",
        dir.path().join("state").display()
    );
    for bits in sizes {
        text.push_str(&format!(
            "[dhparam:ff{bits}]\nkeysize = {bits}\nfilename = {}\n",
            dir.path().join(format!("out/ffdhe{bits}.pem")).display()
        ));
    }
    let conf = write_config(dir.path(), "cdm.conf", &text);
    for phase in ["--prepare", "--rollover"] {
        let run = cdm(dir.path(), &[phase, &conf]);
        assert_eq!(run.code, 0, "{phase}: {}", run.stderr);
    }
    for bits in sizes {
        let ours = dir.path().join(format!("out/ffdhe{bits}.pem"));
        let theirs = dir.path().join(format!("openssl-ffdhe{bits}.pem"));
        openssl(&[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            &format!("group:ffdhe{bits}"),
            "-out",
            &theirs.display().to_string(),
        ]);
        assert_eq!(
            der_of(&ours, &dir.path().join("ours.der")),
            der_of(&theirs, &dir.path().join("theirs.der")),
            "ffdhe{bits}"
        );
    }
    // The group is in place: another cycle prepares and deploys nothing new.
    let state_dir = dir.path().join("state/dhparams/ff2048");
    let before = files_in(&state_dir);
    let run = cdm(dir.path(), &["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(files_in(&state_dir), before);

    // A deleted target is restored from the current parameters by rollover.
    let target = dir.path().join("out/ffdhe2048.pem");
    let deployed = std::fs::read(&target).unwrap();
    std::fs::remove_file(&target).unwrap();
    let run = cdm(dir.path(), &["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), deployed);
}

#[test]
fn bad_dhparam_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "cdm.conf",
        &format!(
            "[cdm]\nstatedir = {}\n[dhparam:x]\nhandler = ffdhe\nkeysize = 1024\n",
            dir.path().join("state").display()
        ),
    );
    let run = cdm(dir.path(), &["--prepare", &conf]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cdm.conf:5: keysize 1024"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("state").exists());
}
