//! The narrow provider layer: a provider reads the records of a zone and applies a
//! [`ChangeSet`] to it. It knows nothing of phases, certificates or DKIM. Providers
//! are listed in one static [`REGISTRY`] with their names, aliases and documented
//! config keys; `--check` and the README's key tables come from it.

pub mod rfc2136;
pub mod zonefile;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::dns::record::{Name, Record};

/// What a run changes in one zone. Adds are applied before deletes (in one
/// message where the protocol allows), so a name never passes through an empty
/// set. An SOA record in `adds` replaces the zone's SOA (RFC 2136 §3.4.2.2).
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    pub adds: Vec<Record>,
    pub deletes: Vec<Record>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.deletes.is_empty()
    }
}

/// Why a provider could not read or change a zone. Each variant names the server
/// (or API) and, where known, the zone, so the message stands on its own.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
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
}

/// A DNS provider: a server or API that holds zones.
#[async_trait]
pub trait DnsProvider: Send + Sync {
    /// A short description for log lines and errors, never containing a secret
    /// (for example `rfc2136 127.0.0.1:53`).
    fn describe(&self) -> String;

    /// The zone that holds `name` (configured, or found by an SOA lookup).
    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError>;

    /// The records of `zone`. A provider may return the whole zone (RFC 2136 reads
    /// it with one AXFR); the planner only looks at the names in scope.
    async fn read_zone(&self, zone: &Name) -> Result<Vec<Record>, ProviderError>;

    /// Applies all changes to `zone`, atomically where the protocol allows.
    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError>;

    /// The authoritative servers of `zone` to ask whether a record is served
    /// (its NS set, on port 53). Used when `nameservers` is not configured.
    async fn nameservers(&self, zone: &Name) -> Result<Vec<SocketAddr>, ProviderError> {
        Err(ProviderError::NoZone {
            name: zone.to_string(),
            server: self.describe(),
            reason: "this provider cannot list the zone's nameservers; set nameservers = host[:port], ... in [domain]".into(),
        })
    }
}

/// One documented configuration key of a provider.
#[derive(Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub required: bool,
    /// Secrets are shown as `***` by `--check` and never logged.
    pub secret: bool,
    pub doc: &'static str,
}

/// The values of a provider's keys as configured for one domain.
pub type KeyValues = BTreeMap<String, String>;

/// A provider's entry in the registry.
pub struct ProviderSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub keys: &'static [KeySpec],
    /// Builds the provider from its keys (no network). On a bad value it returns
    /// the offending key and what is wrong with it.
    pub build: fn(&KeyValues) -> Result<Arc<dyn DnsProvider>, KeyError>,
}

/// A bad provider key: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        KeyError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Every provider the program knows.
pub static REGISTRY: &[ProviderSpec] = &[rfc2136::SPEC, zonefile::SPEC];

/// The registry entry for a handler name or alias (case-insensitive).
pub fn lookup(handler: &str) -> Option<&'static ProviderSpec> {
    let handler = handler.trim().to_ascii_lowercase();
    REGISTRY
        .iter()
        .find(|spec| spec.name == handler || spec.aliases.contains(&handler.as_str()))
}

/// Keys common to every provider, handled by the domain module itself.
pub const COMMON_KEYS: &[KeySpec] = &[
    KeySpec {
        name: "handler",
        required: true,
        secret: false,
        doc: "the DNS provider",
    },
    KeySpec {
        name: "ttl",
        required: false,
        secret: false,
        doc: "TTL of records the program creates (default 300)",
    },
    KeySpec {
        name: "ip4lookup",
        required: false,
        secret: false,
        doc: "URL answering with the public IPv4 address",
    },
    KeySpec {
        name: "nameservers",
        required: false,
        secret: false,
        doc: "authoritative servers (host[:port], ...) asked whether new records are served; default: the zone's NS records",
    },
    KeySpec {
        name: "ip6lookup",
        required: false,
        secret: false,
        doc: "URL answering with the public IPv6 address",
    },
];

/// True when `key` is a documented key of any provider or a common key, so the
/// config reader does not warn about it.
pub fn is_provider_key(key: &str) -> bool {
    COMMON_KEYS.iter().any(|k| k.name == key)
        || REGISTRY
            .iter()
            .any(|spec| spec.keys.iter().any(|k| k.name == key))
}

/// True when `key` holds a secret for some provider.
pub fn is_secret_key(key: &str) -> bool {
    REGISTRY
        .iter()
        .any(|spec| spec.keys.iter().any(|k| k.name == key && k.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README documents every key of every provider: the registry and the
    /// docs cannot drift apart.
    #[test]
    fn readme_documents_every_provider_key() {
        let readme = include_str!("../../../README.md");
        for spec in REGISTRY {
            let heading = format!("### `{}`", spec.name);
            let section = readme
                .split_once(&heading)
                .unwrap_or_else(|| panic!("README has no section {heading}"))
                .1;
            let section = section.split("\n### ").next().unwrap_or(section);
            for key in spec
                .keys
                .iter()
                .chain(COMMON_KEYS)
                .filter(|k| k.name != "handler")
            {
                assert!(
                    section.contains(&format!("`{}`", key.name)),
                    "README section {heading} does not document key `{}`",
                    key.name
                );
            }
        }
    }
}
