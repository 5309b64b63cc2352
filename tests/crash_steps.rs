//! Crash at every step: for each crash point (`cryptdomainmgr::crashpoint::STEPS`,
//! each right after a side effect and before the state records it), the phase
//! is killed there with SIGKILL, then run again. The re-run must complete; no
//! second ACME order is made for a certificate already ordered; no DNS record
//! is lost; and a reader of the destination never finds it without a matching
//! certificate and key, neither during the crash nor during the re-run.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cryptdomainmgr::crashpoint::STEPS;
use support::cycle::CycleEnv;

const CONFIG: &str =
    "\n[cert:web]\n[domain:www.example.test]\ncert = web\nip4 = 192.0.2.1\ndkim = auto:mail\n";

/// A DKIM key and DH parameters beside the certificate, installed in the
/// test's directory, and a service using all three whose reload command
/// appends to `reloads.log`.
fn dkim_section(env: &CycleEnv) -> String {
    let dir = env.dir.path();
    let script = support::cdm::write_script(
        dir,
        "reload.sh",
        &format!("echo reload >> {}/reloads.log\n", dir.display()),
    );
    format!(
        "\n[dkim:mail]\nkeytype = ed25519\nkeylocation = {0}/dkim\nsigningconfdestinationfile = {0}/rspamd/dkim_signing.conf\n\
         [dhparam:web]\nkeysize = 512\nfilename = {0}/dh.pem\n\
         [service:app]\nhandler = command\ncommand = {1}\n\
         [domain:example.test]\nmx = mail.example.test\nmtasts = testing\nmtastsfile = {0}/mta-sts.txt\n",
        dir.display(),
        script.display()
    )
}

fn reloads(env: &CycleEnv) -> usize {
    std::fs::read_to_string(env.dir.path().join("reloads.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// The phases that must have completed before `phase` has work to do.
fn before(phase: &str) -> &'static [&'static [&'static str]] {
    match phase {
        "update" => &[],
        "prepare" => &[&["--update"]],
        "rollover" => &[&["--update"], &["--prepare"]],
        // Something superseded to clean up: a second certificate rolled over.
        _ => &[
            &["--update"],
            &["--prepare"],
            &["--rollover"],
            &["--prepare", "--force"],
            &["--rollover"],
        ],
    }
}

/// Reads the destination's pair in a loop until stopped; panics (so `join`
/// fails) when the key and certificate are missing, unparseable or do not
/// match while `..data` stayed the same.
fn watch_pairs(site: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) {
            let before = std::fs::read_link(site.join("..data")).ok();
            let pair = support::deployed_pair(&site);
            let after = std::fs::read_link(site.join("..data")).ok();
            match pair {
                Ok((cert, key)) if cert == key => {}
                Ok(_) if before != after => {}
                Ok(_) => panic!("mismatched pair at {}", site.display()),
                Err(e) => panic!("{e}"),
            }
            reads += 1;
        }
        reads
    })
}

fn crash_then_rerun(phase: &str, step: &str) {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = env.config(&format!("{CONFIG}{}", dkim_section(&env)));
    for args in before(phase) {
        let mut args = args.to_vec();
        args.push(&conf);
        // An hour between runs: every DNS wait has passed.
        env.advance(3600);
        let run = env.run(&args);
        assert_eq!(run.code, 0, "{step}: setup {args:?}: {}", run.stderr);
    }
    let orders = env.orders();
    let reloads_before = reloads(&env);
    let site = env.dest().join("www.example.test");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = site
        .exists()
        .then(|| watch_pairs(site.clone(), stop.clone()));

    let phase_flag = format!("--{phase}");
    env.advance(3600);
    let crashed = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
        .args([phase_flag.as_str(), &conf])
        .envs(env.clock_env())
        .env("CRYPTDOMAINMGR_CRASH_AT", step)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        crashed.status.signal(),
        Some(libc::SIGKILL),
        "{step}: the crash point was not reached: {}",
        String::from_utf8_lossy(&crashed.stderr)
    );

    let status = |env: &CycleEnv| {
        let run = env.run(&["--status", &conf]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    if phase != "update" {
        let shown = status(&env);
        assert!(
            shown.contains(&format!("next phase: {phase}")),
            "{step}: --next would not repeat the phase: {shown}"
        );
    }
    env.advance(60);
    let run = env.run(&[phase_flag.as_str(), &conf]);
    assert_eq!(run.code, 0, "{step}: the re-run failed: {}", run.stderr);
    let shown = status(&env);
    let done = if phase == "update" {
        "last update: Completed".to_string()
    } else {
        format!("last phase: {phase} (Completed)")
    };
    assert!(shown.contains(&done), "{step}: {shown}");

    stop.store(true, Ordering::SeqCst);
    if let Some(watcher) = watcher {
        watcher
            .join()
            .unwrap_or_else(|_| panic!("{step}: the destination lost its matching pair"));
    }
    let new_orders = env.orders() - orders;
    let expected = usize::from(phase == "prepare");
    assert_eq!(new_orders, expected, "{step}: {new_orders} orders made");
    env.assert_records_survived(step);
    if phase == "rollover" || phase == "cleanup" {
        let (cert, key) = support::deployed_pair(&site).unwrap();
        assert_eq!(cert, key, "{step}: the deployed pair does not match");
        let dh = std::fs::read_to_string(env.dir.path().join("dh.pem")).unwrap();
        assert!(
            dh.contains("BEGIN DH PARAMETERS"),
            "{step}: no DH parameters"
        );
    }
    if phase == "rollover" {
        // The service took up the new material, whatever the crash interrupted.
        assert!(
            reloads(&env) > reloads_before,
            "{step}: the service was not reloaded"
        );
    }
}

#[test]
fn every_crash_point_is_recovered_by_a_rerun() {
    for (phase, step) in STEPS {
        eprintln!("crash at {step} in {phase}");
        crash_then_rerun(phase, step);
    }
}
