//! During rollover, a reader of the destination always finds the certificate
//! and the key present, parseable and matching: the pair is switched by one
//! atomic symlink swap (`..data`). A reader opening the two files one after
//! the other can straddle a swap; the test then sees `..data` change between
//! its two reads, and counts that read as a straddle, not a mismatch.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::cycle::CycleEnv;

/// The public key of the certificate and of the private key, computed
/// without the program's code (x509-parser and rcgen).
fn pair_of(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert_pem = std::fs::read(dir.join("cert.pem")).map_err(|e| format!("cert.pem: {e}"))?;
    let key_pem = std::fs::read_to_string(dir.join("privkey.pem"))
        .map_err(|e| format!("privkey.pem: {e}"))?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&cert_pem).map_err(|e| format!("cert.pem: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| format!("cert.pem: {e}"))?;
    let cert_key = cert.public_key().subject_public_key.data.to_vec();
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| format!("privkey.pem: {e}"))?;
    Ok((cert_key, key.public_key_raw().to_vec()))
}

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
                let pair = pair_of(&site);
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
