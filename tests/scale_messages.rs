//! The messages a run sends at the size of a hosting provider: 100 zones of
//! three names each on one Knot. Counted by Knot's statistics module (what the
//! server answered), so a change that adds per-name traffic fails here, not
//! only in a benchmark: one SOA lookup, one AXFR and at most one UPDATE per
//! zone, and no UPDATE in a run with nothing to change.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use support::cdm::{cdm, write_config};
use support::knot::{KnotEnv, minimal_zone};

const ZONES: usize = 100;

fn zone(i: usize) -> String {
    format!("z{i}.test")
}

fn config(knot: &KnotEnv, statedir: &std::path::Path, extra: &str) -> String {
    let mut text = format!(
        "[cdm]\nstatedir = {}\nmaxconcurrency = 8\n\n[domain]\n",
        statedir.display()
    );
    for (key, value) in knot.provider_keys() {
        text.push_str(&format!("{key} = {value}\n"));
    }
    for i in 0..ZONES {
        let z = zone(i);
        text.push_str(&format!(
            "\n[domain:{z}]\nip4 = 192.0.2.{n}\nmx.10 = mail.{z}\n\
             [domain:www.{z}]\nip4 = 192.0.2.{n}\nip6 = 2001:db8::{n:x}\n\
             [domain:mail.{z}]\nip4 = 198.51.100.{n}\n",
            n = i % 250 + 1
        ));
    }
    text.push_str(extra);
    text
}

fn start() -> Option<KnotEnv> {
    let mut builder = KnotEnv::builder();
    for i in 0..ZONES {
        builder = builder.zone(&zone(i), &minimal_zone(&zone(i)));
    }
    builder.start()
}

#[test]
fn one_lookup_one_read_and_one_update_per_zone_and_none_when_nothing_changes() {
    let Some(knot) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "zones.conf",
        &config(&knot, &dir.path().join("state"), ""),
    );

    let before = knot.messages();
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = knot.messages().since(&before);
    assert_eq!(first.operation("update"), ZONES as u64, "{first:?}");
    assert_eq!(first.operation("axfr"), ZONES as u64, "{first:?}");
    assert_eq!(first.query_type("SOA"), ZONES as u64, "{first:?}");
    assert_eq!(
        first.operation("query"),
        ZONES as u64,
        "only the zone lookups are queries: {first:?}"
    );
    for i in [0, ZONES / 2, ZONES - 1] {
        let z = zone(i);
        assert_eq!(knot.serial(&z), 2, "{z}: one UPDATE, one serial step");
        assert_eq!(
            knot.dig(&format!("www.{z}"), "AAAA"),
            [format!("2001:db8::{:x}", i % 250 + 1)]
        );
        assert_eq!(knot.dig(&z, "MX"), [format!("10 mail.{z}.")]);
    }

    let before = knot.messages();
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let noop = knot.messages().since(&before);
    assert_eq!(noop.operation("update"), 0, "nothing to change: {noop:?}");
    assert_eq!(noop.operation("axfr"), ZONES as u64, "{noop:?}");
    assert_eq!(noop.operation("query"), ZONES as u64, "{noop:?}");
}

/// A zone the server does not have, among the others: the others complete,
/// the failure names the zone, the exit status is 1, and the next run changes
/// nothing else.
#[test]
fn one_failing_zone_among_many_fails_alone() {
    let Some(knot) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[domain:www.missing.test]\nip4 = 192.0.2.99\n";
    let conf = write_config(
        dir.path(),
        "zones.conf",
        &config(&knot, &dir.path().join("state"), extra),
    );
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("www.missing.test"), "{}", run.stderr);
    for i in [0, ZONES - 1] {
        assert_eq!(knot.serial(&zone(i)), 2, "the other zones were changed");
    }

    let before = knot.messages();
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let again = knot.messages().since(&before);
    assert_eq!(
        again.operation("update"),
        0,
        "only the failed zone is retried: {again:?}"
    );
}
