//! The error type of everything that reads or changes zones: transports,
//! observation and providers. It sits below all of them so that none of the
//! lower layers depends on the provider module.

use std::time::Duration;

use crate::http::{self, Failure};

/// A change the provider did not make, with its answer (or why it was not sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `add www.example.com 300 A 192.0.2.1` (several records of one RRset:
    /// their data joined by `, `).
    pub change: String,
    pub answer: String,
}

/// Why a provider could not read or change a zone. Each variant names the server
/// (or API) and, where known, the zone, so the message stands on its own. A
/// request that got no answer says why (refused, name not resolved, TLS,
/// timeout), never that a zone is missing.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{provider}: {endpoint} refused the connection (nothing accepts connections there)")]
    ConnectionRefused { provider: String, endpoint: String },
    #[error("{provider}: the API host name {host} does not resolve (DNS): {reason}")]
    HostNotFound {
        provider: String,
        host: String,
        reason: String,
    },
    #[error("{provider}: the TLS handshake with {endpoint} failed: {reason}")]
    Tls {
        provider: String,
        endpoint: String,
        reason: String,
    },
    #[error("{provider}: {endpoint} answered HTTP {status} to {what}: {message}")]
    HttpStatus {
        provider: String,
        endpoint: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("{provider}: {endpoint} refused the credentials ({detail}) when {what}: check {keys}")]
    AuthRefused {
        provider: String,
        endpoint: String,
        what: String,
        detail: String,
        keys: String,
    },
    #[error("{server} did not answer within {seconds} s ({what})")]
    Timeout {
        server: String,
        seconds: u64,
        what: String,
    },
    #[error(
        "{server} refused {what} for zone {zone} (REFUSED): check the key's permissions (update ACL) for this zone"
    )]
    Refused {
        server: String,
        zone: String,
        what: String,
    },
    #[error("{server} is not authoritative for zone {zone} (NOTAUTH/NOTZONE)")]
    NotAuthoritative { server: String, zone: String },
    #[error(
        "{server} rejected the TSIG signature of key {key} ({reason}): check keyname, keyalgorithm and secret"
    )]
    BadTsig {
        server: String,
        key: String,
        reason: String,
    },
    #[error("{server} answered {rcode} to {what} for zone {zone}")]
    ServerError {
        server: String,
        zone: String,
        what: String,
        rcode: String,
    },
    #[error("no zone found for {name} at {server}: {reason}")]
    NoZone {
        name: String,
        server: String,
        reason: String,
    },
    #[error("malformed answer from {server}: {reason}")]
    Protocol { server: String, reason: String },
    #[error("{provider}: {message}")]
    Api { provider: String, message: String },
    /// Some changes of a zone were made, these were not (a provider without
    /// transactions).
    #[error(
        "{server}: {} change(s) to zone {zone} not made ({applied} made): {}",
        .refused.len(),
        refusals_text(.refused)
    )]
    Partial {
        server: String,
        zone: String,
        applied: usize,
        refused: Vec<Refusal>,
    },
}

fn refusals_text(refused: &[Refusal]) -> String {
    refused
        .iter()
        .map(|r| format!("{}: {}", r.change, r.answer))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ProviderError {
    /// The error of a request to `url` (for `what`) that got no HTTP answer.
    pub fn network(
        provider: &str,
        url: &str,
        what: &str,
        timeout: Duration,
        failure: Failure,
    ) -> Self {
        let provider = provider.to_string();
        let endpoint = http::endpoint(url);
        match failure {
            Failure::Refused => ProviderError::ConnectionRefused { provider, endpoint },
            Failure::Dns(reason) => ProviderError::HostNotFound {
                provider,
                host: http::host(url),
                reason,
            },
            Failure::Tls(reason) => ProviderError::Tls {
                provider,
                endpoint,
                reason,
            },
            Failure::Timeout => ProviderError::Timeout {
                server: format!("{provider} at {endpoint}"),
                seconds: timeout.as_secs(),
                what: what.to_string(),
            },
            Failure::Other(reason) => ProviderError::Unreachable {
                server: format!("{provider} at {endpoint}"),
                reason: format!("{what}: {reason}"),
            },
        }
    }
}
