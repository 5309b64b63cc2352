//! The update phase: static records of every domain. Zones are found and
//! processed concurrently; each zone is read once and changed with one change
//! set (one RFC 2136 UPDATE), adds before deletes.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use log::info;
use tokio::task::JoinSet;

use super::zones::{ZoneOutcome, ZoneWork, apply_zone, for_each_zone};
use crate::acme;
use crate::config::cert::certs_of;
use crate::config::model::{Config, Domain};
use crate::config::records::{CaaEntry, RecordKind};
use crate::dns::record::Name;
use crate::plan::update::{PublicIps, plan_domain};
use crate::publicip;
use crate::run::PhaseFailed;

/// Runs the update phase.
///
/// # Errors
/// [`PhaseFailed`] when a lookup, a zone or a key failed; other zones and keys
/// are still applied.
pub async fn run(config: &Config, dry_run: bool) -> Result<(), PhaseFailed> {
    let caa = Arc::new(caa_auto_identities(config).await);
    let domains: Vec<Domain> = config
        .domains
        .iter()
        .filter(|d| d.rules.iter().any(|r| r.rule.kind.is_static()))
        .cloned()
        .collect();
    if domains.is_empty() {
        info!("No static records configured");
        return Ok(());
    }
    let ips = Arc::new(public_ips(&domains).await);
    let failed = for_each_zone(domains, |work| {
        let ips = ips.clone();
        let caa = caa.clone();
        async move { update_zone(work, &ips, &caa, dry_run).await }
    })
    .await;
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

async fn update_zone(
    work: ZoneWork<Domain>,
    ips: &HashMap<String, PublicIpAnswer>,
    caa: &HashMap<Name, Result<Vec<String>, String>>,
    dry_run: bool,
) -> ZoneOutcome<Domain> {
    let caa_identities = |d: &Domain| {
        caa.get(&d.name)
            .cloned()
            .unwrap_or_else(|| Err(format!("no certificate covers {}", d.name)))
    };
    apply_zone(work, dry_run, |domain: &Domain, zone, existing| {
        let public = PublicIps {
            v4: needs(domain, true).then(|| answer_v4(ips, &domain.ip4_lookup)),
            v6: needs(domain, false).then(|| answer_v6(ips, &domain.ip6_lookup)),
        };
        plan_domain(domain, zone, existing, &public, &caa_identities)
    })
    .await
}

fn needs(domain: &Domain, v4: bool) -> bool {
    domain.rules.iter().any(|r| {
        if v4 {
            r.rule.kind.needs_public_ip4()
        } else {
            r.rule.kind.needs_public_ip6()
        }
    })
}

/// The answer of one lookup URL.
#[derive(Clone, Debug)]
enum PublicIpAnswer {
    V4(Result<Ipv4Addr, String>),
    V6(Result<Ipv6Addr, String>),
}

/// Looks up each distinct lookup URL once, concurrently.
async fn public_ips(domains: &[Domain]) -> HashMap<String, PublicIpAnswer> {
    let mut wanted: Vec<(String, bool)> = Vec::new();
    for domain in domains {
        for (v4, url) in [(true, &domain.ip4_lookup), (false, &domain.ip6_lookup)] {
            if needs(domain, v4) && !wanted.iter().any(|(u, f)| u == url && *f == v4) {
                wanted.push((url.clone(), v4));
            }
        }
    }
    let mut set = JoinSet::new();
    for (url, v4) in wanted {
        set.spawn(async move {
            let answer = if v4 {
                PublicIpAnswer::V4(publicip::lookup_v4(&url).await)
            } else {
                PublicIpAnswer::V6(publicip::lookup_v6(&url).await)
            };
            (url, answer)
        });
    }
    let mut answers = HashMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((url, answer)) = joined {
            match &answer {
                PublicIpAnswer::V4(Ok(a)) => info!("public IPv4 address {a} (from {url})"),
                PublicIpAnswer::V6(Ok(a)) => info!("public IPv6 address {a} (from {url})"),
                _ => {}
            }
            answers.insert(url, answer);
        }
    }
    answers
}

fn answer_v4(ips: &HashMap<String, PublicIpAnswer>, url: &str) -> Result<Ipv4Addr, String> {
    match ips.get(url) {
        Some(PublicIpAnswer::V4(answer)) => answer.clone(),
        _ => Err(format!("{url} was not asked")),
    }
}

fn answer_v6(ips: &HashMap<String, PublicIpAnswer>, url: &str) -> Result<Ipv6Addr, String> {
    match ips.get(url) {
        Some(PublicIpAnswer::V6(answer)) => answer.clone(),
        _ => Err(format!("{url} was not asked")),
    }
}

/// The CA domains for `caa = auto`, per domain: the CAA identity of the CA of
/// every certificate that covers it (each CA asked once).
async fn caa_auto_identities(config: &Config) -> HashMap<Name, Result<Vec<String>, String>> {
    let mut by_ca: HashMap<String, Result<String, String>> = HashMap::new();
    let mut result = HashMap::new();
    for domain in &config.domains {
        let wants_auto = domain.rules.iter().any(|r| {
            matches!(&r.rule.kind, RecordKind::Caa(entries) if entries.contains(&CaaEntry::Auto))
        });
        if !wants_auto {
            continue;
        }
        let certs = certs_of(&config.certs, &domain.name);
        if certs.is_empty() {
            result.insert(
                domain.name.clone(),
                Err(format!(
                    "caa = auto publishes the CA of {}'s certificate, but no [cert] section covers it (cert = ...)",
                    domain.name
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
        result.insert(domain.name.clone(), identities);
    }
    result
}
