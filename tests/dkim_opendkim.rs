//! DKIM rollover under a running OpenDKIM (Debian's package) as a milter:
//! OpenDKIM signs test messages given to it by `miltertest` with the KeyTable
//! and SigningTable the program wrote, and dkimpy verifies every signature
//! against the records Knot serves: after the first cycle, after the next
//! rollover but before OpenDKIM reloads its tables (it still signs with the old
//! selector, whose key file stays), after the reload, and after cleanup.
//! OpenDKIM runs as `opendkim` and refuses keys it does not own, so it signs
//! only because the key is handed to that user by default.
//!
//! RSA keys: OpenDKIM 2.11 does not read Ed25519 keys from PKCS#8 files.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use support::dkim::{DkimEnv, ZONE, verify_message};
use support::opendkim::{OpenDkim, filter_user};

/// How long OpenDKIM may take to read its tables again after SIGUSR1.
const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

/// Signs a message with OpenDKIM for `domain` and verifies the signature with
/// dkimpy; returns its selector.
fn signs_verifiably(env: &DkimEnv, opendkim: &OpenDkim, domain: &str, when: &str) -> String {
    let message = opendkim.sign(domain);
    let checked = verify_message(env.knot.port(), &message);
    assert!(
        checked.verified,
        "{when}: OpenDKIM's signature for {domain} does not verify:\n{}",
        checked.output
    );
    checked.selector.expect("a selector")
}

/// Signs until OpenDKIM signs with `selector`; every message signed meanwhile
/// must verify too.
fn signs_with_after_reload(env: &DkimEnv, opendkim: &OpenDkim, selector: &str) {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while signs_verifiably(env, opendkim, ZONE, "during the reload") != selector {
        assert!(
            Instant::now() < deadline,
            "OpenDKIM does not sign with {selector} {RELOAD_DEADLINE:?} after SIGUSR1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The uid of `user` (`id -u USER`).
fn uid(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .expect("id");
    assert!(out.status.success(), "no user {user}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn rollover_under_a_running_opendkim_signs_only_what_verifies() {
    let Some(env) = DkimEnv::start() else { return };
    let tables = env.path("opendkim");
    let (key_table, signing_table) = (tables.join("KeyTable"), tables.join("SigningTable"));
    let config = env.config(&format!(
        "handler = opendkim\nkeytype = rsa\ndkimdrain = 0\nkeytable = {}\nsigningtable = {}\n\n[domain:sub.{ZONE}]\ndkim = auto:mail\n",
        key_table.display(),
        signing_table.display()
    ));
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (s1, _) = env.key("current").unwrap();
    let Some(opendkim) = OpenDkim::start(&env.path("opendkim-run"), &key_table, &signing_table)
    else {
        return;
    };
    for domain in [ZONE.to_string(), format!("sub.{ZONE}")] {
        assert_eq!(
            signs_verifiably(&env, &opendkim, &domain, "after cycle 1"),
            s1
        );
    }

    env.ok(&["--prepare", "--force", &config]);
    env.ok(&["--rollover", &config]);
    let (s2, _) = env.key("current").unwrap();
    assert_ne!(s1, s2);
    assert_eq!(
        signs_verifiably(
            &env,
            &opendkim,
            ZONE,
            "after the rollover, before the reload"
        ),
        s1
    );

    opendkim.reload();
    signs_with_after_reload(&env, &opendkim, &s2);
    assert_eq!(
        signs_verifiably(&env, &opendkim, &format!("sub.{ZONE}"), "after the reload"),
        s2
    );

    env.ok(&["--cleanup", &config]);
    assert!(env.served(&s1).is_empty(), "{s1} still served");
    assert!(!env.selector_key(&s1).exists());
    assert_eq!(signs_verifiably(&env, &opendkim, ZONE, "after cleanup"), s2);

    if let Some(user) = filter_user() {
        let meta = std::fs::metadata(env.selector_key(&s2)).unwrap();
        assert_eq!(meta.uid(), uid(user), "the key is not {user}'s");
    }
}
