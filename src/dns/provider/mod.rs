//! The narrow provider layer: a provider reads the records of a zone and applies a
//! [`ChangeSet`] to it. It knows nothing of phases, certificates or DKIM. Providers
//! are listed in one static [`REGISTRY`] with their names, aliases, documented
//! config keys and [`Capabilities`]; `--check`, the configuration check and the
//! README's key tables come from it.

pub(crate) mod capability;
pub mod dnsupdate;
pub(crate) mod dnsupdate_registry;
pub(crate) mod inwx;
pub(crate) mod partial;
pub(crate) mod powerdns;
pub mod rfc2136;
pub mod zonefile;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use crate::dns::error::{ProviderError, Refusal};
pub use capability::{Application, Capabilities, SoaField};

use crate::dns::record::{Name, Record, RecordType};

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

    /// The changes grouped by RRset (name and type), for APIs that change whole
    /// RRsets or records one at a time.
    pub fn by_rrset(&self) -> BTreeMap<(Name, RecordType), RRsetChange<'_>> {
        let mut grouped: BTreeMap<(Name, RecordType), RRsetChange<'_>> = BTreeMap::new();
        for record in &self.adds {
            let key = (record.name.clone(), record.record_type());
            grouped.entry(key).or_default().adds.push(record);
        }
        for record in &self.deletes {
            let key = (record.name.clone(), record.record_type());
            grouped.entry(key).or_default().deletes.push(record);
        }
        grouped
    }
}

/// The adds and deletes of one RRset.
#[derive(Debug, Default)]
pub struct RRsetChange<'a> {
    pub adds: Vec<&'a Record>,
    pub deletes: Vec<&'a Record>,
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

    /// The records the update phase needs from `zone`: at least those of the
    /// RRsets `wanted` (name and type; see [`crate::plan::rrsets`]). The default
    /// returns the whole zone (`read_zone`: one AXFR for RFC 2136); providers
    /// that cannot list a zone read each wanted RRset.
    async fn read_rrsets(
        &self,
        zone: &Name,
        wanted: &[(Name, RecordType)],
    ) -> Result<Vec<Record>, ProviderError> {
        let _ = wanted;
        self.read_zone(zone).await
    }

    /// Applies all changes to `zone`, atomically where the protocol allows.
    /// A provider without transactions tries every change; when some were
    /// refused it answers [`ProviderError::Partial`] naming each (see
    /// [`partial`]). Any other error means nothing was changed.
    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError>;

    /// Ends a session the provider opened (an API login), once the program is
    /// done with the provider. Failures are only logged.
    async fn close(&self) {}

    /// The NS hosts of `zone`, to ask whether a record is served (on port
    /// 53), when `nameservers` is not configured; their addresses are looked
    /// up by [`crate::dns::observe::resolve_nameservers`]. The default reads
    /// the apex NS RRset from the provider.
    async fn nameserver_hosts(
        &self,
        zone: &Name,
    ) -> Result<crate::dns::observe::NsHosts, ProviderError> {
        let records = self
            .read_rrsets(zone, &[(zone.clone(), RecordType::Ns)])
            .await?;
        Ok(crate::dns::observe::NsHosts::from_records(
            self.describe(),
            zone,
            &records,
        ))
    }
}

/// The providers of a configuration, built from their settings, by the
/// identity the configuration gives them (`ProviderRef::id`).
pub struct Providers {
    instances: Vec<Arc<dyn DnsProvider>>,
}

impl Providers {
    /// Builds every provider of `config` (no network).
    ///
    /// # Errors
    /// A provider whose keys its constructor refuses (the configuration check
    /// already tried them): the handler and the key.
    pub fn build(config: &crate::config::model::Config) -> Result<Providers, String> {
        let mut instances = Vec::with_capacity(config.providers.len());
        for settings in &config.providers {
            let instance = (settings.spec.build)(&settings.keys)
                .map_err(|e| format!("{}: {}: {}", settings.spec.name, e.key, e.message))?;
            instances.push(instance);
        }
        Ok(Providers { instances })
    }

    /// The provider with identity `id`.
    pub fn get(&self, id: usize) -> Option<&Arc<dyn DnsProvider>> {
        self.instances.get(id)
    }

    /// Ends the sessions the providers opened (API logins).
    pub async fn close(&self) {
        for provider in &self.instances {
            provider.close().await;
        }
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
    pub capabilities: Capabilities,
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

/// The providers implemented here.
pub const OWN: &[ProviderSpec] = &[rfc2136::SPEC, powerdns::SPEC, inwx::SPEC, zonefile::SPEC];

/// Every provider the program knows: ours, then those of the `dns-update` crate.
pub static REGISTRY: &[&[ProviderSpec]] = &[OWN, dnsupdate_registry::SPECS];

/// The entries of [`REGISTRY`] one by one.
pub fn providers() -> impl Iterator<Item = &'static ProviderSpec> {
    REGISTRY.iter().flat_map(|specs| specs.iter())
}

/// The registry entry for a handler name or alias (case-insensitive).
pub fn lookup(handler: &str) -> Option<&'static ProviderSpec> {
    let handler = handler.trim().to_ascii_lowercase();
    providers().find(|spec| spec.name == handler || spec.aliases.contains(&handler.as_str()))
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
        || providers().any(|spec| spec.keys.iter().any(|k| k.name == key))
}

/// True when `key` holds a secret for some provider.
pub fn is_secret_key(key: &str) -> bool {
    providers().any(|spec| spec.keys.iter().any(|k| k.name == key && k.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README documents every key of every provider: the registry and the
    /// docs cannot drift apart.
    #[test]
    fn readme_documents_every_provider_key() {
        let readme = include_str!("../../../README.md");
        for spec in OWN {
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
        let table = dnsupdate_registry::markdown_table();
        assert!(
            readme.contains(&table),
            "README's table of dns-update providers is out of date; it should read:\n{table}"
        );
    }

    #[test]
    fn names_and_keys_are_unique_and_lower_case() {
        let mut names: Vec<&str> = providers()
            .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a handler name is taken twice");
        for spec in providers() {
            assert!(
                spec.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            );
            for key in spec.keys {
                assert!(
                    key.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "{}: key {}",
                    spec.name,
                    key.name
                );
                assert!(
                    crate::config::records::parse_rule(key.name, "x").is_ok_and(|r| r.is_none()),
                    "{}: key {} is also a record key",
                    spec.name,
                    key.name
                );
            }
        }
    }
}
