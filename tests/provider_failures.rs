//! What an API provider says when a request fails: each failure kind against a
//! local stand-in (a closed port, a host name that does not resolve, a TLS
//! server with a certificate nobody trusts, a server that never answers, HTTP
//! 401, HTTP 500 with a body), for each kind of API provider: `powerdns` and
//! `inwx` built from the registry as the program builds them, and the adapter
//! to the `dns-update` crate through the crate's PowerDNS client. Each message
//! names the provider and the endpoint and says what happened; none says that
//! a zone is missing. One case runs the binary, for the log line and exit code.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cryptdomainmgr::dns::provider::dnsupdate::CrateProvider;
use cryptdomainmgr::dns::provider::{DnsProvider, lookup};
use cryptdomainmgr::dns::record::Name;
use cryptdomainmgr::secret::Secret;
use dns_update::DnsUpdater;
use futures_util::future::join_all;
use support::cdm::{cdm, write_config};
use support::http::{HttpServer, Response, SilentServer, UntrustedTlsServer, closed_port_url};

const NAME: &str = "www.example.de";
const KEY: &str = "sentinel-failure-key-31c4";
/// The crate's client is built with this timeout (ours are fixed at 30 s).
const CRATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The three kinds of API provider, each pointed at `url`.
fn providers(url: &str) -> Vec<(&'static str, Arc<dyn DnsProvider>)> {
    let build = |pairs: &[(&str, &str)]| {
        let keys: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let spec = lookup(&keys["handler"]).expect("a registered handler");
        (spec.build)(&keys).unwrap_or_else(|e| panic!("{}: {}", e.key, e.message))
    };
    let inwx_url = format!("{url}/jsonrpc/");
    let updater = DnsUpdater::new_pdns(KEY, Some(url), None::<&str>, Some(CRATE_TIMEOUT))
        .expect("the crate's PowerDNS client");
    vec![
        (
            "powerdns",
            build(&[("handler", "powerdns"), ("apiurl", url), ("apikey", KEY)]),
        ),
        (
            "inwx",
            build(&[
                ("handler", "inwx"),
                ("user", "cdm"),
                ("passwd", KEY),
                ("apiurl", &inwx_url),
            ]),
        ),
        (
            "pdns (dns-update)",
            Arc::new(
                CrateProvider::new("pdns", updater, vec![Secret::new(KEY)])
                    .with_timeout(CRATE_TIMEOUT),
            ),
        ),
    ]
}

/// The zone lookup of every provider against `url`: (provider, message).
async fn failures(url: &str) -> Vec<(&'static str, String)> {
    let name = Name::parse(NAME).unwrap();
    join_all(providers(url).into_iter().map(|(label, provider)| {
        let name = name.clone();
        async move {
            let message = match provider.find_zone(&name).await {
                Ok(zone) => panic!("{label}: found zone {zone} at a failing endpoint"),
                Err(e) => e.to_string(),
            };
            (label, message)
        }
    }))
    .await
}

fn check(kind: &str, found: &[(&str, String)], expected: &[&str]) {
    for (label, message) in found {
        for part in expected.iter().chain([label]) {
            assert!(
                message.contains(part),
                "{kind}, {label}: {part:?} missing in: {message}"
            );
        }
        assert!(
            !message.contains("no zone found") && !message.contains(KEY),
            "{kind}, {label}: {message}"
        );
    }
}

#[tokio::test]
async fn each_failure_is_named_for_what_it_is() {
    let closed = closed_port_url();
    let tls = UntrustedTlsServer::start();
    let silent = SilentServer::start();
    let unauthorized = HttpServer::start(|_| Response::text(401, "Unauthorized"));
    let broken = HttpServer::start(|_| {
        Response::json(500, &serde_json::json!({"error": "database is down"}))
    });
    let unresolvable = "http://api.example.invalid:8081".to_string();
    let (tls_url, silent_url) = (tls.url(), silent.url());
    let (unauthorized_url, broken_url) = (unauthorized.url(), broken.url());

    // All at once: the never-answering server takes the providers' timeout.
    let (closed_found, dns_found, tls_found, silent_found, unauthorized_found, broken_found) = tokio::join!(
        failures(&closed),
        failures(&unresolvable),
        failures(&tls_url),
        failures(&silent_url),
        failures(&unauthorized_url),
        failures(&broken_url),
    );
    check(
        "closed port",
        &closed_found,
        &[&format!("{closed} refused the connection")],
    );
    check(
        "unresolvable host",
        &dns_found,
        &["the API host name api.example.invalid does not resolve (DNS)"],
    );
    check(
        "untrusted certificate",
        &tls_found,
        &[
            &format!("the TLS handshake with {tls_url} failed"),
            "invalid peer certificate",
        ],
    );
    check(
        "no answer",
        &silent_found,
        &[&format!("at {silent_url} did not answer within")],
    );
    check(
        "HTTP 401",
        &unauthorized_found,
        &["refused the credentials"],
    );
    check(
        "HTTP 500",
        &broken_found,
        &["answered HTTP 500", "database is down"],
    );
}

/// Through the binary: the log line of a closed port and the exit status.
#[test]
fn the_binary_reports_a_closed_port_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let closed = closed_port_url();
    let config = format!(
        "[cdm]\nstatedir = {}\n[domain]\nhandler = powerdns\napiurl = {closed}\napikey = {KEY}\n\
         [domain:{NAME}]\nip4 = 192.0.2.1\n",
        dir.path().join("state").display()
    );
    let conf = write_config(dir.path(), "closed.conf", &config);
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "[domain:{NAME}]: powerdns: {closed} refused the connection"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("no zone found"), "{}", run.stderr);
}
