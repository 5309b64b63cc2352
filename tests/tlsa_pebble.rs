//! DANE TLSA records end to end: the binary against a real Pebble and a real
//! Knot, and a real TLS server (`openssl s_server`) that follows the deployed
//! certificate. What DNS serves is read with `dig`, and every expected value is
//! computed independently with the `openssl` command line from the files on
//! disk.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::ops::Deref;
use std::path::PathBuf;

use support::cdm::{cdm, write_config};
use support::cycle::{CycleEnv, ZONE};
use support::knot::{KnotEnv, minimal_zone};
use support::tls::{DaneChecker, TlsServer, openssl_tlsa_data, parse_tlsa_lines};

const WWW: &str = "www.example.test";

/// The certificate cycle's world, with TTLs of 1 s (so rollover is safe two
/// seconds after publishing), and the TLSA checks of this file.
struct Env(CycleEnv);

impl Deref for Env {
    type Target = CycleEnv;

    fn deref(&self) -> &CycleEnv {
        &self.0
    }
}

impl Env {
    fn start() -> Option<Env> {
        Self::start_with_zone(&fast_zone(""))
    }

    fn start_with_zone(zone: &str) -> Option<Env> {
        if !support::require_all(&["openssl", "dig"]) {
            return None;
        }
        let mut cycle = CycleEnv::start_with_zone(zone, &[])?;
        cycle.domain_keys = "ttl = 1\n".into();
        Some(Env(cycle))
    }

    /// Runs `--rollover` until it is safe and succeeds, moving the program's
    /// clock on a minute at a time.
    fn rollover_when_safe(&self, conf: &str) {
        for _ in 0..10 {
            let run = self.run(&["--rollover", conf]);
            if run.code == 0 {
                return;
            }
            assert!(
                run.stderr.contains("safe from"),
                "rollover refused: {}",
                run.stderr
            );
            // Time for the caches to expire, on the program's clock.
            self.advance(60);
        }
        panic!("rollover still refused after 10 minutes");
    }

    /// Runs `--cleanup` until it no longer keeps records for later, moving
    /// the program's clock on.
    fn cleanup_when_safe(&self, conf: &str) {
        for _ in 0..10 {
            if !self
                .run_ok(&["--cleanup", conf])
                .stderr
                .contains("keeps the TLSA records")
            {
                return;
            }
            self.advance(60);
        }
        panic!("cleanup kept the records too long");
    }

    /// The TLSA records Knot serves at `owner`.
    fn tlsa(&self, owner: &str) -> Vec<(u8, u8, u8, String)> {
        let mut records = parse_tlsa_lines(&self.knot.dig(owner, "TLSA"));
        records.sort();
        records
    }

    fn work(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The 3 1 1 data of the certificate deployed for `name`, by openssl.
    fn deployed_spki(&self, name: &str) -> String {
        openssl_tlsa_data(
            &self.dest().join(name).join("cert.pem"),
            1,
            1,
            &self.work("spki"),
        )
    }

    /// The directory of the prepared certificate of `section` (state.json).
    fn prepared_dir(&self, section: &str) -> PathBuf {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("state/state.json")).unwrap(),
        )
        .unwrap();
        let dir = state["certs"][section]["prepared"]["dir"]
            .as_str()
            .unwrap_or_else(|| panic!("no prepared certificate for {section}: {state}"));
        PathBuf::from(dir)
    }

    /// The 3 1 1 data of the prepared certificate of `section`, by openssl from
    /// the files in the state directory.
    fn prepared_spki(&self, section: &str) -> String {
        let cert = self.prepared_dir(section).join("cert.pem");
        openssl_tlsa_data(&cert, 1, 1, &self.work("spki"))
    }
}

/// A zone whose SOA TTL and negative-caching TTL are 1 s (so rollover is
/// safe two seconds after publishing), with `extra` records.
fn fast_zone(extra: &str) -> String {
    format!(
        "@ 1 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 1\n\
         @ 3600 IN NS ns1.{ZONE}.\n\
         ns1 3600 IN A 127.0.0.1\n{extra}"
    )
}

fn ee(data: &str) -> (u8, u8, u8, String) {
    (3, 1, 1, data.to_string())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test]
async fn every_usage_selector_and_matching_type_equals_openssl() {
    let Some(env) = Env::start() else { return };
    let mut entries = Vec::new();
    for usage in 0..=3 {
        for selector in 0..=1 {
            for matching in 0..=2 {
                entries.push(format!("auto:{usage}:{selector}:{matching}"));
            }
        }
    }
    let conf = env.config(&format!(
        "\n[cert:web]\n[domain:{WWW}]\ncert = web\ntlsa.tcp.443 = {}\n",
        entries.join(", ")
    ));
    env.run_ok(&["--prepare", &conf]);

    // The files prepare wrote into the state directory.
    let deployed = env.prepared_dir("web");
    let work = env.work("values");
    // Usage 3 and 1: the leaf; 2 and 0: the first certificate of chain.pem,
    // the CA that issued it.
    let mut expected = Vec::new();
    for usage in 0..=3u8 {
        let file = if usage % 2 == 1 {
            "cert.pem"
        } else {
            "chain.pem"
        };
        for selector in 0..=1 {
            for matching in 0..=2 {
                let data = openssl_tlsa_data(&deployed.join(file), selector, matching, &work);
                expected.push((usage, selector, matching, data));
            }
        }
    }
    let served = env.tlsa(&format!("_443._tcp.{WWW}"));
    assert_eq!(served, sorted(expected));
    // The chain really holds the issuer of the leaf.
    let verify = support::openssl(
        &work,
        &[
            "verify",
            "-partial_chain",
            "-CAfile",
            &deployed.join("chain.pem").display().to_string(),
            &deployed.join("cert.pem").display().to_string(),
        ],
    );
    assert!(verify.contains(": OK"), "{verify}");
}

/// The zero-downtime proof: two full cycles with a TLS server that follows the
/// deployed certificate, and a checker that, all the time and after every
/// phase, compares the certificate the server shows with the TLSA records Knot
/// serves.
#[tokio::test]
async fn a_dane_client_always_finds_a_matching_record() {
    let Some(env) = Env::start() else { return };
    let port = support::free_port();
    let owner = format!("_{port}._tcp.{WWW}");
    let conf = env.config(&format!(
        "\n[cert:web]\n[domain:{WWW}]\ncert = web\ntlsa.tcp.{port} = auto:3:1:1\n"
    ));
    let server = TlsServer::follow(env.dest().join(WWW), port);
    let port_for_dig = env.knot.port();
    let dig_owner = owner.clone();
    let checker = DaneChecker::start(port, env.work("checker"), move || {
        dig_tlsa(port_for_dig, &dig_owner)
    });
    let check_now = |phase: &str| {
        let sample = support::tls::sample(port, &env.work("now"), &|| env.knot.dig(&owner, "TLSA"));
        if let Some(sample) = sample {
            assert!(sample.matched, "after {phase}: {sample:?}");
        }
    };

    // Cycle 1: the first certificate. Before rollover nothing is served.
    env.run_ok(&["--prepare", &conf]);
    let first = env.prepared_spki("web");
    assert_eq!(env.tlsa(&owner), vec![ee(&first)], "prepare publishes");
    env.rollover_when_safe(&conf);
    server.wait_presenting(&first, &env.work("wait"));
    check_now("rollover 1");
    env.cleanup_when_safe(&conf);
    check_now("cleanup 1");
    assert_eq!(env.tlsa(&owner), vec![ee(&first)]);

    // Cycle 2: a new certificate replaces the first.
    env.run_ok(&["--prepare", "--force", &conf]);
    check_now("prepare 2");
    let second = env.prepared_spki("web");
    assert_ne!(first, second, "a new key for the new certificate");
    assert_eq!(
        env.tlsa(&owner),
        sorted(vec![ee(&first), ee(&second)]),
        "the new record is published next to the old"
    );
    env.rollover_when_safe(&conf);
    check_now("rollover 2");
    assert_eq!(env.deployed_spki(WWW), second);
    // The service has reloaded once the checker sees the new certificate; only
    // then does cleanup run (as a reload is part of rollover).
    checker.wait_for(&second);
    env.cleanup_when_safe(&conf);
    check_now("cleanup 2");
    assert_eq!(
        env.tlsa(&owner),
        vec![ee(&second)],
        "cleanup prunes the old"
    );

    // Cycle 3, with the checker still running: from the second to a third.
    env.run_ok(&["--prepare", "--force", &conf]);
    let third = env.prepared_spki("web");
    env.rollover_when_safe(&conf);
    checker.wait_for(&third);
    env.cleanup_when_safe(&conf);
    check_now("cleanup 3");
    assert_eq!(env.tlsa(&owner), vec![ee(&third)]);

    let samples = checker.finish();
    let bad: Vec<_> = samples.iter().filter(|s| !s.matched).collect();
    assert!(
        bad.is_empty(),
        "moments without a matching TLSA record: {bad:?}"
    );
    for (name, spki) in [("first", &first), ("second", &second), ("third", &third)] {
        assert!(
            samples.iter().any(|s| &s.spki == spki),
            "the checker never saw the {name} certificate"
        );
    }
    assert!(server.starts() >= 3, "the server followed every rollover");
    assert!(samples.len() >= 10, "only {} samples", samples.len());
}

fn dig_tlsa(port: u16, owner: &str) -> Vec<String> {
    let out = std::process::Command::new("dig")
        .args([
            "+short",
            "+norec",
            "+time=2",
            "+tries=1",
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            owner,
            "TLSA",
        ])
        .output()
        .expect("run dig");
    support::knot::answer_lines(&out.stdout)
}

/// Scopes: a key for `_443._tcp` never deletes at `_25._tcp`; `+=` never
/// deletes; two certificates on one name both stay published.
#[tokio::test]
async fn cleanup_deletes_only_in_scope_and_keeps_every_listed_certificate() {
    let stale = "3 1 1 0000000000000000000000000000000000000000000000000000000000000000";
    let zone = fast_zone(&format!(
        "_443._tcp.www 1 IN TLSA {stale}\n_25._tcp.www 1 IN TLSA {stale}\n_587._tcp.www 1 IN TLSA {stale}\n"
    ));
    let Some(env) = Env::start_with_zone(&zone) else {
        return;
    };
    let conf = env.config(&format!(
        "\n[cert:web]\n[cert:web2]\n[domain:{WWW}]\ncert = web, web2\n\
         tlsa.tcp.443 = auto:3:1:1\ntlsa.tcp.587 += auto:3:1:1\n"
    ));
    let zero = ee(&"0".repeat(64));
    env.run_ok(&["--prepare", &conf]);
    let (web, web2) = (env.prepared_spki("web"), env.prepared_spki("web2"));
    assert_ne!(web, web2);
    let both = sorted(vec![ee(&web), ee(&web2)]);
    // Prepare adds, deletes nothing.
    assert_eq!(
        env.tlsa(&format!("_443._tcp.{WWW}")),
        sorted(vec![ee(&web), ee(&web2), zero.clone()])
    );
    // The update phase never touches TLSA records.
    env.run_ok(&["--update", &conf]);
    assert_eq!(
        env.tlsa(&format!("_443._tcp.{WWW}")),
        sorted(vec![ee(&web), ee(&web2), zero.clone()])
    );
    env.rollover_when_safe(&conf);
    env.cleanup_when_safe(&conf);
    assert_eq!(env.tlsa(&format!("_443._tcp.{WWW}")), both, "stale deleted");
    assert_eq!(
        env.tlsa(&format!("_587._tcp.{WWW}")),
        sorted(vec![ee(&web), ee(&web2), zero.clone()]),
        "+= never deletes"
    );
    assert_eq!(
        env.tlsa(&format!("_25._tcp.{WWW}")),
        vec![zero.clone()],
        "outside every key's scope"
    );

    // Renewing one certificate (`-x` on web only): the other's record stays
    // through the whole cycle.
    let renew_web = env.config(&format!(
        "\n[cert:web]\nextraflags = -x\n[cert:web2]\n[domain:{WWW}]\ncert = web, web2\n\
         tlsa.tcp.443 = auto:3:1:1\ntlsa.tcp.587 += auto:3:1:1\n"
    ));
    env.run_ok(&["--prepare", &renew_web]);
    let new_web = env.prepared_spki("web");
    assert_ne!(new_web, web);
    assert_eq!(
        env.tlsa(&format!("_443._tcp.{WWW}")),
        sorted(vec![ee(&web), ee(&web2), ee(&new_web)])
    );
    env.rollover_when_safe(&renew_web);
    env.cleanup_when_safe(&renew_web);
    assert_eq!(
        env.tlsa(&format!("_443._tcp.{WWW}")),
        sorted(vec![ee(&new_web), ee(&web2)])
    );

    // `-=` removes what it names: the records of the certificates in use.
    let conf = env.config(&format!(
        "\n[cert:web]\n[cert:web2]\n[domain:{WWW}]\ncert = web, web2\n\
         tlsa.tcp.443 = auto:3:1:1\ntlsa.tcp.587 -= auto:3:1:1\n"
    ));
    env.run_ok(&["--cleanup", &conf]);
    assert_eq!(
        env.tlsa(&format!("_587._tcp.{WWW}")),
        sorted(vec![ee(&web), zero])
    );
}

/// Rollover refuses while the new TLSA records were never published, while an
/// authoritative server does not serve them (naming it and the records), and
/// before two TTLs have passed (saying when it is safe); `--force` overrides.
/// Cleanup keeps the old records for two TTLs after rollover.
#[tokio::test]
async fn rollover_waits_for_every_nameserver_and_two_ttls_unless_forced() {
    let stale = "3 1 1 00000000000000000000000000000000000000000000000000000000000000ee";
    let Some(env) = Env::start_with_zone(&fast_zone(&format!("_443._tcp.www 1 IN TLSA {stale}\n")))
    else {
        return;
    };
    // A second server for the zone that never receives the updates.
    let Some(lagging) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let records = format!("\n[cert:web]\n[domain:{WWW}]\ncert = web\ntlsa.tcp.443 = auto:3:1:1\n");
    let write = |file: &str, nameservers: &str, extra: &str| {
        write_config(
            env.dir.path(),
            file,
            &format!("{}{records}{extra}", env.base_with_nameservers(nameservers)),
        )
    };
    let both = write(
        "both.conf",
        &format!("{}, {}", env.knot.server(), lagging.server()),
        "",
    );
    let slow = write("slow.conf", &env.knot.server(), "ttl = 30\n");
    let plain = env.config_as(
        "plain.conf",
        &format!("\n[cert:web]\n[domain:{WWW}]\ncert = web\n"),
    );
    let conf = write("cdm.conf", &env.knot.server(), "");

    // Prepared before the tlsa key existed: nothing published for it yet.
    env.run_ok(&["--prepare", &plain]);
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not been published"), "{}", run.stderr);

    env.run_ok(&["--prepare", &conf]);
    let spki = env.prepared_spki("web");
    let run = env.run(&["--rollover", &both]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{} does not serve", lagging.server())),
        "names the lagging server: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&spki),
        "names the record: {}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert!(!env.dest().join(WWW).exists(), "nothing deployed");

    // Records with a TTL of 30 s: safe 60 s after they were published.
    let run = env.run(&["--rollover", &slow]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("safe from") && run.stderr.contains("TTL 30 s"),
        "{}",
        run.stderr
    );
    assert!(!env.dest().join(WWW).exists(), "nothing deployed");
    let status = env.run_ok(&["--status", &both]);
    assert!(
        status.stdout.contains("  prepared: serial"),
        "{}",
        status.stdout
    );

    let run = env.run_ok(&["--rollover", "--force", &slow]);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(env.deployed_spki(WWW), spki);

    // Cleanup within two TTLs of the rollover keeps the old records.
    let zero = (3, 1, 1, stale[6..].to_string());
    let run = env.run_ok(&["--cleanup", &slow]);
    assert!(
        run.stderr.contains("keeps the TLSA records"),
        "{}",
        run.stderr
    );
    let owner = format!("_443._tcp.{WWW}");
    assert_eq!(env.tlsa(&owner), sorted(vec![ee(&spki), zero]));
    env.cleanup_when_safe(&conf);
    assert_eq!(env.tlsa(&owner), vec![ee(&spki)]);
}

/// `--status` lists the records per port and which certificate each matches.
#[tokio::test]
async fn status_shows_records_and_their_certificates() {
    let stale = "3 1 1 00000000000000000000000000000000000000000000000000000000000000ff";
    let zone = fast_zone(&format!("_25._tcp.www 1 IN TLSA {stale}\n"));
    let Some(env) = Env::start_with_zone(&zone) else {
        return;
    };
    let conf = env.config(&format!(
        "\n[cert:web]\n[domain:{WWW}]\ncert = web\ntlsa.tcp.443 = auto:3:1:1\ntlsa.tcp.25 += auto:3:1:1\n"
    ));
    env.run_ok(&["--prepare", &conf]);
    let first = env.prepared_spki("web");
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains(&format!("TLSA records of {WWW}")),
        "{status}"
    );
    assert!(
        status.contains(&format!("_443._tcp: 3 1 1 {first} -> [cert:web] prepared")),
        "{status}"
    );
    assert!(
        status.contains(&format!("_25._tcp: {} -> none", stale)),
        "{status}"
    );
    env.rollover_when_safe(&conf);
    env.run_ok(&["--prepare", "--force", &conf]);
    let second = env.prepared_spki("web");
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains(&format!("_443._tcp: 3 1 1 {first} -> [cert:web] current")),
        "{status}"
    );
    assert!(
        status.contains(&format!("_443._tcp: 3 1 1 {second} -> [cert:web] prepared")),
        "{status}"
    );
}

#[test]
fn bad_tlsa_values_are_config_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[cdm]\nstatedir = {}\n[cert:web]\n[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = web\n",
        dir.path().display()
    );
    for (line, what) in [
        ("tlsa.tcp.443 = auto:4:1:1", "usage 4"),
        ("tlsa.tcp.443 = auto:3:2:1", "selector 2"),
        ("tlsa.tcp.443 = auto:3:1:3", "matching type 3"),
        ("tlsa.tcp.443.7 = auto", "matching type 7"),
        ("tlsa.tcp.443 = 3 1 1 abcd", "must start with auto"),
        ("tlsa = auto:3:1:1", "no port"),
    ] {
        let conf = write_config(dir.path(), "c.conf", &format!("{base}{line}\n"));
        let run = cdm(dir.path(), &["--prepare", &conf]);
        assert_eq!(run.code, 2, "{line}: {}", run.stderr);
        assert!(
            run.stderr.contains("c.conf:10: ") && run.stderr.contains(what),
            "{line}: {}",
            run.stderr
        );
        assert!(!dir.path().join("state.json").exists(), "nothing was done");
    }
    let conf = write_config(
        dir.path(),
        "c.conf",
        &base.replace("cert = web", "cert = nosuch\ntlsa.tcp.443 = auto"),
    );
    let run = cdm(dir.path(), &["--prepare", &conf]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("c.conf:9: ") && run.stderr.contains("no [cert:nosuch]"),
        "{}",
        run.stderr
    );
}

impl Env {
    /// The serial of the certificate deployed for `name`, by openssl.
    fn deployed_serial(&self, name: &str) -> String {
        let cert = self.dest().join(name).join("cert.pem");
        support::openssl(
            &self.work("serial"),
            &[
                "x509",
                "-in",
                &cert.display().to_string(),
                "-noout",
                "-serial",
            ],
        )
    }
}

/// The 3 1 1 data of a private key file, by openssl.
fn key_spki(env: &Env, key: &std::path::Path) -> String {
    let work = env.work("keyspki");
    let der = work.join("spki.der").display().to_string();
    support::openssl(
        &work,
        &[
            "pkey",
            "-in",
            &key.display().to_string(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            &der,
        ],
    );
    let out = support::openssl(&work, &["dgst", "-sha256", "-r", &der]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The next key's file of `section` (state.json).
fn next_key_file(env: &Env, section: &str) -> PathBuf {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.dir.path().join("state/state.json")).unwrap(),
    )
    .unwrap();
    let dir = state["certs"][section]["next_key"]["dir"]
        .as_str()
        .unwrap_or_else(|| panic!("no next key for {section}: {state}"));
    PathBuf::from(dir).join("privkey.pem")
}

/// `keystrategy = staged`: the key stays across renewals and the next key's
/// record is out next to the current one, so a renewal changes no record and
/// waits for nothing; after `keyrotatedays` the next key becomes current, a
/// new next key is published and the old record goes. Two `3 1 1` records
/// are served at every point.
#[tokio::test]
async fn staged_keys_keep_the_record_and_rotate_with_a_published_next_key() {
    let Some(env) = Env::start() else { return };
    let owner = format!("_443._tcp.{WWW}");
    let conf = env.config(&format!(
        "\n[cert:web]\nkeystrategy = staged\nkeyrotatedays = 365\n[domain:{WWW}]\ncert = web\ntlsa.tcp.443 = auto:3:1:1\n"
    ));
    env.run_ok(&["--prepare", &conf]);
    let first = env.prepared_spki("web");
    let next = key_spki(&env, &next_key_file(&env, "web"));
    assert_ne!(first, next);
    assert_eq!(env.tlsa(&owner), sorted(vec![ee(&first), ee(&next)]));
    env.rollover_when_safe(&conf);
    assert_eq!(env.deployed_spki(WWW), first);

    let serial_before = env.deployed_serial(WWW);
    // A forced renewal keeps the key: no record changes, no wait. (The zone
    // changes twice for the ACME challenge only: its TXT record added and
    // removed.)
    let serial = env.knot.serial(ZONE);
    let run = env.run_ok(&["--prepare", "--force", &conf]);
    assert_eq!(env.prepared_spki("web"), first, "the key is kept");
    assert!(
        !run.stderr.contains("(new) TLSA") && !run.stderr.contains("delete TLSA"),
        "{}",
        run.stderr
    );
    assert_eq!(env.knot.serial(ZONE), serial + 2, "only the challenge");
    // Deployed at once, without moving the clock (a new key would have to
    // wait twice the TTL after its record was first served).
    env.run_ok(&["--rollover", &conf]);
    assert_eq!(env.deployed_spki(WWW), first);
    assert_ne!(
        env.deployed_serial(WWW),
        serial_before,
        "the renewed certificate is deployed"
    );
    assert_eq!(env.tlsa(&owner), sorted(vec![ee(&first), ee(&next)]));

    // A year later the next key takes over.
    env.advance(366 * 86400);
    let run = env.run_ok(&["--prepare", &conf]);
    assert!(run.stderr.contains("key rotation is due"), "{}", run.stderr);
    assert_eq!(
        env.prepared_spki("web"),
        next,
        "the next key becomes current"
    );
    assert_eq!(env.tlsa(&owner), sorted(vec![ee(&first), ee(&next)]));
    env.rollover_when_safe(&conf);
    assert_eq!(env.deployed_spki(WWW), next);
    let after = key_spki(&env, &next_key_file(&env, "web"));
    assert!(after != first && after != next, "a new next key");
    assert!(env.tlsa(&owner).len() >= 2, "{:?}", env.tlsa(&owner));
    env.cleanup_when_safe(&conf);
    assert_eq!(env.tlsa(&owner), sorted(vec![ee(&next), ee(&after)]));
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains(&format!("_443._tcp: 3 1 1 {after} -> [cert:web] next key")),
        "{status}"
    );
    assert!(
        status.contains(&format!("_443._tcp: 3 1 1 {next} -> [cert:web] current")),
        "{status}"
    );
    assert!(
        status.contains("next key: ecdsa-p256, made") && status.contains("becomes current from"),
        "{status}"
    );
}
