//! DKIM rollover under a running rspamd (Debian's package): rspamd signs test
//! messages (`rspamc --mime`) with the configuration and keys the program
//! installed, and dkimpy verifies every signature against the records Knot
//! serves: after the first cycle, after the next rollover but before rspamd
//! reloads (it still signs with the old selector, whose key file stays), after
//! the reload, and after cleanup. rspamd's workers run as `_rspamd`, so they sign
//! only because the key is handed to that user by default.
//!
//! RSA keys: rspamd 3.4 reads only RSA keys from PEM files.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::dkim::{DkimEnv, ZONE, verify_message};
use support::rspamd::{Rspamd, worker_user};

/// How long rspamd's new workers may take to replace the old ones after a reload.
const RELOAD_DEADLINE: Duration = Duration::from_secs(120);

/// Signs a message with rspamd and verifies rspamd's signature with dkimpy;
/// returns its selector.
fn signs_verifiably(env: &DkimEnv, rspamd: &Rspamd, when: &str) -> String {
    let message = rspamd.sign(ZONE);
    let checked = verify_message(env.knot.port(), &message);
    assert!(
        checked.verified,
        "{when}: rspamd's signature does not verify:\n{}",
        checked.output
    );
    checked.selector.expect("a selector")
}

/// Signs until rspamd's new workers sign with `selector`; every message signed
/// meanwhile must verify too.
fn signs_with_after_reload(env: &DkimEnv, rspamd: &Rspamd, selector: &str) {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        if signs_verifiably(env, rspamd, "during the reload") == selector {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rspamd does not sign with {selector} {RELOAD_DEADLINE:?} after the reload:\n{}",
            rspamd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_rspamd(env: &DkimEnv) -> Option<Rspamd> {
    Rspamd::start(&env.path("rspamd-run"), &env.rspamd_dir(), env.knot.port())
}

/// The uid of `user` (`id -u USER`).
fn uid(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().expect("id");
    assert!(out.status.success(), "no user {user}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `[service:rspamd]` reloading through `command` (argv, no shell).
fn service(command: &str) -> String {
    format!("\n[service:rspamd]\nhandler = command\ncommand = {command}\n")
}

#[test]
fn rollover_under_a_running_rspamd_signs_only_what_verifies() {
    let Some(env) = DkimEnv::start() else { return };
    let dkim = "keytype = rsa\ndkimdrain = 0\n";
    let config = env.config(dkim);
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (s1, _) = env.key("current").unwrap();
    let Some(rspamd) = start_rspamd(&env) else {
        return;
    };
    assert_eq!(signs_verifiably(&env, &rspamd, "after cycle 1"), s1);

    // The next rollover, whose reload fails: rspamd keeps its configuration
    // and signs with the old selector and the old key, both still there.
    let pid = rspamd.pid();
    let config = env.config(&format!("{dkim}{}", service("false")));
    env.ok(&["--prepare", "--force", &config]);
    let run = env.run(&["--rollover", &config]);
    assert_eq!(run.code, 1, "the reload did not fail: {}", run.stderr);
    let (s2, _) = env.key("current").unwrap();
    assert_ne!(s1, s2);
    assert_eq!(
        signs_verifiably(&env, &rspamd, "after the rollover, before the reload"),
        s1
    );

    // Cleanup keeps the old selector and key while rspamd has not reloaded,
    // although dkimdrain is over.
    let run = env.ok(&["--cleanup", &config]);
    assert_eq!(
        signs_verifiably(&env, &rspamd, "after a cleanup before the reload"),
        s1
    );
    assert_eq!(env.served(&s1).len(), 1);
    assert!(
        run.stderr.contains(&format!(
            "keeping old selector {s1} and its key: [service:rspamd] not reloaded"
        )),
        "{}",
        run.stderr
    );

    // The next rollover reloads rspamd (SIGHUP through [service:rspamd]).
    let config = env.config(&format!("{dkim}{}", service(&format!("kill -HUP {pid}"))));
    env.ok(&["--rollover", &config]);
    signs_with_after_reload(&env, &rspamd, &s2);

    env.ok(&["--cleanup", &config]);
    assert!(env.served(&s1).is_empty(), "{s1} still served");
    assert!(!env.selector_key(&s1).exists());
    assert_eq!(signs_verifiably(&env, &rspamd, "after cleanup"), s2);
    // rspamd's workers could read the keys because they are theirs.
    if let Some(user) = worker_user() {
        let meta = std::fs::metadata(env.selector_key(&s2)).unwrap();
        assert_eq!(meta.uid(), uid(user), "the key is not {user}'s");
    }
}

/// An installation from a version that installed every key as
/// `keylocation/keyname` moves to one file per selector at its next rollover,
/// without a moment in which rspamd signs what does not verify.
#[test]
fn the_single_file_layout_moves_to_one_file_per_selector_without_a_window() {
    let Some(env) = DkimEnv::start() else { return };
    let config = env.config("keytype = rsa\ndkimdrain = 0\n");
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (s1, _) = env.key("current").unwrap();
    to_single_file_layout(&env, &s1);
    let Some(rspamd) = start_rspamd(&env) else {
        return;
    };
    assert_eq!(signs_verifiably(&env, &rspamd, "the old layout"), s1);

    env.ok(&["--prepare", "--force", &config]);
    env.ok(&["--rollover", &config]);
    let (s2, _) = env.key("current").unwrap();
    assert_eq!(
        signs_verifiably(&env, &rspamd, "after the rollover, before the reload"),
        s1
    );
    rspamd.reload();
    signs_with_after_reload(&env, &rspamd, &s2);

    // Once the old key is gone, keyname links to the current key.
    env.ok(&["--cleanup", &config]);
    assert!(env.served(&s1).is_empty(), "{s1} still served");
    assert_eq!(
        std::fs::read_link(env.installed_key()).unwrap(),
        PathBuf::from(format!("{s2}.key"))
    );
    assert_eq!(signs_verifiably(&env, &rspamd, "after cleanup"), s2);
}

/// Turns the files and state of a first rollover into what the previous version
/// left: the key only as the regular file `keylocation/dkim.key`, named by
/// rspamd's configuration, and no installed file recorded in the state.
fn to_single_file_layout(env: &DkimEnv, selector: &str) {
    let own = env.selector_key(selector);
    let link = env.installed_key();
    let meta = std::fs::metadata(&own).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::fs::copy(&own, &link).unwrap();
    std::os::unix::fs::chown(&link, Some(meta.uid()), Some(meta.gid())).unwrap();
    std::fs::remove_file(&own).unwrap();

    let conf = std::fs::read_to_string(env.signing_conf()).unwrap();
    let old = conf.replace(&own.display().to_string(), &link.display().to_string());
    assert_ne!(conf, old);
    std::fs::write(env.signing_conf(), old).unwrap();

    let path = env.path("state/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let current = state["dkim"]["mail"]["current"]
        .as_object_mut()
        .expect("a current key");
    assert!(current.remove("installed_file").is_some());
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
}
