//! A `[domain:NAME]` section as the rest of the program sees it: its records,
//! its provider (by identity) and its timing. Built by `model`, read by the
//! module parsers (a certificate's names) and the planner.

use std::time::Duration;

use super::ini::Span;
use super::mailpolicy::MtaSts;
use super::records::RecordRule;
use crate::dns::provider::{self, KeyValues, ProviderSpec};
use crate::dns::record::Name;

/// A rule with where it was written.
#[derive(Clone, Debug)]
pub struct SpannedRule {
    pub rule: RecordRule,
    pub span: Span,
}

/// The provider of a domain, by identity: domains configured with identical
/// provider settings share one. The runner builds the providers
/// ([`crate::dns::provider::Providers`]) from [`Config::providers`].
#[derive(Clone, Debug)]
pub struct ProviderRef {
    pub handler: &'static str,
    /// What it can do (from the registry).
    pub capabilities: provider::Capabilities,
    /// Its index in [`Config::providers`].
    pub id: usize,
}

/// The settings of one provider: its registry entry and its keys (checked).
#[derive(Clone)]
pub struct ProviderSettings {
    pub spec: &'static ProviderSpec,
    pub keys: KeyValues,
}

/// `[domain:NAME]`: the records of NAME.
#[derive(Clone)]
pub struct Domain {
    pub name: Name,
    pub span: Option<Span>,
    pub provider: ProviderRef,
    pub ttl: u32,
    pub ip4_lookup: String,
    pub ip6_lookup: String,
    /// `nameservers`: the authoritative servers to ask (host, port); empty for
    /// the zone's NS set.
    pub nameservers: Vec<(String, u16)>,
    /// `propagationtimeout`: how long to wait for new records to be served.
    pub propagation_timeout: Duration,
    /// `dnssecresolver`: a validating resolver (host, port) that must give the
    /// new TLSA records with the AD bit before rollover.
    pub dnssec_resolver: Option<(String, u16)>,
    /// Record rules ordered: set, then add, then remove.
    pub rules: Vec<SpannedRule>,
    /// The `cert` key: the certificate sections covering this name.
    pub certs: Option<CertList>,
    /// `mtasts` and its keys (RFC 8461).
    pub mtasts: Option<MtaSts>,
    /// `caa.accounturi = yes`: `caa = auto` names the ACME account (RFC 8657).
    pub caa_accounturi: bool,
}

/// A domain's `cert` key: section names (`auto` is expanded to all of them).
#[derive(Clone, Debug)]
pub struct CertList {
    pub names: Vec<String>,
    pub span: Span,
}
