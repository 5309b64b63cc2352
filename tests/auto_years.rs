//! Two simulated years of `--auto`, as a timer would run it: a certificate
//! with a TLSA record, a DKIM key, DH parameters and a service, against a real
//! Knot. The program's clock jumps from one planned time to the next (as
//! `--status --json` gives them), and after every run the test looks at the world — what
//! Knot serves, the deployed certificate, the signing configuration — and
//! checks the promises, not only the end state:
//!
//! - the deployed certificate's TLSA record is served, and was served at least
//!   twice max(TTL, negative TTL) before that certificate was deployed;
//! - the selector in the signing configuration is served, was served long
//!   enough before it appeared there, and the previous one stays published for
//!   `dkimdrain` after it left;
//! - no certificate is ever in its last day; no DKIM key is older than
//!   `rotatedays` plus one run interval;
//! - the CA issued exactly the certificates that were deployed; at the end,
//!   every old record and file is gone.
//!
//! The CA is the scripted one of support/mini_ca.rs: Debian's Pebble stamps
//! its certificates with the real time, which a moved clock cannot age; this
//! CA issues certificates valid for 90 days on the program's clock.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use support::cdm::{CLOCK, Run, cdm_env, write_config};
use support::knot::{KnotEnv, minimal_zone};
use support::mini_ca::MiniCa;
use support::tls::spki_sha256;

const ZONE: &str = "example.test";
const WWW: &str = "www.example.test";
/// The CA's certificates last this long on the program's clock.
const VALIDITY_DAYS: i64 = 90;
/// Twice the longest of the record TTL (300 s) and the negative-caching TTL
/// (min(SOA TTL 3600, SOA MINIMUM 300)) of the test zone.
const SAFE_WAIT: i64 = 600;
const DRAIN_DAYS: i64 = 7;
const ROTATE_DAYS: i64 = 60;
/// The longest the clock moves between two runs when nothing is planned
/// sooner (the runs come at every planned time: renewals, rotations, the end
/// of each wait and drain).
const MAX_STEP: i64 = 10 * 86_400;

struct World {
    knot: KnotEnv,
    ca: MiniCa,
    dir: tempfile::TempDir,
    start: DateTime<Utc>,
    conf: String,
}

impl World {
    fn start() -> Option<World> {
        if !support::require_all(&["openssl", "dig"]) {
            return None;
        }
        let knot = KnotEnv::start(ZONE, &minimal_zone(ZONE))?;
        let ca = MiniCa::start()?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let script = support::cdm::write_script(
            d,
            "reload.sh",
            &format!("echo reload >> {}/reloads.log\n", d.display()),
        );
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\nnameservers = {}\n",
            d.join("state").display(),
            knot.server()
        );
        for (key, value) in knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!(
            "\n[cert:web]\nca = {}\nkeytype = ecdsa-p256\ndestination = {1}/dest\nrenewdays = 30\n\
             [domain:{WWW}]\ncert = web\nip4 = 192.0.2.1\ntlsa.tcp.443 = auto:3:1:1\ndkim = auto:mail\n\
             [dkim:mail]\nkeytype = ed25519\nrotatedays = {ROTATE_DAYS}\ndkimdrain = {DRAIN_DAYS}d\n\
             keylocation = {1}/dkim\nsigningconfdestinationfile = {1}/rspamd/dkim_signing.conf\n\
             [dhparam:web]\nkeysize = 512\nrotatedays = 90\nfilename = {1}/dh.pem\n\
             [service:app]\nhandler = command\ncommand = {2}\n",
            ca.directory_url(),
            d.display(),
            script.display()
        ));
        let conf = write_config(d, "cdm.conf", &text);
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        Some(World {
            knot,
            ca,
            dir,
            start: Utc::now(),
            conf,
        })
    }

    /// Runs the binary with the program's clock at `at`; the CA's next
    /// certificates last [`VALIDITY_DAYS`] from then.
    fn run(&self, at: DateTime<Utc>, args: &[&str]) -> Run {
        let offset = (at - Utc::now()).num_days().max(0);
        self.ca.validity_days(VALIDITY_DAYS + offset + 1);
        let mut args = args.to_vec();
        args.push(&self.conf);
        cdm_env(self.dir.path(), &args, &[(CLOCK, at.to_rfc3339())])
    }

    fn auto(&self, at: DateTime<Utc>) {
        let run = self.run(at, &["--auto"]);
        assert_eq!(run.code, 0, "--auto at {at}:\n{}", run.stderr);
        if std::env::var("SHOW").is_ok() {
            eprintln!("{}", run.stderr);
        }
    }

    /// The earliest time any section has something planned, after `now`.
    fn next_planned(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let run = self.run(now, &["--status", "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let status: Value = serde_json::from_str(&run.stdout).unwrap();
        let mut times = Vec::new();
        for section in status["sections"].as_array().unwrap() {
            for field in ["renewal_due_at", "rotation_due_at"] {
                times.push(section[field].clone());
            }
            times.push(section["next"]["at"].clone());
            for old in section["retired"].as_array().into_iter().flatten() {
                times.push(old["drained_at"].clone());
            }
        }
        times
            .iter()
            .filter_map(|t| t.as_str())
            .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > now)
            .min()
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// The 3 1 1 records Knot serves at `_443._tcp.www`, as hex.
    fn tlsa(&self) -> BTreeSet<String> {
        self.knot
            .dig(&format!("_443._tcp.{WWW}"), "TLSA")
            .iter()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(&words[..3], ["3", "1", "1"], "{l}");
                words[3..].concat().to_lowercase()
            })
            .collect()
    }

    /// The SPKI hash and expiry of the deployed certificate.
    fn deployed(&self) -> Option<(String, DateTime<Utc>)> {
        let cert = self.path(&format!("dest/{WWW}/cert.pem"));
        let pem = std::fs::read_to_string(&cert).ok()?;
        let spki = spki_sha256(&pem, self.dir.path())?;
        let end = support::openssl(
            self.dir.path(),
            &["x509", "-noout", "-enddate", "-in", cert.to_str()?],
        );
        let end = end.trim().trim_start_matches("notAfter=");
        let end = DateTime::parse_from_str(&end.replace("GMT", "+0000"), "%b %e %H:%M:%S %Y %z")
            .unwrap_or_else(|e| panic!("{end}: {e}"))
            .with_timezone(&Utc);
        Some((spki, end))
    }

    /// The selector the signing configuration names.
    fn signing_selector(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path("rspamd/dkim_signing.conf")).ok()?;
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("selector"))?;
        Some(line.split('"').nth(1)?.to_string())
    }

    /// The DKIM selectors Knot serves at `_domainkey.www`.
    fn selectors_served(&self, known: &BTreeSet<String>) -> BTreeSet<String> {
        known
            .iter()
            .filter(|s| {
                !self
                    .knot
                    .dig(&format!("{s}._domainkey.{WWW}"), "TXT")
                    .is_empty()
            })
            .cloned()
            .collect()
    }

    /// The selectors `state.json` names (current, prepared, retired).
    fn selectors_in_state(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.path("state/state.json")) else {
            return Vec::new();
        };
        let state: Value = serde_json::from_str(&text).unwrap();
        let mail = &state["dkim"]["mail"];
        let mut keys: Vec<&Value> = vec![&mail["current"], &mail["prepared"]];
        keys.extend(mail["retired"].as_array().into_iter().flatten());
        keys.iter()
            .filter_map(|k| k["selector"].as_str().map(str::to_string))
            .collect()
    }

    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.path("reloads.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// What the test has seen so far, at the end of each run.
#[derive(Default)]
struct Seen {
    /// When each TLSA record was first served.
    tlsa_first: BTreeMap<String, DateTime<Utc>>,
    /// When each deployed certificate (SPKI) was first seen deployed.
    deployed_first: BTreeMap<String, DateTime<Utc>>,
    /// When each DKIM selector's record was first served, and when it first
    /// and last stood in the signing configuration.
    selector_first: BTreeMap<String, DateTime<Utc>>,
    signing_first: BTreeMap<String, DateTime<Utc>>,
    signing_last: BTreeMap<String, DateTime<Utc>>,
    /// The selectors to ask Knot about: the state's, and the old ones that
    /// signed until they are seen gone.
    selectors: BTreeSet<String>,
    /// Old selectors seen unpublished after their drain.
    drained: usize,
}

fn selector_time(selector: &str) -> DateTime<Utc> {
    let unix: i64 = selector.rsplit('_').next().unwrap().parse().unwrap();
    DateTime::from_timestamp(unix, 0).unwrap()
}

/// Checks every promise at `now`, after a run.
fn check(world: &World, seen: &mut Seen, now: DateTime<Utc>) {
    let served = world.tlsa();
    for record in &served {
        seen.tlsa_first.entry(record.clone()).or_insert(now);
    }
    if let Some((spki, not_after)) = world.deployed() {
        assert!(
            served.contains(&spki),
            "{now}: the deployed certificate has no TLSA record"
        );
        let deployed = *seen.deployed_first.entry(spki.clone()).or_insert(now);
        if deployed == now {
            let first = seen.tlsa_first[&spki];
            assert!(
                (now - first).num_seconds() >= SAFE_WAIT,
                "{now}: deployed {}s after its TLSA record was first served",
                (now - first).num_seconds()
            );
        }
        assert!(
            not_after - now > Duration::days(1),
            "{now}: the deployed certificate expires {not_after}"
        );
    }
    // DKIM: the selector signing now is served and was served long enough.
    // (The state only tells which names to ask Knot about.)
    let signing = world.signing_selector();
    seen.selectors.extend(signing.clone());
    seen.selectors.extend(world.selectors_in_state());
    seen.selectors.retain(|s| {
        world.selectors_in_state().contains(s)
            || seen.signing_last.contains_key(s)
            || Some(s) == signing.as_ref()
    });
    let served_selectors = world.selectors_served(&seen.selectors);
    for s in &served_selectors {
        seen.selector_first.entry(s.clone()).or_insert(now);
    }
    if let Some(s) = &signing {
        assert!(
            served_selectors.contains(s),
            "{now}: selector {s} signs but is not served"
        );
        let first_signing = *seen.signing_first.entry(s.clone()).or_insert(now);
        if first_signing == now {
            let first_served = seen.selector_first[s];
            assert!(
                (now - first_served).num_seconds() >= SAFE_WAIT,
                "{now}: selector {s} signs {}s after its record was first served",
                (now - first_served).num_seconds()
            );
        }
        seen.signing_last.insert(s.clone(), now);
        assert!(
            now - selector_time(s)
                <= Duration::days(ROTATE_DAYS) + Duration::seconds(MAX_STEP) + Duration::hours(1),
            "{now}: selector {s} is older than rotatedays"
        );
    }
    // An old selector stays published for the drain after it stopped signing
    // (it stopped after the last time it was seen signing).
    let gone: Vec<String> = seen
        .signing_last
        .keys()
        .filter(|old| Some(*old) != signing.as_ref() && !served_selectors.contains(*old))
        .cloned()
        .collect();
    for old in gone {
        let last = seen.signing_last[&old];
        assert!(
            now - last >= Duration::days(DRAIN_DAYS),
            "{now}: selector {old} was unpublished {}h after it last signed",
            (now - last).num_hours()
        );
        seen.signing_last.remove(&old);
        seen.selectors.remove(&old);
        seen.drained += 1;
    }
}

#[test]
fn two_years_of_auto_keep_every_promise() {
    let Some(world) = World::start() else {
        return;
    };
    let mut seen = Seen::default();
    let end = world.start + Duration::days(730);
    let mut now = world.start;
    let mut runs = 0;
    while now < end {
        world.auto(now);
        runs += 1;
        check(&world, &mut seen, now);
        let next = world
            .next_planned(now)
            .unwrap_or(now + Duration::seconds(MAX_STEP));
        now = next
            .min(now + Duration::seconds(MAX_STEP))
            .max(now + Duration::seconds(1));
    }
    // Let the last cycle finish: past every wait and drain.
    for _ in 0..3 {
        now += Duration::days(DRAIN_DAYS + 1);
        world.auto(now);
        check(&world, &mut seen, now);
    }

    let renewals = seen.deployed_first.len();
    assert!(renewals >= 10, "only {renewals} certificates in two years");
    assert!(
        seen.signing_first.len() >= 10,
        "only {} DKIM keys",
        seen.signing_first.len()
    );
    // The CA issued exactly what was deployed (a certificate prepared at the
    // very end, not deployed yet, may be one more).
    let orders = world.ca.order_requests().len();
    assert!(
        orders == renewals || orders == renewals + 1,
        "{orders} orders for {renewals} deployed certificates"
    );
    // One reload per run that deployed something; at least one per renewal.
    assert!(world.reloads() >= renewals, "{} reloads", world.reloads());

    // In the end nothing old is left.
    let (current, _) = world.deployed().unwrap();
    let tlsa = world.tlsa();
    assert!(
        tlsa.len() <= 2 && tlsa.contains(&current),
        "old TLSA records left: {tlsa:?}"
    );
    let selectors = world.selectors_served(&world.selectors_in_state().into_iter().collect());
    assert!(selectors.len() <= 2, "old selectors left: {selectors:?}");
    let certs = std::fs::read_dir(world.path("state/certs/web"))
        .unwrap()
        .count();
    assert!(
        certs <= 2,
        "{certs} certificates kept in the state directory"
    );
    let versions = std::fs::read_dir(world.path(&format!("dest/{WWW}")))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("..") && n != "..data"
        })
        .count();
    assert_eq!(versions, 1, "old versions at the destination");
    let dkim_keys = std::fs::read_dir(world.path("dkim"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "key"))
        })
        .count();
    assert!(dkim_keys <= 2, "{dkim_keys} DKIM key files left");
    eprintln!(
        "{runs} runs, {renewals} certificates, {} DKIM keys",
        seen.signing_first.len()
    );
}
