//! `maxordersperhour` against a real Pebble: a run starts no more new orders
//! than the limit allows in an hour, says which certificates wait and until
//! when, and a run after that hour orders the rest. Counted in Pebble's own
//! request log.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use support::cycle::CycleEnv;

#[test]
fn orders_beyond_the_hourly_limit_wait_for_the_next_hour() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let mut extra = String::new();
    for name in ["a", "b", "c"] {
        extra.push_str(&format!(
            "\n[cert:{name}]\n[domain:{name}.example.test]\ncert = {name}\nip4 = 192.0.2.1\n"
        ));
    }
    let conf = env.config(&extra);
    let limit = support::cdm::write_config(
        env.dir.path(),
        "limit.conf",
        "[cdm]\nmaxordersperhour = 2\n",
    );
    env.advance(0);

    let first = env.run_ok(&["--auto", &conf, &limit]);
    assert_eq!(env.orders(), 2, "{}", first.stderr);
    assert!(
        first.stderr.contains("[cert:c]") && first.stderr.contains("maxordersperhour = 2"),
        "the held-back certificate and why: {}",
        first.stderr
    );
    assert!(env.dest().join("a.example.test").join("cert.pem").exists());
    assert!(!env.dest().join("c.example.test").exists());

    // Within the hour: still held back, no order.
    env.advance(30 * 60);
    env.run_ok(&["--auto", &conf, &limit]);
    assert_eq!(env.orders(), 2);

    // An hour after the first orders: the third is ordered and deployed.
    env.advance(31 * 60);
    let later = env.run_ok(&["--auto", &conf, &limit]);
    assert_eq!(env.orders(), 3, "{}", later.stderr);
    assert!(env.dest().join("c.example.test").join("cert.pem").exists());
}
