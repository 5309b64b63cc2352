//! ACME issuance against a real Pebble validating DNS-01 against a real Knot.
//! Each test starts its own servers on free loopback ports.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cryptdomainmgr::acme::{
    AcmeClient, AcmeConfig, AcmeError, ChallengeRecord, Dns01, Dns01Error, Limits,
};
use cryptdomainmgr::material::cert::{KeyType, generate_key, key_matches_cert};
use support::pebble::PebbleEnv;

const ZONE: &str = "example.test";
const TSIG_NAME: &str = "acme-key";
const TSIG_SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

/// A minimal Knot serving `example.test`, updatable with a TSIG key. (The shared
/// `support::knot` from the DNS branch replaces this once merged.)
struct Knot {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Knot {
    fn start() -> Option<Knot> {
        if !support::require("knotd") || !support::require("nsupdate") || !support::require("dig") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join(format!("{ZONE}.zone")),
            format!(
                "$ORIGIN {ZONE}.\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n"
            ),
        )
        .unwrap();
        let conf = format!(
            "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n\
             control:\n    listen: {d}/knot.sock\n\
             database:\n    storage: {d}\n\
             key:\n  - id: {TSIG_NAME}\n    algorithm: hmac-sha256\n    secret: {TSIG_SECRET}\n\
             acl:\n  - id: update\n    key: {TSIG_NAME}\n    action: update\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: changes\n\
             zone:\n  - domain: {ZONE}\n    file: {ZONE}.zone\n    acl: update\n"
        );
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("knot.log")).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let knot = Knot {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while knot.dig(ZONE, "SOA").is_empty() {
            assert!(Instant::now() < deadline, "knotd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(knot)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What Knot serves for `name`/`rtype` (`dig +short`), one answer per line.
    fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+short",
                "+norec",
            ])
            .args(["+time=1", "+tries=1", name, rtype])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(|l| l.trim_matches('"').to_string())
            .collect()
    }

    fn nsupdate(&self, lines: &[String]) -> Result<(), Dns01Error> {
        use std::io::Write;
        let mut script = format!("server 127.0.0.1 {}\nzone {ZONE}\n", self.port);
        for l in lines {
            script.push_str(l);
            script.push('\n');
        }
        script.push_str("send\n");
        let mut child = Command::new("nsupdate")
            .arg("-y")
            .arg(format!("hmac-sha256:{TSIG_NAME}:{TSIG_SECRET}"))
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
}

impl Drop for Knot {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its recorded pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// DNS-01 through nsupdate; `corrupt` publishes a wrong value.
struct KnotDns01<'a> {
    knot: &'a Knot,
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
        self.knot.nsupdate(&lines)
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
        self.knot.nsupdate(&lines)
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

fn assert_no_challenge_records(knot: &Knot) {
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
    let Some(knot) = Knot::start() else { return };
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
    let Some(knot) = Knot::start() else { return };
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
async fn a_wrong_challenge_value_names_the_domain_and_records_are_removed() {
    let Some(knot) = Knot::start() else { return };
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
    let Some(knot) = Knot::start() else { return };
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
