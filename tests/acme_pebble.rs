//! ACME issuance against a real Pebble validating DNS-01 against a real Knot.
//! Each test starts its own servers on free loopback ports.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cryptdomainmgr::acme::{
    AcmeClient, AcmeConfig, AcmeError, ChallengeRecord, Dns01, Dns01Error, Limits,
};
use cryptdomainmgr::material::cert::{KeyType, generate_key, key_matches_cert};
use support::knot::{KnotEnv, minimal_zone};
use support::pebble::PebbleEnv;

const ZONE: &str = "example.test";

/// Runs an nsupdate script against `knot` with its update key: an independent
/// DNS-01 publisher, so these tests exercise the ACME client alone.
fn nsupdate(knot: &KnotEnv, lines: &[String]) -> Result<(), Dns01Error> {
    use std::io::Write;
    let mut script = format!("server 127.0.0.1 {}\nzone {ZONE}\n", knot.port());
    for l in lines {
        script.push_str(l);
        script.push('\n');
    }
    script.push_str("send\n");
    let mut child = Command::new("nsupdate")
        .arg("-y")
        .arg(format!("hmac-sha256:{}:{}", knot.key_name(), knot.secret()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("nsupdate: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

fn start_knot() -> Option<KnotEnv> {
    if !support::require("nsupdate") {
        return None;
    }
    KnotEnv::start(ZONE, &minimal_zone(ZONE))
}

/// DNS-01 through nsupdate; `corrupt` publishes a wrong value.
struct KnotDns01<'a> {
    knot: &'a KnotEnv,
    corrupt: bool,
}

#[async_trait]
impl Dns01 for KnotDns01<'_> {
    async fn publish(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let lines: Vec<String> = challenges
            .iter()
            .map(|c| {
                let value = if self.corrupt {
                    format!("wrong{}", c.value)
                } else {
                    c.value.clone()
                };
                format!("update add {}. 60 TXT \"{value}\"", c.name)
            })
            .collect();
        nsupdate(self.knot, &lines)
    }

    async fn wait_until_served(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let served = challenges
                .iter()
                .all(|c| !self.knot.dig(c.name.as_str(), "TXT").is_empty());
            if served {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("challenge records not served within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn remove(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let lines: Vec<String> = challenges
            .iter()
            .map(|c| format!("update delete {}. TXT", c.name))
            .collect();
        nsupdate(self.knot, &lines)
    }
}

fn names() -> Vec<String> {
    vec![format!("www.{ZONE}"), ZONE.to_string()]
}

fn config(pebble: &PebbleEnv, account_dir: &Path) -> AcmeConfig {
    AcmeConfig {
        ca: pebble.directory_url(),
        email: Some("hostmaster@example.test".into()),
        eab: None,
        cacert: Some(pebble.ca_cert_path()),
        account_dir: account_dir.to_path_buf(),
        limits: Limits {
            order_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
    }
}

fn assert_no_challenge_records(knot: &KnotEnv) {
    for name in names() {
        let txt = knot.dig(&format!("_acme-challenge.{name}"), "TXT");
        assert!(txt.is_empty(), "challenge record left for {name}: {txt:?}");
    }
}

/// Verifies the chain with `openssl verify` against Pebble's root.
fn openssl_verify(dir: &Path, root_pem: &str, chain_pem: &str) {
    let end = "-----END CERTIFICATE-----";
    let split = chain_pem.find(end).unwrap() + end.len();
    let (leaf, rest) = chain_pem.split_at(split);
    std::fs::write(dir.join("root.pem"), root_pem).unwrap();
    std::fs::write(dir.join("leaf.pem"), format!("{leaf}\n")).unwrap();
    std::fs::write(dir.join("untrusted.pem"), rest.trim_start()).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "untrusted.pem",
        ])
        .args(["-purpose", "sslserver", "leaf.pem"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn issues_for_two_names_and_reuses_the_account() {
    let Some(knot) = start_knot() else { return };
    let Some(pebble) = PebbleEnv::start(Some(knot.addr())) else {
        return;
    };
    let started = Instant::now();
    let state = tempfile::tempdir().unwrap();
    let dns = KnotDns01 {
        knot: &knot,
        corrupt: false,
    };

    let client = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    assert!(client.account_created());
    let key = generate_key(KeyType::EcdsaP256).unwrap();
    let issued = client.issue(&names(), &key, &dns).await.unwrap();
    assert!(issued.warnings.is_empty(), "{:?}", issued.warnings);

    let mut sans = issued.info.sans.clone();
    sans.sort();
    let mut want = names();
    want.sort();
    assert_eq!(sans, want);
    assert!(key_matches_cert(&key, &issued.chain_pem).unwrap());
    assert!(!issued.info.issuers_der.is_empty());
    openssl_verify(state.path(), &pebble.root_pem().await, &issued.chain_pem);
    assert_no_challenge_records(&knot);

    // The account file is private and is reused: no second account.
    let files: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("acme-account-"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let again = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    assert!(!again.account_created());
    assert_eq!(again.account_id(), client.account_id());
    let key2 = generate_key(KeyType::EcdsaP256).unwrap();
    let second = again.issue(&names(), &key2, &dns).await.unwrap();
    assert_ne!(second.info.serial, issued.info.serial);
    assert!(key_matches_cert(&key2, &second.chain_pem).unwrap());
    assert_no_challenge_records(&knot);
    eprintln!("two issuances took {:?}", started.elapsed());
}

#[tokio::test]
async fn survives_half_of_all_nonces_rejected() {
    let Some(knot) = start_knot() else { return };
    let Some(pebble) =
        PebbleEnv::start_with_env(Some(knot.addr()), &[("PEBBLE_WFE_NONCEREJECT", "50")])
    else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let dns = KnotDns01 {
        knot: &knot,
        corrupt: false,
    };
    let started = Instant::now();
    let client = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    let key = generate_key(KeyType::Rsa(2048)).unwrap();
    let issued = client.issue(&names(), &key, &dns).await.unwrap();
    assert!(key_matches_cert(&key, &issued.chain_pem).unwrap());
    assert_no_challenge_records(&knot);
    eprintln!("issuance with 50% bad nonces took {:?}", started.elapsed());
}

#[tokio::test]
async fn pebble_certifies_rsa_keys_of_3072_and_4096_bits() {
    // 2048 bits: the test above.
    let Some(knot) = start_knot() else { return };
    let Some(pebble) = PebbleEnv::start(Some(knot.addr())) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let dns = KnotDns01 {
        knot: &knot,
        corrupt: false,
    };
    let client = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    for bits in [3072, 4096] {
        let key = generate_key(KeyType::Rsa(bits)).unwrap();
        let issued = client.issue(&names(), &key, &dns).await.unwrap();
        assert!(key_matches_cert(&key, &issued.chain_pem).unwrap(), "{bits}");
    }
}

#[tokio::test]
async fn a_wrong_challenge_value_names_the_domain_and_records_are_removed() {
    let Some(knot) = start_knot() else { return };
    let Some(pebble) = PebbleEnv::start(Some(knot.addr())) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let dns = KnotDns01 {
        knot: &knot,
        corrupt: true,
    };
    let client = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    let key = generate_key(KeyType::EcdsaP256).unwrap();
    let err = client.issue(&names(), &key, &dns).await.unwrap_err();
    let text = err.to_string();
    eprintln!("invalid challenge error: {text}");
    match &err {
        AcmeError::ChallengeInvalid { domain, detail } => {
            assert!(names().contains(domain), "{text}");
            assert!(!detail.is_empty(), "{text}");
        }
        other => panic!("expected an invalid challenge, got: {other}"),
    }
    assert!(text.contains("DNS-01"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert_no_challenge_records(&knot);
}

#[tokio::test]
async fn resuming_a_stored_order_downloads_instead_of_reordering() {
    let Some(knot) = start_knot() else { return };
    let Some(pebble) = PebbleEnv::start(Some(knot.addr())) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let dns = KnotDns01 {
        knot: &knot,
        corrupt: false,
    };
    let client = AcmeClient::connect(&config(&pebble, state.path()))
        .await
        .unwrap();
    let key = generate_key(KeyType::EcdsaP256).unwrap();
    let pending = client.new_order(&names()).await.unwrap();
    let url = pending.url().to_string();
    // "Crash" here: the order URL is in state, the process is gone.
    drop(pending);
    let resumed = client.resume_order(&url, &names()).await.unwrap();
    let issued = client.complete(resumed, &key, &dns).await.unwrap();
    assert_eq!(issued.order_url, url);

    // The order is valid now: resuming it again only downloads the certificate.
    let mut again = client.resume_order(&url, &names()).await.unwrap();
    assert_eq!(again.status(), cryptdomainmgr::acme::OrderStatus::Valid);
    let failing = KnotDns01 {
        knot: &knot,
        corrupt: true,
    };
    let downloaded = client.complete(again, &key, &failing).await.unwrap();
    assert_eq!(downloaded.info.serial, issued.info.serial);

    // A stored order for other names is refused.
    let err = client
        .resume_order(&url, &["other.example.test".to_string()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("other.example.test"), "{err}");
}

#[tokio::test]
async fn an_unreachable_ca_is_a_clear_and_quick_error() {
    let state = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let started = Instant::now();
    let err = AcmeClient::connect(&AcmeConfig {
        ca: format!("https://127.0.0.1:{port}/dir"),
        email: None,
        eab: None,
        cacert: None,
        account_dir: state.path().to_path_buf(),
        limits: Limits::default(),
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, AcmeError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    eprintln!("unreachable CA error: {text}");
    assert!(text.contains("cannot reach the ACME CA"), "{text}");
    assert!(text.contains(&port.to_string()), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing was written.
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}
