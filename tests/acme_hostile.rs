//! A hostile CA: a scripted ACME server (support/acme_script.rs) that puts
//! shell syntax, path traversal and newlines into every field it controls,
//! asks to authorize names we never ordered, hands out tokens that are not
//! base64url, answers with broken JSON or 100 MB bodies, and rate-limits with
//! an HTTP-date `Retry-After`. The client must fail or retry cleanly, publish
//! nothing it should not, run nothing, and write nothing outside its state and
//! destination directories.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use cryptdomainmgr::acme::{
    AcmeClient, AcmeConfig, AcmeError, ChallengeRecord, Dns01, Dns01Error, Limits,
};
use cryptdomainmgr::material::cert::{KeyType, generate_key};
use support::acme_script::{Reply, directory, nonce, serve};
use support::cdm::{cdm, write_config};
use support::knot::{KnotEnv, minimal_zone};

/// Shell syntax, traversal and a forged log line, in one string.
const HOSTILE: &str = "$(touch PWNED) `touch PWNED2`; touch PWNED3 ../../../../tmp/PWNED4\n[2019-01-01 00:00:00,000]    INFO      forged";

/// Records what the client asked to publish (the DNS side is not under test).
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl Dns01 for Recorder {
    async fn publish(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let mut published = self.0.lock().unwrap();
        published.extend(challenges.iter().map(|c| c.name.to_string()));
        Ok(())
    }
    async fn wait_until_served(&self, _: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        Ok(())
    }
    async fn remove(&self, _: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        Ok(())
    }
}

fn json(status: u16, headers: Vec<(String, String)>, body: &str) -> Reply {
    (status, headers, body.as_bytes().to_vec())
}

fn escaped(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A CA that creates an account and an order for `ordered`, whose one
/// authorization is for `authz_name` with a dns-01 challenge of `token`.
fn ca(
    authz_name: &'static str,
    token: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    serve(move |method, path, _, base| {
        let with_nonce = |mut headers: Vec<(String, String)>| {
            headers.push(("Replay-Nonce".into(), format!("n{}", rand_suffix())));
            headers
        };
        match (method, path) {
            ("GET", "/dir") => directory(base),
            (_, "/nonce") => nonce(),
            ("POST", "/account") => json(
                201,
                with_nonce(vec![("Location".into(), format!("{base}/acct/../../1"))]),
                r#"{"status":"valid"}"#,
            ),
            ("POST", "/order") => json(
                201,
                with_nonce(vec![("Location".into(), format!("{base}/order/1/../../x"))]),
                &format!(
                    r#"{{"status":"pending","identifiers":[{{"type":"dns","value":"a.example.test"}}],"authorizations":["{base}/authz/1"],"finalize":"{base}/finalize/1"}}"#
                ),
            ),
            ("POST", "/authz/1") => json(
                200,
                with_nonce(vec![]),
                &format!(
                    r#"{{"status":"pending","identifier":{{"type":"dns","value":{}}},"challenges":[{{"type":"dns-01","url":"{base}/chall/1","token":{},"status":"pending"}}]}}"#,
                    escaped(authz_name),
                    escaped(token)
                ),
            ),
            _ => json(
                400,
                with_nonce(vec![(
                    "Content-Type".into(),
                    "application/problem+json".into(),
                )]),
                &format!(
                    r#"{{"type":"urn:ietf:params:acme:error:malformed","detail":{},"status":400}}"#,
                    escaped(HOSTILE)
                ),
            ),
        }
    })
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn limits() -> Limits {
    Limits {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(10),
        order_timeout: Duration::from_secs(5),
    }
}

fn config(url: String, dir: &Path) -> AcmeConfig {
    support::acme_script::config(url, dir, limits())
}

async fn issue(base: &str, dir: &Path) -> (Result<(), AcmeError>, Vec<String>) {
    let client = AcmeClient::connect(&config(format!("{base}/dir"), dir))
        .await
        .unwrap();
    let key = generate_key(KeyType::EcdsaP256).unwrap();
    let dns = Recorder::default();
    let result = client
        .issue(&["a.example.test".to_string()], &key, &dns)
        .await
        .map(|_| ());
    let published = dns.0.lock().unwrap().clone();
    (result, published)
}

const GOOD_TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

#[tokio::test]
async fn an_authorization_for_a_name_not_ordered_is_refused_before_publishing() {
    let (base, _) = ca("victim.example.org", GOOD_TOKEN);
    let state = tempfile::tempdir().unwrap();
    let (result, published) = issue(&base, state.path()).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("victim.example.org") && err.contains("not ordered"),
        "{err}"
    );
    assert!(published.is_empty(), "published {published:?}");
}

#[tokio::test]
async fn a_token_that_is_not_base64url_is_refused_before_publishing() {
    for token in [
        "../../../../etc/passwd/aaaaaaaaaaaaaaaa",
        "$(touch PWNED)aaaaaaaaaaaaaaaaaaaaaaa",
        "abc`id`;def\naaaaaaaaaaaaaaaaaaaaaaaa",
        "short",
    ] {
        let token: &'static str = Box::leak(token.to_string().into_boxed_str());
        let (base, _) = ca("a.example.test", token);
        let state = tempfile::tempdir().unwrap();
        let (result, published) = issue(&base, state.path()).await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("not base64url"), "{token:?}: {err}");
        assert!(published.is_empty(), "{token:?}: published {published:?}");
    }
}

#[tokio::test]
async fn a_hostile_problem_detail_is_shown_on_one_line() {
    // A good authorization: the challenge is published, then marking it ready
    // gets the hostile problem document.
    let (base, _) = ca("a.example.test", GOOD_TOKEN);
    let state = tempfile::tempdir().unwrap();
    let (result, published) = issue(&base, state.path()).await;
    assert_eq!(
        published,
        vec!["_acme-challenge.a.example.test".to_string()]
    );
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("touch PWNED"),
        "the CA's detail is shown: {err}"
    );
    assert!(
        !err.contains('\n'),
        "a newline from the CA reached the message: {err:?}"
    );
}

#[tokio::test]
async fn rate_limited_with_an_http_date_is_waited_for() {
    let (base, _) = serve(|method, path, n, base| match (method, path) {
        ("GET", "/dir") => directory(base),
        (_, "/nonce") => nonce(),
        ("POST", "/account") if n == 0 => {
            let at = SystemTime::now() + Duration::from_secs(2);
            json(
                429,
                vec![("Retry-After".into(), httpdate::fmt_http_date(at))],
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429}"#,
            )
        }
        ("POST", "/account") => json(
            201,
            vec![("Location".into(), format!("{base}/acct/1"))],
            r#"{"status":"valid"}"#,
        ),
        _ => (404, vec![], vec![]),
    });
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let client = AcmeClient::connect(&config(format!("{base}/dir"), state.path()))
        .await
        .unwrap();
    assert!(client.account_created());
    // An HTTP-date has one-second resolution: at least one second was waited.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_json_is_a_clean_error() {
    for body in [r#"{"newNonce": 5"#, "[]", "null", "\u{0}\u{1}garbage"] {
        let body: &'static str = Box::leak(body.to_string().into_boxed_str());
        let (base, total) = serve(move |_, _, _, _| (200, vec![], body.as_bytes().to_vec()));
        let state = tempfile::tempdir().unwrap();
        let err = AcmeClient::connect(&config(format!("{base}/dir"), state.path()))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(!err.is_empty() && !err.contains('\0'), "{body:?}: {err:?}");
        // Not retried: a broken document does not get better.
        assert_eq!(total.load(Ordering::SeqCst), 1, "{body:?}: {err}");
    }
}

#[tokio::test]
async fn a_100_mb_body_is_refused_without_reading_it() {
    let (base, total) = serve(|_, _, _, _| (200, vec![], vec![b'{'; 100 << 20]));
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = AcmeClient::connect(&config(format!("{base}/dir"), state.path()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    assert_eq!(total.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_binary_against_a_hostile_ca_runs_nothing_and_writes_only_its_own_files() {
    let Some(knot) = KnotEnv::start("example.test", &minimal_zone("example.test")) else {
        return;
    };
    for (authz, token) in [
        ("a.example.test", GOOD_TOKEN),
        ("victim.example.org", GOOD_TOKEN),
        ("a.example.test", "../../../$(touch PWNED)aaaaaaaaaaa"),
    ] {
        let (base, _) = ca(authz, token);
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\nnameservers = {}\n",
            dir.path().join("state").display(),
            knot.server()
        );
        for (key, value) in knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!(
            "\n[cert:web]\nca = {base}/dir\nkeytype = ecdsa-p256\ndestination = {}\n\n[domain:a.example.test]\ncert = web\n",
            dir.path().join("dest").display()
        ));
        write_config(dir.path(), "cdm.conf", &text);
        let run = cdm(dir.path(), &["--prepare", "-vv", "cdm.conf"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        for line in run.stderr.lines() {
            assert!(
                !line.contains("forged") || !line.starts_with("[2019"),
                "forged line: {line}"
            );
        }
        for file in support::walk(dir.path()).iter().filter(|p| p.is_file()) {
            let file = file.strip_prefix(dir.path()).unwrap();
            let allowed = file.starts_with("state")
                || file.starts_with("dest")
                || file == Path::new("cdm.conf");
            assert!(allowed, "{authz} {token}: wrote {}", file.display());
            assert!(
                !file.to_string_lossy().contains("PWNED"),
                "{}",
                file.display()
            );
        }
        for planted in ["/tmp/PWNED", "/tmp/PWNED2", "/tmp/PWNED3", "/tmp/PWNED4"] {
            assert!(!Path::new(planted).exists(), "{planted} exists");
        }
        // No challenge record was left in the zone.
        assert!(knot.dig("_acme-challenge.a.example.test", "TXT").is_empty());
    }
}
