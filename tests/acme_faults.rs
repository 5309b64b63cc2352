//! ACME failure handling that Pebble cannot produce (rate limits with
//! `Retry-After`, non-JSON 5xx pages, oversized bodies), against a scripted
//! HTTP responder on loopback. Its answers follow RFC 8555 §6.6/§6.7 (problem
//! documents, `Retry-After`, `Replay-Nonce`).

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cryptdomainmgr::acme::{AcmeClient, AcmeError, Limits};
use support::acme_script::{config, directory, nonce, serve};

fn fast_limits() -> Limits {
    Limits {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
        order_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_5xx_html_page_is_retried_a_bounded_number_of_times() {
    let (base, total) = serve(|_, _, _, _| (503, vec![], b"<html>down</html>".to_vec()));
    let state = tempfile::tempdir().unwrap();
    let err = AcmeClient::connect(&config(format!("{base}/dir"), state.path(), fast_limits()))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, AcmeError::RetriesExhausted { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(total.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rate_limited_beyond_the_bound_fails_clearly_and_quickly() {
    let (base, _) = serve(|method, path, _, base| {
        match (method, path) {
        ("GET", "/dir") => directory(base),
        (_, "/nonce") => nonce(),
        _ => (
            429,
            vec![
                ("Retry-After".into(), "3600".into()),
                ("Content-Type".into(), "application/problem+json".into()),
            ],
            br#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new accounts","status":429}"#.to_vec(),
        ),
    }
    });
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = AcmeClient::connect(&config(format!("{base}/dir"), state.path(), fast_limits()))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::RateLimited { .. }), "{text}");
    assert!(text.contains("retry after"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_short_retry_after_is_waited_for() {
    let (base, _) = serve(|method, path, n, base| {
        match (method, path) {
        ("GET", "/dir") => directory(base),
        (_, "/nonce") => nonce(),
        ("POST", "/account") if n == 0 => (
            429,
            vec![("Retry-After".into(), "1".into())],
            br#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429}"#.to_vec(),
        ),
        ("POST", "/account") => (
            201,
            vec![
                ("Location".into(), format!("{base}/acct/1")),
                ("Replay-Nonce".into(), "def".into()),
            ],
            br#"{"status":"valid"}"#.to_vec(),
        ),
        _ => (404, vec![], vec![]),
    }
    });
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let client = AcmeClient::connect(&config(format!("{base}/dir"), state.path(), fast_limits()))
        .await
        .unwrap();
    assert!(client.account_created());
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(client.account_id().ends_with("/acct/1"));
}

#[tokio::test]
async fn an_oversized_response_is_refused_without_retrying() {
    let (base, total) = serve(|_, _, _, _| (200, vec![], vec![b' '; 2 << 20]));
    let state = tempfile::tempdir().unwrap();
    let err = AcmeClient::connect(&config(format!("{base}/dir"), state.path(), fast_limits()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    assert_eq!(total.load(Ordering::SeqCst), 1);
}
