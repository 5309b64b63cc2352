//! Crash at every step of `--auto`: one environment cycles a certificate (with
//! TLSA records), a DKIM key, DH parameters and a service through `--auto`
//! runs, moving the program's clock six hours a run, so that every section is
//! always due for something. Each crash point (`crashpoint::STEPS`) is armed
//! in turn; the run that reaches it is killed there with SIGKILL, and the next
//! `--auto` run must complete: exit 0, no second ACME order for the renewal
//! under way, no DNS record lost, no challenge record left, and a matching key
//! and certificate at the destination.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use cryptdomainmgr::crashpoint::STEPS;
use support::cycle::CycleEnv;

fn config(env: &CycleEnv) -> String {
    let dir = env.dir.path();
    let script = support::cdm::write_script(
        dir,
        "reload.sh",
        &format!("echo reload >> {}/reloads.log\n", dir.display()),
    );
    env.config(&format!(
        "\n[cert:web]\nrenewdays = 100000\n\
         [domain:www.example.test]\ncert = web\nip4 = 192.0.2.1\ndkim = auto:mail\ntlsa.tcp.443 = auto:3:1:1\n\
         [dkim:mail]\nkeytype = ed25519\nrotatedays = 1\ndkimdrain = 1h\nkeylocation = {0}/dkim\n\
         signingconfdestinationfile = {0}/rspamd/dkim_signing.conf\n\
         [dhparam:web]\nkeysize = 512\nrotatedays = 1\nfilename = {0}/dh.pem\n\
         [service:app]\nhandler = command\ncommand = {1}\n\
         [domain:example.test]\nmx = mail.example.test\nmtasts = testing\nmtastsfile = {0}/mta-sts.txt\n",
        dir.display(),
        script.display()
    ))
}

/// Runs `--auto` six hours after the run before, with `crash_at` armed.
/// Returns true when the process was killed at it.
fn auto(env: &CycleEnv, conf: &str, crash_at: Option<&str>) -> (bool, String) {
    env.advance(6 * 3600);
    let mut command = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"));
    command
        .args(["--auto", conf])
        .envs(env.clock_env())
        .current_dir(env.dir.path());
    if let Some(step) = crash_at {
        command.env("CRYPTDOMAINMGR_CRASH_AT", step);
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.signal() == Some(libc::SIGKILL) {
        return (true, stderr);
    }
    assert_eq!(out.status.code(), Some(0), "--auto failed: {stderr}");
    (false, stderr)
}

#[test]
fn every_crash_point_of_an_auto_run_is_recovered_by_the_next_run() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = config(&env);
    let site = env.dest().join("www.example.test");
    for (_, step) in STEPS {
        let mut orders = None;
        for _ in 0..12 {
            let before = env.orders();
            let (killed, _) = auto(&env, &conf, Some(step));
            if killed {
                orders = Some(before);
                break;
            }
        }
        let Some(orders) = orders else {
            panic!("{step}: no --auto run reached it");
        };
        eprintln!("crashed at {step}");
        // The next run completes what the crashed one began, without a
        // second order for the same renewal.
        let (_, stderr) = auto(&env, &conf, None);
        assert!(
            env.orders() - orders <= 1,
            "{step}: {} orders for one renewal: {stderr}",
            env.orders() - orders
        );
        env.assert_records_survived(step);
        if site.exists() {
            let (cert, key) = support::deployed_pair(&site).unwrap();
            assert_eq!(cert, key, "{step}: the deployed pair does not match");
        }
    }
}
