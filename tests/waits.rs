//! The wait for a certificate's challenge records to be served, through the
//! binary against a real Knot and Pebble: it says at INFO what it waits for,
//! on which server and until when, what each server said last, and it ends
//! early with advice when a server cannot be reached at all.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::cdm::write_config;
use support::cycle::{CycleEnv, ZONE};
use support::knot::{KnotEnv, minimal_zone};

const WWW: &str = "www.example.test";

fn cert_section() -> String {
    format!("\n[cert:web]\n[domain:{WWW}]\ncert = web\n")
}

/// The zone's NS record leads to an address where nothing listens (as when
/// the NS addresses are not reachable from this host): the wait says so at
/// INFO at once, ends well before the 300 s timeout with advice to set
/// `nameservers`, and leaves no challenge record behind.
#[test]
fn refused_connections_end_the_wait_early_with_advice() {
    let zone = format!(
        "@ 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n\
         @ 3600 IN NS ns1.{ZONE}.\n\
         ns1 3600 IN A 127.0.0.254\n"
    );
    let Some(env) = CycleEnv::start_with_zone(&zone, &[]) else {
        return;
    };
    // No nameservers key: the program follows the zone's NS records.
    let conf = write_config(
        env.dir.path(),
        "cdm.conf",
        &format!("{}{}", env.base_with_nameservers(""), cert_section()),
    );
    let started = Instant::now();
    let run = env.run(&["--prepare", &conf]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let info_wait = run.stderr.lines().any(|l| {
        l.contains("INFO")
            && l.contains("waiting until")
            && l.contains("(propagationtimeout 300 s)")
            && l.contains("ns1.example.test (127.0.0.254:53)")
    });
    assert!(info_wait, "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l.contains("INFO")
            && l.contains("still waiting for ns1.example.test (127.0.0.254:53)")
            && l.contains("connection failed")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("refused or failed every connection for 10 s")
            && run
                .stderr
                .contains("set nameservers = host:port in [domain]"),
        "{}",
        run.stderr
    );
    assert!(
        took < Duration::from_secs(15),
        "the wait took {took:?}: {}",
        run.stderr
    );
    assert!(
        env.knot
            .dig(&format!("_acme-challenge.{WWW}"), "TXT")
            .is_empty(),
        "a challenge record was left"
    );
}

/// A configured nameserver that accepts connections and never answers ends
/// the wait after one unanswered question, naming it and the key to check.
#[test]
fn a_server_that_never_answers_ends_the_wait() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    // Connections complete in the kernel's backlog; nothing is ever read.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let conf = write_config(
        env.dir.path(),
        "cdm.conf",
        &format!(
            "{}{}",
            env.base_with_nameservers(&addr.to_string()),
            cert_section()
        ),
    );
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the authoritative server {addr} of zone {ZONE} answered none of the questions for 10 s"
        )) && run.stderr.contains("Check the nameservers key in [domain]"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("within 300 s"), "{}", run.stderr);
    drop(silent);
}

/// A server that answers without the new records (it never gets the update)
/// is waited for until `propagationtimeout`, and the error names it with its
/// old answer.
#[test]
fn propagationtimeout_ends_the_wait_and_names_the_lagging_server() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let Some(lagging) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let conf = write_config(
        env.dir.path(),
        "cdm.conf",
        &format!(
            "{}propagationtimeout = 2\n{}",
            env.base_with_nameservers(&format!("{}, {}", env.knot.server(), lagging.server())),
            cert_section()
        ),
    );
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("(propagationtimeout 2 s)")
            && run.stderr.contains(&format!(
                "{} serves the challenge records of zone {ZONE}",
                env.knot.server()
            )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "not every authoritative server served the challenge records within 2 s (propagationtimeout): still waiting for {} (an old answer",
            lagging.server()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(env.orders(), 1);
}

/// `propagationtimeout` that is not a number is a configuration error at its
/// line, in `[domain]` and in `[cert]`, and nothing runs.
#[test]
fn propagationtimeout_not_a_number_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for (section, key_line) in [("[domain]", 4), ("[cert]", 3)] {
        let text = if section == "[domain]" {
            "[cert:web]\n[domain:www.example.test]\ncert = web\npropagationtimeout = soon\nhandler = rfc2136\nserver = 127.0.0.1:1\nkeyname = k\nsecret = c2VjcmV0\n".to_string()
        } else {
            "[cert:web]\n[cert]\npropagationtimeout = 5m\n[domain:www.example.test]\ncert = web\nhandler = rfc2136\nserver = 127.0.0.1:1\nkeyname = k\nsecret = c2VjcmV0\n".to_string()
        };
        let conf = write_config(dir.path(), "bad.conf", &text);
        let run = support::cdm::cdm(dir.path(), &["--check", &conf]);
        assert_eq!(run.code, 2, "{section}: {}", run.stderr);
        let value = if section == "[domain]" { "soon" } else { "5m" };
        assert!(
            run.stderr.contains(&format!(
                "bad.conf:{key_line}: propagationtimeout \"{value}\" is not a number of seconds"
            )),
            "{section}: {}",
            run.stderr
        );
    }
}
