//! DANE as mail servers see it. TLSA records count only when DNSSEC-signed:
//! a Knot that signs the zone itself, a validating `unbound` that trusts the
//! zone's key, and a real Postfix SMTP client with `smtp_tls_security_level =
//! dane` delivering to a Postfix whose certificate is the deployed one. What
//! counts is what Postfix logs, what Knot serves (`dig +dnssec`) and what the
//! validating resolver says.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::cycle::{CycleEnv, ZONE};
use support::knot::KnotEnv;
use support::postfix::Postfix;
use support::unbound::UnboundEnv;

const MAIL: &str = "mail.example.test";

/// A zone with TTLs of 1 s (SOA, negative caching) and the mail host.
fn zone(mail_ttl: u32) -> String {
    format!(
        "@ 1 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 1\n\
         @ 3600 IN NS ns1.{ZONE}.\n\
         ns1 3600 IN A 127.0.0.1\n\
         mail {mail_ttl} IN A 127.0.0.1\n"
    )
}

/// The certificate cycle's world with a Knot that signs `example.test`.
fn signed_env(ttl: u32) -> Option<CycleEnv> {
    if !support::require_all(&["openssl", "dig"]) {
        return None;
    }
    let knot = KnotEnv::builder().zone(ZONE, &zone(ttl)).dnssec().start()?;
    let mut env = CycleEnv::start_with_knot(knot, &[])?;
    env.domain_keys = format!("ttl = {ttl}\n");
    Some(env)
}

/// `[cert:mx]` for the mail host, its `3 1 1` record at `port`, and `extra`
/// lines in its domain section.
fn mx_config(port: u16, extra: &str) -> String {
    format!("\n[cert:mx]\n[domain:{MAIL}]\ncert = mx\ntlsa.tcp.{port} = auto:3:1:1\n{extra}")
}

/// Runs `--rollover` in real time until it succeeds (resolvers really cache
/// for the TTLs here, so the program's clock is not moved).
fn rollover_in_real_time(env: &CycleEnv, conf: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let run = env.run(&["--rollover", conf]);
        if run.code == 0 {
            return;
        }
        assert!(
            run.stderr.contains("safe from") || run.stderr.contains("not yet been seen served"),
            "rollover refused: {}",
            run.stderr
        );
        assert!(
            Instant::now() < deadline,
            "rollover still refused: {}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `--cleanup` in real time until it no longer keeps records for later.
fn cleanup_in_real_time(env: &CycleEnv, conf: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while env
        .run_ok(&["--cleanup", conf])
        .stderr
        .contains("keeps the TLSA records")
    {
        assert!(
            Instant::now() < deadline,
            "cleanup kept the records too long"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The TLSA lines `dig +dnssec` shows at `owner`: records and RRSIGs.
fn tlsa_with_sigs(env: &CycleEnv, owner: &str) -> (usize, usize) {
    let lines = env.knot.dig_dnssec(owner, "TLSA");
    let sigs = lines.iter().filter(|l| l.starts_with("TLSA ")).count();
    (lines.len() - sigs, sigs)
}

/// A message every `every` to the sender, until stopped; counts them.
struct Pump {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Pump {
    fn start(sender: &Postfix, every: Duration) -> Pump {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let (stopped, count, port) = (stop.clone(), sent.clone(), sender.port);
        let thread = std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                let n = count.load(Ordering::SeqCst);
                match support::postfix::submit(
                    port,
                    "app@send.example.test",
                    "user@example.test",
                    &format!("message {n}"),
                ) {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => errors.push(e),
                }
                std::thread::sleep(every);
            }
            errors
        });
        Pump {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops it; the number of messages handed over.
    fn finish(mut self, sender: &Postfix) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let errors = self
            .thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        assert!(
            errors.is_empty(),
            "submission failed: {errors:?}\n{}",
            sender.log()
        );
        self.sent.load(Ordering::SeqCst)
    }
}

/// What the sender logged of its deliveries: (sent, deferred, verified TLS).
fn deliveries(sender: &Postfix) -> (usize, usize, usize) {
    let log = sender.log();
    (
        log.matches("status=sent").count(),
        log.matches("status=deferred").count(),
        log.matches("Verified TLS connection established").count(),
    )
}

/// Everything a DANE mail exchange needs: a signing Knot, Pebble, a
/// validating unbound, the receiving and the sending Postfix.
struct MailWorld {
    env: CycleEnv,
    unbound: UnboundEnv,
    receiver: Option<Postfix>,
    port: u16,
    conf: String,
    /// More lines for `[cert:mx]`.
    cert_keys: String,
}

impl MailWorld {
    fn start(ttl: u32) -> Option<MailWorld> {
        if !support::require_all(&["postfix", "unbound"]) {
            return None;
        }
        let env = signed_env(ttl)?;
        let anchors = env.knot.trust_anchor(ZONE);
        let unbound = UnboundEnv::start(ZONE, &anchors, env.knot.port())?;
        let port = support::free_port();
        Some(MailWorld {
            env,
            unbound,
            receiver: None,
            port,
            conf: String::new(),
            cert_keys: String::new(),
        })
    }

    /// The receiving Postfix on `self.port`, taking up the deployed
    /// certificate on every rollover through its reload command.
    fn start_receiver(&mut self) {
        let dest = self.env.dest().join(MAIL);
        let receiver = Postfix::receiver_on(ZONE, &dest, self.port).expect("postfix");
        let command: Vec<String> = receiver
            .reload_command()
            .iter()
            .map(|a| shlex_quote(a))
            .collect();
        self.conf = self.env.config(&format!(
            "{}\n[service:mx]\nhandler = command\ncommand = {}\ncert = mx\n",
            mx_config(self.port, "")
                .replace("[cert:mx]\n", &format!("[cert:mx]\n{}", self.cert_keys)),
            command.join(" ")
        ));
        self.receiver = Some(receiver);
    }
}

fn shlex_quote(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The real-client proof: Postfix delivers with DANE through the first
/// certificate and three renewals with a new key each, a message every second,
/// every one verified and none deferred.
#[tokio::test]
async fn postfix_with_dane_never_defers_across_cycles() {
    let Some(mut world) = MailWorld::start(3) else {
        return;
    };
    // The first certificate, deployed once it is safe; the receiver starts on
    // it (its config is written before the certificate exists).
    let first_conf = world.env.config(&mx_config(world.port, ""));
    world.env.run_ok(&["--prepare", &first_conf]);
    rollover_in_real_time(&world.env, &first_conf);
    world.start_receiver();
    let conf = world.conf.clone();
    let owner = format!("_{}._tcp.{MAIL}", world.port);
    let validated = world.unbound.dig(&owner, "TLSA");
    assert!(
        validated.contains(" ad;") || validated.contains(" ad "),
        "unbound validates the TLSA records: {validated}"
    );
    let sender =
        Postfix::dane_sender(MAIL, world.port, &world.unbound.resolv_conf()).expect("postfix");
    let pump = Pump::start(&sender, Duration::from_secs(1));

    for cycle in 1..=3 {
        let run = world.env.run_ok(&["--prepare", "--force", &conf]);
        assert!(
            !run.stderr.contains("not DNSSEC-signed"),
            "the zone is signed: {}",
            run.stderr
        );
        let (records, sigs) = tlsa_with_sigs(&world.env, &owner);
        assert_eq!(
            (records, sigs),
            (2, 1),
            "cycle {cycle}: old and new, signed"
        );
        rollover_in_real_time(&world.env, &conf);
        cleanup_in_real_time(&world.env, &conf);
        assert_eq!(tlsa_with_sigs(&world.env, &owner), (1, 1), "cycle {cycle}");
    }
    let sent = pump.finish(&sender);
    all_delivered_verified(&sender, sent);
}

/// Every one of the `sent` messages delivered over a DANE-verified
/// connection, none deferred.
fn all_delivered_verified(sender: &Postfix, sent: usize) {
    assert!(sent >= 10, "only {sent} messages");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (delivered, deferred, verified) = deliveries(sender);
        assert_eq!(deferred, 0, "deferred mail:\n{}", sender.log());
        if delivered >= sent {
            assert!(
                verified >= delivered,
                "every delivery over a DANE-verified connection:\n{}",
                sender.log()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {sent} delivered:\n{}",
            sender.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!sender.log().contains("Untrusted TLS"), "{}", sender.log());
}

/// The real-client proof with `keystrategy = staged`: a renewal that keeps
/// the key (deployed at once), then a key rotation a year later (the next
/// key, published since the start, becomes current; a new next key follows
/// and the old record goes), a message every second, none deferred.
#[tokio::test]
async fn postfix_with_dane_never_defers_through_a_staged_key_rotation() {
    let Some(mut world) = MailWorld::start(3) else {
        return;
    };
    world.cert_keys = "keystrategy = staged\nkeyrotatedays = 365\n".into();
    let first_conf = world.env.config(
        &mx_config(world.port, "").replace("[cert:mx]\n", "[cert:mx]\nkeystrategy = staged\n"),
    );
    world.env.run_ok(&["--prepare", &first_conf]);
    rollover_in_real_time(&world.env, &first_conf);
    world.start_receiver();
    let conf = world.conf.clone();
    let owner = format!("_{}._tcp.{MAIL}", world.port);
    assert_eq!(
        tlsa_with_sigs(&world.env, &owner),
        (2, 1),
        "current and next"
    );
    let sender =
        Postfix::dane_sender(MAIL, world.port, &world.unbound.resolv_conf()).expect("postfix");
    let pump = Pump::start(&sender, Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(3));

    // A renewal on the same key: deployed at once.
    world.env.run_ok(&["--prepare", "--force", &conf]);
    world.env.run_ok(&["--rollover", &conf]);
    std::thread::sleep(Duration::from_secs(3));

    // The rotation, a year later on the program's clock.
    world.env.advance(366 * 86400);
    world.env.run_ok(&["--prepare", &conf]);
    assert_eq!(tlsa_with_sigs(&world.env, &owner), (2, 1));
    rollover_in_real_time(&world.env, &conf);
    cleanup_in_real_time(&world.env, &conf);
    assert_eq!(
        tlsa_with_sigs(&world.env, &owner),
        (2, 1),
        "current and a new next"
    );
    std::thread::sleep(Duration::from_secs(3));
    let sent = pump.finish(&sender);
    all_delivered_verified(&sender, sent);
}

/// The same harness fails when the rollover does not wait: a certificate
/// deployed with `--force` before resolvers can know its record makes Postfix
/// defer mail.
#[tokio::test]
async fn a_forced_rollover_before_the_records_are_known_defers_mail() {
    let Some(mut world) = MailWorld::start(30) else {
        return;
    };
    let first_conf = world.env.config(&mx_config(world.port, ""));
    world.env.run_ok(&["--prepare", &first_conf]);
    // No resolver has seen anything yet: the first deployment need not wait.
    world.env.run_ok(&["--rollover", "--force", &first_conf]);
    world.start_receiver();
    let conf = world.conf.clone();
    let sender =
        Postfix::dane_sender(MAIL, world.port, &world.unbound.resolv_conf()).expect("postfix");
    let owner = format!("_{}._tcp.{MAIL}", world.port);
    let pump = Pump::start(&sender, Duration::from_secs(1));
    // The resolver now holds the first record for 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries(&sender).0 == 0 {
        assert!(Instant::now() < deadline, "no delivery: {}", sender.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let cached = Instant::now();
    let _ = world.unbound.dig(&owner, "TLSA");
    world.env.run_ok(&["--prepare", "--force", &conf]);
    let run = world.env.run_ok(&["--rollover", "--force", &conf]);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert!(
        cached.elapsed() < Duration::from_secs(25),
        "prepare took too long for the resolver's cache to still hold the old record"
    );
    std::thread::sleep(Duration::from_secs(4));
    pump.finish(&sender);
    let log = sender.log();
    assert!(
        deliveries(&sender).1 > 0,
        "a DANE client must defer mail to a certificate its resolver has no record for:\n{log}"
    );
}

/// A provider stand-in that signs later: Knot serves the new TLSA record
/// without its RRSIG until signing is turned on again; rollover waits for the
/// signature, `--status` says which records are signed.
#[tokio::test]
async fn records_without_their_signature_are_not_served_in_a_signed_zone() {
    let Some(mut env) = signed_env(1) else { return };
    let port = support::free_port();
    let owner = format!("_{port}._tcp.{MAIL}");
    env.knot.set_signing(false);
    let conf = env.config(&mx_config(port, ""));
    env.run_ok(&["--prepare", &conf]);
    assert_eq!(tlsa_with_sigs(&env, &owner), (1, 0), "served, unsigned");
    for _ in 0..3 {
        let run = env.run(&["--rollover", &conf]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("without their RRSIG"), "{}", run.stderr);
        env.advance(600);
    }
    assert!(!env.dest().join(MAIL).exists(), "nothing deployed");
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains(&format!("zone {ZONE}: DNSSEC-signed")),
        "{status}"
    );
    assert!(
        status.contains("NOT signed everywhere: RRSIG from 0/1"),
        "{status}"
    );

    env.knot.set_signing(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tlsa_with_sigs(&env, &owner) != (1, 1) {
        assert!(
            Instant::now() < deadline,
            "knot did not sign: {}",
            env.knot.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(
        run.code, 1,
        "first seen served now, then the wait: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("safe from") || run.stderr.contains("not yet been seen served"),
        "{}",
        run.stderr
    );
    env.advance(60);
    env.run_ok(&["--rollover", &conf]);
    assert!(env.dest().join(MAIL).join("cert.pem").exists());
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains("signed (RRSIG from 1/1 servers)"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.run_ok(&["--status", "--json", &conf]).stdout).unwrap();
    assert_eq!(json["tlsa"][0]["zone_signed"], true, "{json}");
    assert_eq!(json["tlsa"][0]["owners"][0]["signed"], true, "{json}");
    assert_eq!(
        json["tlsa"][0]["records"][0]["matches"][0], "[cert:mx] current",
        "{json}"
    );
    assert_eq!(json["tlsa"][0]["records"][0]["published"], true, "{json}");
}

/// `dnssecresolver`: rollover waits until a validating resolver gives the
/// records with the AD bit; an unreachable or non-validating one keeps it
/// waiting with a clear reason, and nothing is deployed.
#[tokio::test]
async fn dnssecresolver_must_validate_before_rollover() {
    let Some(env) = signed_env(1) else { return };
    if !support::require_all(&["unbound"]) {
        return;
    }
    let anchors = env.knot.trust_anchor(ZONE);
    let Some(unbound) = UnboundEnv::start(ZONE, &anchors, env.knot.port()) else {
        return;
    };
    let port = support::free_port();
    let unreachable = format!("127.0.0.1:{}", support::free_port());
    let knot = env.knot.server();
    let conf_with =
        |resolver: &str| env.config(&mx_config(port, &format!("dnssecresolver = {resolver}\n")));
    env.run_ok(&["--prepare", &conf_with(&unreachable)]);
    for (resolver, why) in [
        (unreachable.as_str(), "dnssecresolver 127.0.0.1:"),
        (knot.as_str(), "without the AD bit"),
    ] {
        let conf = conf_with(resolver);
        env.advance(600);
        let run = env.run(&["--rollover", &conf]);
        assert_eq!(run.code, 1, "{resolver}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{resolver}: {}", run.stderr);
        assert!(!env.dest().join(MAIL).exists(), "nothing deployed");
    }
    let conf = conf_with(&unbound.addr().to_string());
    for _ in 0..5 {
        if env.run(&["--rollover", &conf]).code == 0 {
            break;
        }
        env.advance(60);
    }
    assert!(
        env.dest().join(MAIL).join("cert.pem").exists(),
        "deployed once the resolver validates: {}",
        unbound.log()
    );
}

/// Bad values of `dnssecresolver` are configuration errors with file:line.
#[test]
fn a_bad_dnssecresolver_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = support::cdm::write_config(
        dir.path(),
        "c.conf",
        &format!(
            "[cdm]\nstatedir = {}\n[cert:web]\n[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = web\ndnssecresolver = 127.0.0.1:port\n",
            dir.path().display()
        ),
    );
    let run = support::cdm::cdm(dir.path(), &["--prepare", &conf]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("c.conf:10: ") && run.stderr.contains("dnssecresolver"),
        "{}",
        run.stderr
    );
}

/// An unsigned zone with TLSA records: `--check`, `--prepare` and `--status`
/// say that DANE clients ignore them.
#[tokio::test]
async fn an_unsigned_zone_with_tlsa_is_warned_about() {
    let Some(env) = CycleEnv::start_with_zone(&zone(1), &[]) else {
        return;
    };
    let conf = env.config(&mx_config(25, ""));
    let check = env.run_ok(&["--check", &conf]);
    assert!(
        check.stdout.contains(&format!("zone {ZONE} is NOT signed")),
        "{}",
        check.stdout
    );
    assert!(
        check.stderr.contains("not DNSSEC-signed"),
        "{}",
        check.stderr
    );
    let prepare = env.run_ok(&["--prepare", &conf]);
    assert!(
        prepare.stderr.contains("not DNSSEC-signed") && prepare.stderr.contains("ignore"),
        "{}",
        prepare.stderr
    );
    let status = env.run_ok(&["--status", &conf]).stdout;
    assert!(
        status.contains(&format!("WARNING: zone {ZONE} is not DNSSEC-signed")),
        "{status}"
    );
    // A signed zone gives no such warning.
    let Some(signed) = signed_env(1) else { return };
    let conf = signed.config(&mx_config(25, ""));
    let check = signed.run_ok(&["--check", &conf]);
    assert!(
        check.stdout.contains(&format!("zone {ZONE} is signed")),
        "{}",
        check.stdout
    );
    assert!(
        !check.stderr.contains("not DNSSEC-signed"),
        "{}",
        check.stderr
    );
}
