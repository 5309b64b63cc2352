//! What a round observed of the world, as plain data for the planner: the
//! material on disk, the zones' records, what the authoritative servers serve,
//! the CA's renewal information, public addresses. `crate::observe` fills it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::Section;
use crate::dns::record::{Name, Record};
use crate::material::cert::CertInfo;

/// Everything observed in one round.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The certificates of the state's material, parsed, by their directory.
    pub certs: BTreeMap<PathBuf, Result<CertInfo, String>>,
    /// The zones read, each with the domain sections in it.
    pub zones: Vec<ZoneView>,
    /// Domain sections whose zone could not be found.
    pub zone_errors: BTreeMap<Name, String>,
    /// Public addresses for `auto`, by lookup URL.
    pub ip4: BTreeMap<String, Result<Ipv4Addr, String>>,
    pub ip6: BTreeMap<String, Result<Ipv6Addr, String>>,
    /// The CA domains for `caa = auto`, per domain section.
    pub caa: BTreeMap<Name, Result<Vec<String>, String>>,
    /// What the authoritative servers serve of a section's new records.
    pub served: BTreeMap<Section, ServedAnswers>,
    /// The CA's renewal information fetched this round, per `[cert]` section.
    pub ari: BTreeMap<String, AriAnswer>,
    /// DKIM sections whose prepared key file is missing (an interrupted run).
    pub dkim_key_missing: BTreeSet<String>,
    /// DKIM sections whose prepared key file holds another key than the state
    /// says, with the message.
    pub dkim_key_wrong: BTreeMap<String, String>,
    /// DKIM sections whose signing configuration cannot be made (a template
    /// that does not render), with the message.
    pub dkim_config_errors: BTreeMap<String, String>,
    /// DH sections whose file at `filename` differs from the current
    /// parameters (or is missing).
    pub dh_not_in_place: BTreeSet<String>,
    /// Fingerprints of the RFC 7919 groups of `ffdhe` sections.
    pub ffdhe: BTreeMap<String, Result<String, String>>,
    /// Traefik services whose configuration file is missing.
    pub traefik_missing: BTreeSet<String>,
    /// Destination directories holding versions other than the deployed one.
    pub old_versions: BTreeSet<PathBuf>,
    /// DNSSEC of the zones with TLSA records, per domain section (asked for
    /// `--status` and `--check` only).
    pub tlsa_dnssec: BTreeMap<Name, TlsaDnssec>,
    /// The MTA-STS policy files (`mtastsfile`): their content, `None` when
    /// missing, or why they could not be read.
    pub mtasts: BTreeMap<PathBuf, Result<Option<String>, String>>,
}

/// DNSSEC of a domain's TLSA records as its authoritative servers serve them.
#[derive(Clone, Debug)]
pub struct TlsaDnssec {
    pub zone: Name,
    /// Whether the zone is signed (a DNSKEY RRset at its apex), or why it is
    /// not known.
    pub signed: Result<bool, String>,
    /// Per TLSA owner name: how many servers give the RRset with its RRSIG, of
    /// how many asked, or why they could not be asked.
    pub owners: Vec<(Name, SignedCount)>,
}

/// How many servers give an RRset with its RRSIG, of how many asked.
pub(crate) type SignedCount = Result<(usize, usize), String>;

/// One zone as a provider holds it.
#[derive(Clone, Debug)]
pub struct ZoneView {
    /// The provider's identity in the configuration.
    pub provider: usize,
    pub zone: Name,
    /// Its records (those in scope, for providers that cannot list a zone),
    /// or why they could not be read.
    pub records: Result<Vec<Record>, String>,
    /// The domain sections in this zone.
    pub domains: Vec<Name>,
}

/// The answers of every authoritative server of a section's zones.
#[derive(Clone, Debug)]
pub struct ServedAnswers {
    /// Per server: the longest TTL of the wanted RRsets when it serves every
    /// wanted record, `Ok(None)` when it does not (yet), or why it could not be
    /// asked.
    pub servers: Vec<(SocketAddr, Result<Option<u32>, String>)>,
    /// The longest negative-caching TTL of the zones, or why it is unknown.
    pub negative_ttl: Result<u32, String>,
    /// Zones whose servers could not be found, with the reason.
    pub unknown: Vec<String>,
    /// The records asked about, for messages (`owner TYPE data`).
    pub records: Vec<String>,
    /// What DNSSEC says of them.
    pub dnssec: DnssecAnswers,
}

/// DNSSEC and a section's new records: in a signed zone they count as served
/// only with their signatures (a validating resolver treats them as bogus
/// without), and a validating resolver may be asked too (`dnssecresolver`).
#[derive(Clone, Debug, Default)]
pub struct DnssecAnswers {
    /// Zones that are signed (a DNSKEY RRset at the apex).
    pub signed_zones: Vec<String>,
    /// Zones that are not: DANE clients ignore TLSA records there.
    pub unsigned_zones: Vec<String>,
    /// Servers of signed zones that serve the records without an RRSIG.
    pub without_rrsig: Vec<SocketAddr>,
    /// The validating resolver's verdict, when one is configured: `Ok` when it
    /// gave every record with the AD bit, else why not.
    pub resolver: Option<Result<(), String>>,
}

impl DnssecAnswers {
    /// True when nothing DNSSEC says stands in the way.
    pub fn ready(&self) -> bool {
        self.without_rrsig.is_empty() && !matches!(self.resolver, Some(Err(_)))
    }
}

impl ServedAnswers {
    /// True when there are servers, and every one serves every record.
    pub fn all_served(&self) -> bool {
        self.unknown.is_empty()
            && !self.servers.is_empty()
            && self.servers.iter().all(|(_, a)| matches!(a, Ok(Some(_))))
            && self.dnssec.ready()
    }

    /// The longest TTL the servers gave.
    pub fn max_ttl(&self) -> u32 {
        self.servers
            .iter()
            .filter_map(|(_, a)| a.as_ref().ok().copied().flatten())
            .max()
            .unwrap_or(0)
    }

    /// Why the records do not count as served, for the log: the servers that
    /// do not serve them (or could not be asked), and the records.
    pub fn missing(&self) -> String {
        let mut parts: Vec<String> = self.unknown.clone();
        let not: Vec<String> = self
            .servers
            .iter()
            .filter_map(|(server, answer)| match answer {
                Ok(Some(_)) => None,
                Ok(None) => Some(server.to_string()),
                Err(e) => Some(format!("{server} ({e})")),
            })
            .collect();
        if !not.is_empty() {
            parts.push(format!(
                "{} do{} not serve all of: {}",
                not.join(", "),
                if not.len() == 1 { "es" } else { "" },
                self.records.join("; ")
            ));
        }
        if self.servers.is_empty() && self.unknown.is_empty() {
            parts.push("no authoritative server is known".into());
        }
        if !self.dnssec.without_rrsig.is_empty() {
            let servers: Vec<String> = self
                .dnssec
                .without_rrsig
                .iter()
                .map(ToString::to_string)
                .collect();
            parts.push(format!(
                "the zone is signed, but {} serve{} them without their RRSIG (validating resolvers would reject them)",
                servers.join(", "),
                if servers.len() == 1 { "s" } else { "" }
            ));
        }
        if let Some(Err(e)) = &self.dnssec.resolver {
            parts.push(e.clone());
        }
        parts.join("; ")
    }
}

/// The CA's answer to a renewalInfo request (RFC 9773 §4.2).
#[derive(Clone, Debug)]
pub struct AriAnswer {
    /// The certificate asked about.
    pub serial: String,
    pub cert_id: String,
    pub result: Result<AriWindowAnswer, String>,
    /// When to ask again (the CA's `Retry-After`, bounded; a default after an
    /// error).
    pub next_fetch: DateTime<Utc>,
    /// A number in [0, 1) drawn for this answer: where in the window renewal
    /// falls, if a new time must be chosen.
    pub random: f64,
}

/// A usable renewalInfo answer.
#[derive(Clone, Debug)]
pub struct AriWindowAnswer {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub explanation_url: Option<String>,
}
