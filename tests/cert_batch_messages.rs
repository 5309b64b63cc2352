//! What issuing many certificates at once costs the CA and the DNS servers:
//! six certificates (one name each) in two zones, one `--prepare` with a new
//! state directory, against a real Pebble validating against a real Knot.
//! Counted where it lands (Pebble's request log, Knot's statistics module),
//! so a change that adds per-certificate or per-name traffic fails here:
//! one account for all, each authorization fetched once and each challenge
//! answered once, the challenge records of all orders in one UPDATE per zone
//! and removed in one more.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use support::cycle::CycleEnv;
use support::knot::{KnotEnv, minimal_zone};

const ZONES: [&str; 2] = ["one.test", "two.test"];
const PER_ZONE: usize = 3;

/// How many requests of `what` (method and path start) Pebble logged.
fn requests(env: &CycleEnv, what: &str) -> usize {
    env.pebble.log().matches(what).count()
}

#[test]
fn many_certificates_share_the_account_and_one_update_per_zone() {
    let mut knot = KnotEnv::builder();
    for zone in ZONES {
        knot = knot.zone(zone, &minimal_zone(zone));
    }
    let Some(knot) = knot.start() else { return };
    let Some(env) = CycleEnv::start_with_knot(knot, &[]) else {
        return;
    };
    let mut extra = String::new();
    let mut names = Vec::new();
    for zone in ZONES {
        for i in 0..PER_ZONE {
            let name = format!("h{i}.{zone}");
            let section = format!("c{i}{}", &zone[..3]);
            extra.push_str(&format!(
                "\n[cert:{section}]\n[domain:{name}]\ncert = {section}\n"
            ));
            names.push(name);
        }
    }
    let conf = env.config(&extra);
    let certs = names.len();

    let before = env.knot.messages();
    let directory_reads = requests(&env, "GET /dir");
    let run = env.run_ok(&["--prepare", &conf]);
    let dns = env.knot.messages().since(&before);

    let status = env.run_ok(&["--status", &conf]).stdout;
    for name in &names {
        assert!(
            status.contains(name.as_str()),
            "{name} has no prepared certificate: {status}\n{}",
            run.stderr
        );
        assert!(
            env.knot
                .dig(&format!("_acme-challenge.{name}"), "TXT")
                .is_empty(),
            "challenge record left at {name}"
        );
    }
    assert_eq!(requests(&env, "POST /order-plz"), certs, "one order each");
    assert_eq!(requests(&env, "POST /finalize-order/"), certs);
    assert_eq!(requests(&env, "POST /certZ/"), certs, "one download each");
    assert_eq!(requests(&env, "POST /sign-me-up"), 1, "one account for all");
    assert_eq!(
        requests(&env, "GET /dir") - directory_reads,
        1,
        "the directory is read once"
    );
    assert_eq!(
        requests(&env, "POST /authZ/"),
        certs,
        "each authorization fetched once"
    );
    assert_eq!(
        requests(&env, "POST /chalZ/"),
        certs,
        "each challenge answered once"
    );
    assert_eq!(
        dns.operation("update"),
        2 * ZONES.len() as u64,
        "the challenge records of all orders go out in one UPDATE per zone and go in one more: {dns:?}"
    );
}
