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
use log::{debug, info, warn};
use tokio::task::JoinSet;

use crate::acme::{self, ari};
use crate::config::cert::certs_of;
use crate::config::dhparam::DhHandler;
use crate::config::model::{Config, Domain};
use crate::dns::observe::{served_ttl, soa_negative_ttl};
use crate::dns::provider::{DnsProvider, Providers};
use crate::dns::record::{Name, RecordType};
use crate::material::cert::{CertInfo, hex, parse_chain};
use crate::material::dhparam;
use crate::plan::Input;
use crate::plan::needs::{Needs, rrsets};
use crate::plan::observed::{AriAnswer, AriWindowAnswer, Observed, ServedAnswers, ZoneView};
use crate::plan::records::Awaited;
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
    observed
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
        let assigned = assign_zones(providers, &remaining, &mut errors).await;
        let mut reads = JoinSet::new();
        for (provider_id, provider, zone, domains) in assigned {
            let owned: Vec<Domain> = domains.iter().map(|d| (*d).clone()).collect();
            let wanted_rrsets = rrsets(input, &owned, &zone);
            reads.spawn(async move {
                let records = provider
                    .read_rrsets(&zone, &wanted_rrsets)
                    .await
                    .map_err(|e| e.to_string());
                (provider_id, zone, records, owned)
            });
        }
        remaining = Vec::new();
        while let Some(joined) = reads.join_next().await {
            let (provider, zone, records, domains) = match joined {
                Ok(read) => read,
                Err(e) => {
                    log::error!("a zone read stopped: {e}");
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

type Assigned<'a> = (usize, Arc<dyn DnsProvider>, Name, Vec<&'a Domain>);

/// Groups domain sections by zone with one lookup per zone.
async fn assign_zones<'a>(
    providers: &Providers,
    domains: &[&'a Domain],
    errors: &mut BTreeMap<Name, String>,
) -> Vec<Assigned<'a>> {
    let mut sorted: Vec<&Domain> = domains.to_vec();
    // Shorter names first, so a zone apex is looked up before the names below it.
    sorted.sort_by_key(|d| (d.name.as_str().split('.').count(), d.name.clone()));
    let mut zones: Vec<Assigned<'a>> = Vec::new();
    for domain in sorted {
        let id = domain.provider.id;
        let known = zones
            .iter_mut()
            .filter(|(p, _, zone, _)| *p == id && domain.name.is_at_or_below(zone))
            .max_by_key(|(_, _, zone, _)| zone.as_str().len());
        if let Some((_, _, _, members)) = known {
            members.push(domain);
            continue;
        }
        let Some(instance) = providers.get(id) else {
            errors.insert(domain.name.clone(), "its provider is not configured".into());
            continue;
        };
        match instance.find_zone(&domain.name).await {
            Ok(zone) => match zones.iter_mut().find(|(p, _, z, _)| *p == id && *z == zone) {
                Some((_, _, _, members)) => members.push(domain),
                None => zones.push((id, instance.clone(), zone, vec![domain])),
            },
            Err(e) => {
                errors.insert(domain.name.clone(), e.to_string());
            }
        }
    }
    for (_, _, _, members) in &mut zones {
        members.sort_by(|a, b| a.name.cmp(&b.name));
    }
    zones
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
    let servers = crate::dns::observe::authoritative(provider, zone, nameservers).await?;
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
        for server in &servers {
            let answer = served_ttl(*server, records)
                .await
                .map_err(|e| e.to_string());
            debug!("{} at {server}: {answer:?}", awaited.section);
            answers.servers.push((*server, answer));
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
        let Ok((url, v4, v6)) = joined else { continue };
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
        for cert in certs {
            if !by_ca.contains_key(&cert.directory) {
                let answer = acme::caa_identity_of(&cert.directory, cert.cacert.as_deref())
                    .await
                    .map_err(|e| e.to_string());
                by_ca.insert(cert.directory.clone(), answer);
            }
            match (&mut identities, &by_ca[&cert.directory]) {
                (Ok(list), Ok(id)) if !list.contains(id) => list.push(id.clone()),
                (Ok(_), Ok(_)) => {}
                (_, Err(e)) => identities = Err(e.clone()),
                (Err(_), Ok(_)) => {}
            }
        }
        observed.caa.insert(name.clone(), identities);
    }
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
