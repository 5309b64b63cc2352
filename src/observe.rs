//! Observation: what a round must know of the world before it plans, read
//! and nothing changed. The material on disk (certificates, key files, DH
//! files), the zones (one zone lookup per zone, one read per zone, names below
//! a delegation looked up again), what the authoritative servers serve of new
//! records, the CA's renewal information, public addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use log::{debug, info, warn};
use tokio::task::JoinSet;

use crate::acme::{self, ari};
use crate::config::cert::certs_of;
use crate::config::dhparam::DhHandler;
use crate::config::model::{Config, Domain};
use crate::dns::observe::{
    rrset_signed, served_rrsets, soa_negative_ttl, validated_by, zone_signed,
};
use crate::dns::provider::{DnsProvider, Providers};
use crate::dns::record::{Name, Record, RecordType};
use crate::material::cert::{CertInfo, hex, parse_chain};
use crate::material::dhparam;
use crate::plan::needs::{Needs, rrsets};
use crate::plan::observed::{
    AriAnswer, AriWindowAnswer, Observed, ServedAnswers, TlsaDnssec, ZoneView,
};
use crate::plan::records::Awaited;
use crate::plan::{Input, Section};
use crate::state::State;

/// The chain file of a certificate in the state directory.
const CHAIN_FILE: &str = "fullchain.pem";

/// Reads and parses the chain of the certificate in `dir`.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn read_chain(dir: &Path) -> Result<CertInfo, String> {
    let path = dir.join(CHAIN_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_chain(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The material on disk that the state names, and the files rollover and
/// cleanup look after.
pub fn material(config: &Config, state: &State) -> Observed {
    let mut observed = Observed::default();
    for cert in &config.certs {
        let Some(entry) = state.certs.get(&cert.name) else {
            continue;
        };
        for material in entry.current.iter().chain(entry.prepared.iter()) {
            observed
                .certs
                .insert(material.dir.clone(), read_chain(&material.dir));
        }
        if let Some(next) = &entry.next_key {
            observed.certs.insert(next.dir.clone(), next_key_info(next));
        }
        if let (Some(dest), Some(current)) = (&cert.destination, &entry.current) {
            let version = format!("..{}", current.serial.to_ascii_lowercase());
            for name in &current.names {
                let dir = dest.join(name);
                if has_old_versions(&dir, &version) {
                    observed.old_versions.insert(dir);
                }
            }
        }
    }
    for dh in &config.dhparams {
        let entry = state.dhparams.get(&dh.name);
        if let Some(current) = entry.and_then(|e| e.current.as_ref())
            && !in_place(&current.file, &dh.filename)
        {
            observed.dh_not_in_place.insert(dh.name.clone());
        }
        if dh.handler == DhHandler::Ffdhe {
            let fingerprint = dhparam::ffdhe(dh.bits)
                .map(|group| dh_fingerprint(&group))
                .map_err(|e| e.to_string());
            observed.ffdhe.insert(dh.name.clone(), fingerprint);
        }
    }
    for service in &config.services {
        if let Some(file) = crate::plan::services::traefik_file_of(service)
            && !file.exists()
        {
            observed.traefik_missing.insert(service.name.clone());
        }
    }
    crate::apply::dkim::observe(config, state, &mut observed);
    for file in config
        .domains
        .iter()
        .filter_map(|d| d.mtasts.as_ref()?.file.as_ref())
    {
        observed.mtasts.insert(file.clone(), read_policy(file));
    }
    observed
}

/// What TLSA records of the key itself need of a next key, which has no
/// certificate yet: its SubjectPublicKeyInfo (as the state records it).
fn next_key_info(next: &crate::state::NextKey) -> Result<CertInfo, String> {
    let spki = crate::material::cert::unhex(&next.spki).ok_or_else(|| {
        format!(
            "the next key's public key in the state is not hex: {}",
            next.spki
        )
    })?;
    Ok(CertInfo {
        sans: Vec::new(),
        serial: String::new(),
        not_before: 0,
        not_after: 0,
        sha256_fingerprint: String::new(),
        leaf_der: Vec::new(),
        issuers_der: Vec::new(),
        leaf_spki_der: spki,
    })
}

/// An MTA-STS policy file: its text, `None` when there is none.
fn read_policy(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// The SHA-256 of DH parameters (DER), hex: how the state names them.
pub fn dh_fingerprint(params: &dhparam::DhParams) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &params.to_der()).as_ref())
}

/// Whether `target` holds exactly the contents of `source`. A missing source
/// cannot be put back, so it counts as in place.
fn in_place(source: &Path, target: &Path) -> bool {
    match (std::fs::read(source), std::fs::read(target)) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    }
}

/// Whether `dir` holds versioned directories other than `current`.
fn has_old_versions(dir: &Path, current: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with("..") && name != "..data" && name != current
    })
}

/// The zones of the domain sections `wanted`: one lookup per zone (a name at
/// or below a zone already found at the same provider is taken to be in it),
/// one read per zone, concurrently. Names that the zone's records show to lie
/// below a delegation get a lookup of their own in a second round.
pub async fn zones(
    input: &Input<'_>,
    providers: &Providers,
    wanted: &[Name],
) -> (Vec<ZoneView>, BTreeMap<Name, String>) {
    let mut views = Vec::new();
    let mut errors = BTreeMap::new();
    let wanted: std::collections::BTreeSet<&Name> = wanted.iter().collect();
    let mut remaining: Vec<&Domain> = input
        .config
        .domains
        .iter()
        .filter(|d| wanted.contains(&d.name))
        .collect();
    for round in 1..=2 {
        if remaining.is_empty() {
            break;
        }
        let max_concurrency = input.config.cdm.max_concurrency;
        let assigned = assign_zones(providers, &remaining, max_concurrency, &mut errors).await;
        let permits = Arc::new(tokio::sync::Semaphore::new(max_concurrency));
        let mut reads = JoinSet::new();
        let mut reading: BTreeMap<tokio::task::Id, Vec<Name>> = BTreeMap::new();
        for (provider_id, provider, zone, domains) in assigned {
            let owned: Vec<Domain> = domains.iter().map(|d| (*d).clone()).collect();
            let names = owned.iter().map(|d| d.name.clone()).collect();
            let wanted_rrsets = rrsets(input, &owned, &zone);
            let permits = permits.clone();
            let task = reads.spawn(async move {
                // Never closed: acquiring only waits for a free slot.
                let _slot = permits.acquire_owned().await.ok();
                let records = provider
                    .read_rrsets(&zone, &wanted_rrsets)
                    .await
                    .map_err(|e| e.to_string());
                (provider_id, zone, records, owned)
            });
            reading.insert(task.id(), names);
        }
        remaining = Vec::new();
        while let Some(joined) = reads.join_next().await {
            let (provider, zone, records, domains) = match joined {
                Ok(read) => read,
                Err(e) => {
                    // A bug: the domains of this zone get an error, the others go on.
                    let names = reading.remove(&e.id()).unwrap_or_default();
                    log::error!("reading the zone of {names:?} stopped unexpectedly: {e}");
                    for name in names {
                        errors.insert(
                            name,
                            format!("reading its zone stopped unexpectedly (a bug): {e}"),
                        );
                    }
                    continue;
                }
            };
            let cuts: Vec<Name> = records
                .as_ref()
                .map(|records| {
                    records
                        .iter()
                        .filter(|r| r.record_type() == RecordType::Ns && r.name != zone)
                        .map(|r| r.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let (delegated, inside): (Vec<Domain>, Vec<Domain>) = domains
                .into_iter()
                .partition(|d| cuts.iter().any(|cut| d.name.is_at_or_below(cut)));
            for domain in delegated {
                if round == 1 {
                    if let Some(d) = input.config.domains.iter().find(|c| c.name == domain.name) {
                        remaining.push(d);
                    }
                } else {
                    errors.insert(
                        domain.name.clone(),
                        "lies below a delegation, but its zone lookup names the parent zone".into(),
                    );
                }
            }
            views.push(ZoneView {
                provider,
                zone,
                records,
                domains: inside.into_iter().map(|d| d.name).collect(),
            });
        }
    }
    views.sort_by(|a, b| (a.provider, &a.zone).cmp(&(b.provider, &b.zone)));
    (views, errors)
}

/// The two lookup passes of one name length in [`assign_zones`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    OnePerParent,
    TheRest,
}

pub(crate) type Assigned<'a> = (usize, Arc<dyn DnsProvider>, Name, Vec<&'a Domain>);

/// Groups domain sections by zone with one lookup per zone.
pub(crate) async fn assign_zones<'a>(
    providers: &Providers,
    domains: &[&'a Domain],
    max_concurrency: usize,
    errors: &mut BTreeMap<Name, String>,
) -> Vec<Assigned<'a>> {
    let mut sorted: Vec<&Domain> = domains.to_vec();
    // Shorter names first, so a zone apex is looked up before the names below
    // it. Names of one length that no zone found so far covers are looked up
    // concurrently in two passes: first one name per parent (siblings below a
    // zone apex are then covered by its answer), then the siblings still not
    // covered (the first was an apex itself, as the zones of a hosting
    // provider are). So every zone costs one lookup, and a thousand zones are
    // not looked up one after the other.
    sorted.sort_by_key(|d| (d.name.as_str().split('.').count(), d.name.clone()));
    let labels = |d: &Domain| d.name.as_str().split('.').count();
    let mut zones: Vec<Assigned<'a>> = Vec::new();
    // Where each (provider, zone) found so far is in `zones`.
    let mut zone_at: BTreeMap<(usize, Name), usize> = BTreeMap::new();
    let mut assigned: std::collections::BTreeSet<Name> = std::collections::BTreeSet::new();
    let mut level_start = 0;
    while level_start < sorted.len() {
        let level = labels(sorted[level_start]);
        let level_end = sorted[level_start..]
            .iter()
            .position(|d| labels(d) != level)
            .map_or(sorted.len(), |n| level_start + n);
        let level_domains = &sorted[level_start..level_end];
        for pass in [Pass::OnePerParent, Pass::TheRest] {
            let mut lookups = Vec::new();
            let mut parents: Vec<(usize, Option<Name>)> = Vec::new();
            for domain in level_domains {
                if errors.contains_key(&domain.name) {
                    continue;
                }
                let id = domain.provider.id;
                if assigned.contains(&domain.name) {
                    continue;
                }
                if let Some((_, _, _, members)) =
                    innermost_zone(&zone_at, id, &domain.name).and_then(|at| zones.get_mut(at))
                {
                    members.push(domain);
                    assigned.insert(domain.name.clone());
                    continue;
                }
                let parent = (id, domain.name.parent());
                if pass == Pass::OnePerParent {
                    if parents.contains(&parent) {
                        continue;
                    }
                    parents.push(parent);
                }
                match providers.get(id) {
                    Some(instance) => lookups.push((*domain, instance.clone())),
                    None => {
                        errors.insert(domain.name.clone(), "its provider is not configured".into());
                    }
                }
            }
            let found: Vec<_> = futures_util::stream::iter(lookups)
                .map(|(domain, instance)| async move {
                    let zone = instance.find_zone(&domain.name).await;
                    (domain, instance, zone)
                })
                .buffered(max_concurrency)
                .collect()
                .await;
            for (domain, instance, zone) in found {
                let id = domain.provider.id;
                assigned.insert(domain.name.clone());
                match zone {
                    Ok(zone) => match zone_at.get(&(id, zone.clone())) {
                        Some(&at) => zones[at].3.push(domain),
                        None => {
                            zone_at.insert((id, zone.clone()), zones.len());
                            zones.push((id, instance, zone, vec![domain]));
                        }
                    },
                    Err(e) => {
                        errors.insert(domain.name.clone(), e.to_string());
                    }
                }
            }
        }
        level_start = level_end;
    }
    for (_, _, _, members) in &mut zones {
        members.sort_by(|a, b| a.name.cmp(&b.name));
    }
    zones
}

/// Where in the list of zones found is the innermost one of provider `id` that
/// holds `name`: the name itself, else its parent, and so on up.
fn innermost_zone(
    zone_at: &BTreeMap<(usize, Name), usize>,
    id: usize,
    name: &Name,
) -> Option<usize> {
    let mut candidate = Some(name.clone());
    while let Some(zone) = candidate {
        let key = (id, zone);
        if let Some(&at) = zone_at.get(&key) {
            return Some(at);
        }
        candidate = key.1.parent();
    }
    None
}

/// The authoritative servers to ask about `zone`: the configured
/// `nameservers`, or else the zone's NS set from the provider.
///
/// # Errors
/// A configured name does not resolve, or the provider cannot list the NS set.
pub async fn authoritative_servers(
    provider: &dyn DnsProvider,
    zone: &Name,
    nameservers: &[(String, u16)],
) -> Result<Vec<SocketAddr>, String> {
    let servers = crate::dns::authoritative::authoritative(provider, zone, nameservers).await?;
    Ok(servers.into_iter().map(|s| s.addr).collect())
}

/// What every authoritative server serves of `awaited`'s records: per domain
/// section its zone's servers, each asked once for all records there.
pub async fn served(config: &Config, providers: &Providers, awaited: &Awaited) -> ServedAnswers {
    let mut answers = ServedAnswers {
        servers: Vec::new(),
        negative_ttl: Ok(0),
        unknown: Vec::new(),
        records: awaited
            .domains
            .iter()
            .flat_map(|(_, records)| records.iter())
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
            .collect(),
        dnssec: Default::default(),
    };
    for (name, records) in &awaited.domains {
        let Some(domain) = config.domains.iter().find(|d| &d.name == name) else {
            continue;
        };
        let Some(provider) = providers.get(domain.provider.id) else {
            answers
                .unknown
                .push(format!("the provider of {name} is not configured"));
            continue;
        };
        let provider = provider.as_ref();
        let zone = match provider.find_zone(name).await {
            Ok(zone) => zone,
            Err(e) => {
                answers.unknown.push(format!("zone of {name}: {e}"));
                continue;
            }
        };
        let servers = match authoritative_servers(provider, &zone, &domain.nameservers).await {
            Ok(servers) if !servers.is_empty() => servers,
            Ok(_) => {
                answers
                    .unknown
                    .push(format!("no authoritative server of {zone} is known"));
                continue;
            }
            Err(e) => {
                answers
                    .unknown
                    .push(format!("cannot find the servers of {zone}: {e}"));
                continue;
            }
        };
        let signed = match zone_signed(servers[0], &zone).await {
            Ok(signed) => signed,
            Err(e) => {
                answers
                    .unknown
                    .push(format!("whether {zone} is signed (DNSKEY): {e}"));
                continue;
            }
        };
        let tlsa = matches!(awaited.section, Section::Cert(_));
        if signed {
            answers.dnssec.signed_zones.push(zone.to_string());
        } else {
            answers.dnssec.unsigned_zones.push(zone.to_string());
            if tlsa {
                warn!("{}", unsigned_zone_warning(&awaited.section, &zone));
            }
        }
        for server in &servers {
            let answer = served_rrsets(*server, records)
                .await
                .map_err(|e| e.to_string());
            debug!("{} at {server}: {answer:?}", awaited.section);
            if signed && matches!(answer, Ok(Some(s)) if !s.signed) {
                answers.dnssec.without_rrsig.push(*server);
            }
            answers
                .servers
                .push((*server, answer.map(|a| a.map(|s| s.ttl))));
        }
        if tlsa && let Some(resolver) = &domain.dnssec_resolver {
            let verdict = validated(resolver, records).await;
            debug!("{} at dnssecresolver: {verdict:?}", awaited.section);
            if answers.dnssec.resolver.as_ref().is_none_or(Result::is_ok) {
                answers.dnssec.resolver = Some(verdict);
            }
        }
        let negative = soa_negative_ttl(servers[0], &zone)
            .await
            .map(|ttls| ttls.negative_ttl())
            .map_err(|e| format!("negative-caching TTL of {zone}: {e}"));
        answers.negative_ttl = match (answers.negative_ttl, negative) {
            (Ok(a), Ok(b)) => Ok(a.max(b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    answers
}

/// DNSSEC of every domain with `tlsa` keys: whether its zone is signed, and
/// per TLSA owner in `observed`'s zone records whether every authoritative
/// server gives the RRset with its RRSIG.
pub async fn tlsa_dnssec(
    config: &Config,
    providers: &Providers,
    observed: &Observed,
) -> BTreeMap<Name, TlsaDnssec> {
    let mut out = BTreeMap::new();
    for domain in config
        .domains
        .iter()
        .filter(|d| crate::plan::tlsa::has_tlsa(d))
    {
        let Some(provider) = providers.get(domain.provider.id) else {
            continue;
        };
        let provider = provider.as_ref();
        let view = observed
            .zones
            .iter()
            .find(|v| v.domains.contains(&domain.name));
        let zone = match view {
            Some(view) => view.zone.clone(),
            None => match provider.find_zone(&domain.name).await {
                Ok(zone) => zone,
                Err(e) => {
                    debug!("zone of {}: {e}", domain.name);
                    continue;
                }
            },
        };
        let servers = authoritative_servers(provider, &zone, &domain.nameservers).await;
        let servers = match servers {
            Ok(servers) if !servers.is_empty() => servers,
            Ok(_) => Vec::new(),
            Err(e) => {
                out.insert(
                    domain.name.clone(),
                    TlsaDnssec {
                        zone,
                        signed: Err(e),
                        owners: Vec::new(),
                    },
                );
                continue;
            }
        };
        let Some(first) = servers.first() else {
            continue;
        };
        let signed = zone_signed(*first, &zone).await.map_err(|e| e.to_string());
        let mut owners: Vec<Name> = view
            .and_then(|v| v.records.as_ref().ok())
            .map(|records| {
                records
                    .iter()
                    .filter(|r| {
                        r.record_type() == RecordType::Tlsa && r.name.is_at_or_below(&domain.name)
                    })
                    .map(|r| r.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        owners.sort();
        owners.dedup();
        let mut by_owner = Vec::new();
        for owner in owners {
            let mut count = Ok((0, servers.len()));
            for server in &servers {
                match rrset_signed(*server, &zone, &owner, RecordType::Tlsa).await {
                    Ok(Some(true)) => {
                        if let Ok((n, _)) = &mut count {
                            *n += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => count = Err(format!("{server}: {e}")),
                }
            }
            by_owner.push((owner, count));
        }
        out.insert(
            domain.name.clone(),
            TlsaDnssec {
                zone,
                signed,
                owners: by_owner,
            },
        );
    }
    out
}

/// The words of the warning about TLSA records in an unsigned zone.
pub fn unsigned_zone_warning(section: &Section, zone: &Name) -> String {
    format!(
        "{section}: zone {zone} is not DNSSEC-signed (no DNSKEY): DANE clients such as mail servers ignore its TLSA records"
    )
}

/// The verdict of the validating resolver `host:port` on `records`.
async fn validated(resolver: &(String, u16), records: &[Record]) -> Result<(), String> {
    let (host, port) = resolver;
    let lookup = tokio::net::lookup_host((host.as_str(), *port));
    let addr = tokio::time::timeout(crate::dns::transport::DEFAULT_TIMEOUT, lookup)
        .await
        .map_err(|_| format!("dnssecresolver {host}: no address in time"))?
        .map_err(|e| format!("dnssecresolver {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("dnssecresolver {host}: no address"))?;
    validated_by(addr, records).await
}

/// The CA's renewal information for the current certificate of each `[cert]`
/// section in `wanted`. The time to ask again counts from `now`.
pub async fn ari(
    config: &Config,
    state: &State,
    observed: &Observed,
    wanted: &[String],
    now: DateTime<Utc>,
) -> BTreeMap<String, AriAnswer> {
    let mut answers = BTreeMap::new();
    // Each CA's directory is asked once, however many certificates it has.
    let mut bases: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    for name in wanted {
        let Some(cert) = config.certs.iter().find(|c| &c.name == name) else {
            continue;
        };
        let Some(current) = state.certs.get(name).and_then(|c| c.current.as_ref()) else {
            continue;
        };
        let id = match observed.certs.get(&current.dir) {
            Some(Ok(info)) => ari::cert_id(&info.leaf_der),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the certificate was not read".into()),
        };
        let fetched = match (&id, acme::http::AcmeHttp::new(cert.cacert.as_deref())) {
            (Ok(id), Ok(http)) => {
                let base = match bases.get(&cert.directory) {
                    Some(base) => base.clone(),
                    None => {
                        let base = ari::renewal_info_url(&http, &cert.directory).await;
                        bases.insert(cert.directory.clone(), base.clone());
                        base
                    }
                };
                ari::fetch_at(&http, base, id).await
            }
            (Err(e), _) => ari::Fetched {
                result: Err(e.clone()),
                retry_after: ari::DEFAULT_RETRY,
            },
            (_, Err(e)) => ari::Fetched {
                result: Err(e.to_string()),
                retry_after: ari::DEFAULT_RETRY,
            },
        };
        let previous = state.certs.get(name).and_then(|c| c.ari.as_ref());
        match &fetched.result {
            Ok(window) => info!(
                "[cert:{name}] the CA suggests renewing between {} and {}{}",
                window.start.format(crate::plan::timing::WHEN),
                window.end.format(crate::plan::timing::WHEN),
                window
                    .explanation_url
                    .as_ref()
                    .map(|u| format!(" (see {u})"))
                    .unwrap_or_default()
            ),
            // Said once: when the error first appears.
            Err(e) if previous.is_none_or(|p| p.error.is_none()) => warn!(
                "[cert:{name}] no renewal information from the CA ({e}); renewdays = {} decides until it gives some",
                cert.renew_days
            ),
            Err(e) => debug!("[cert:{name}] still no renewal information: {e}"),
        }
        let retry = chrono::Duration::from_std(fetched.retry_after)
            .unwrap_or_else(|_| chrono::Duration::hours(6));
        answers.insert(
            name.clone(),
            AriAnswer {
                serial: current.serial.clone(),
                cert_id: id.unwrap_or_default(),
                result: fetched.result.map(|w| AriWindowAnswer {
                    start: w.start,
                    end: w.end,
                    explanation_url: w.explanation_url,
                }),
                next_fetch: now + retry,
                random: random_fraction(),
            },
        );
    }
    answers
}

/// A number in [0, 1) from the system's random source.
fn random_fraction() -> f64 {
    use rand_core::RngCore;
    let bits = rand_core::OsRng.next_u64() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// Public addresses from each distinct lookup URL, asked once, concurrently.
pub async fn public_ips(needs: &Needs, observed: &mut Observed) {
    let mut set = JoinSet::new();
    for url in &needs.ip4 {
        let url = url.clone();
        set.spawn(async move {
            let answer = crate::publicip::lookup_v4(&url).await;
            (url, Some(answer), None)
        });
    }
    for url in &needs.ip6 {
        let url = url.clone();
        set.spawn(async move {
            let answer = crate::publicip::lookup_v6(&url).await;
            (url, None, Some(answer))
        });
    }
    while let Some(joined) = set.join_next().await {
        let (url, v4, v6) = match joined {
            Ok(answer) => answer,
            Err(e) => {
                log::error!("a public address lookup stopped unexpectedly (a bug): {e}");
                continue;
            }
        };
        if let Some(answer) = v4 {
            if let Ok(a) = &answer {
                info!("public IPv4 address {a} (from {url})");
            }
            observed.ip4.insert(url.clone(), answer);
        }
        if let Some(answer) = v6 {
            if let Ok(a) = &answer {
                info!("public IPv6 address {a} (from {url})");
            }
            observed.ip6.insert(url, answer);
        }
    }
}

/// The CA domains for `caa = auto` per domain section: the CAA identity of the
/// CA of every certificate that covers it (each CA asked once).
pub async fn caa_identities(config: &Config, domains: &[Name], observed: &mut Observed) {
    let mut by_ca: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    for name in domains {
        let certs = certs_of(&config.certs, name);
        if certs.is_empty() {
            observed.caa.insert(
                name.clone(),
                Err(format!(
                    "caa = auto publishes the CA of {name}'s certificate, but no [cert] section covers it (cert = ...)"
                )),
            );
            continue;
        }
        let mut identities = Ok(Vec::new());
        for cert in &certs {
            if !by_ca.contains_key(&cert.directory) {
                let answer = match &cert.caa_identity {
                    Some(id) => Ok(id.clone()),
                    None => acme::caa_identity_of(&cert.directory, cert.cacert.as_deref())
                        .await
                        .map_err(|e| e.to_string()),
                };
                by_ca.insert(cert.directory.clone(), answer);
            }
            match (&mut identities, &by_ca[&cert.directory]) {
                (Ok(list), Ok(id)) if !list.contains(id) => list.push(id.clone()),
                (Ok(_), Ok(_)) => {}
                (_, Err(e)) => identities = Err(e.clone()),
                (Err(_), Ok(_)) => {}
            }
        }
        if let Ok(list) = &mut identities
            && config
                .domains
                .iter()
                .any(|d| &d.name == name && d.caa_accounturi)
        {
            *list = bind_to_accounts(config, &certs, &by_ca);
        }
        observed.caa.insert(name.clone(), identities);
    }
}

/// RFC 8657: each CA's issuer domain with the `accounturi` of this program's
/// account there and `validationmethods=dns-01` (the only method it uses).
/// Before the account exists the plain issuer domain is published, so that
/// the first order can be made; the next round binds it.
fn bind_to_accounts(
    config: &Config,
    certs: &[&crate::config::cert::CertSection],
    by_ca: &BTreeMap<String, Result<String, String>>,
) -> Vec<String> {
    let dir = config.cdm.statedir.join("accounts");
    let mut bound = Vec::new();
    for cert in certs {
        let Some(Ok(identity)) = by_ca.get(&cert.directory) else {
            continue;
        };
        let directory =
            acme::directory_url(&cert.directory).unwrap_or_else(|_| cert.directory.clone());
        let value = match acme::account::stored_account_url(&dir, &directory) {
            Ok(Some(url)) => format!("{identity}; accounturi={url}; validationmethods=dns-01"),
            Ok(None) => {
                info!(
                    "caa.accounturi: no ACME account at {directory} yet; CAA names {identity} until the account exists"
                );
                identity.clone()
            }
            Err(e) => {
                warn!("caa.accounturi: {e}; CAA names {identity} without the account");
                identity.clone()
            }
        };
        if !bound.contains(&value) {
            bound.push(value);
        }
    }
    bound
}

/// Fills in what `needs` asks for, besides the zones.
pub async fn network(
    input: &Input<'_>,
    providers: &Providers,
    needs: &Needs,
    observed: &mut Observed,
) {
    public_ips(needs, observed).await;
    caa_identities(input.config, &needs.caa, observed).await;
    let mut served_answers = BTreeMap::new();
    for awaited in &needs.served {
        served_answers.insert(
            awaited.section.clone(),
            served(input.config, providers, awaited).await,
        );
    }
    observed.served = served_answers;
    observed.ari = ari(input.config, input.state, observed, &needs.ari, input.now).await;
}
