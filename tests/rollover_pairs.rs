//! During rollover, a reader of the destination always finds the certificate
//! and the key present, parseable and matching: the pair is switched by one
//! atomic symlink swap (`..data`). A reader opening the two files one after
//! the other can straddle a swap; the test then sees `..data` change between
//! its two reads, and counts that read as a straddle, not a mismatch.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::cycle::CycleEnv;

#[test]
fn a_reader_during_rollover_always_finds_a_matching_pair() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = env.config("\n[cert:web]\n[domain:www.example.test]\ncert = web\n");
    for phase in ["--prepare", "--rollover"] {
        let run = env.run(&[phase, &conf]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let site = env.dest().join("www.example.test");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let site = site.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut reads, mut straddles) = (0u32, 0u32);
            while !stop.load(Ordering::SeqCst) {
                let before = std::fs::read_link(site.join("..data")).ok();
                let pair = support::deployed_pair(&site);
                let after = std::fs::read_link(site.join("..data")).ok();
                let (cert, key) = pair.unwrap_or_else(|e| panic!("after {reads} reads: {e}"));
                if cert != key {
                    assert_ne!(
                        before, after,
                        "a mismatched pair while ..data stayed {before:?}"
                    );
                    straddles += 1;
                }
                reads += 1;
            }
            (reads, straddles)
        })
    };
    for _ in 0..3 {
        for phase in ["--prepare", "--rollover"] {
            let args = if phase == "--prepare" {
                vec![phase, "--force", &conf]
            } else {
                vec![phase, &conf]
            };
            let run = env.run(&args);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (reads, straddles) = reader.join().expect("the reader found a broken pair");
    assert!(reads > 20, "only {reads} reads");
    assert!(straddles < reads);
    assert_eq!(env.orders(), 4);
}
