//! The update phase: static records of every domain. Zones are found and
//! processed concurrently; each zone is read once (one AXFR for RFC 2136; only
//! the RRsets in scope for providers that cannot list a zone) and changed with
//! one change set (one RFC 2136 UPDATE), adds before deletes.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use log::{error, info};
use tokio::task::JoinSet;

use crate::acme;
use crate::config::cert::certs_of;
use crate::config::model::{Config, Domain};
use crate::config::records::{CaaEntry, RecordKind};
use crate::dns::provider::{ChangeSet, DnsProvider};
use crate::dns::record::{Name, RecordType};
use crate::plan::rrsets::rrsets_to_read;
use crate::plan::update::{DomainPlan, PublicIps, plan_domain};
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
    let mut failed = false;

    let ips = Arc::new(public_ips(&domains).await);

    // Usually one round. A name that the zone's AXFR shows to lie below a
    // delegation is handed back and looked up on its own in a second round.
    let mut remaining = domains;
    let mut round = 0;
    while !remaining.is_empty() {
        round += 1;
        let zones = assign_zones(remaining, &mut failed).await;
        let mut tasks = JoinSet::new();
        for mut work in zones {
            work.domains.sort_by(|a, b| a.name.cmp(&b.name));
            let ips = ips.clone();
            let caa = caa.clone();
            tasks.spawn(async move { update_zone(work, &ips, &caa, dry_run).await });
        }
        remaining = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(outcome) => {
                    failed |= outcome.failed;
                    if round == 1 {
                        remaining.extend(outcome.delegated);
                    } else {
                        for domain in outcome.delegated {
                            error!(
                                "[domain:{}]: lies below a delegation, but its zone lookup names the parent zone; its records are left as they are",
                                domain.name
                            );
                            failed = true;
                        }
                    }
                }
                Err(_) => failed = true,
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Groups domains by zone with one zone lookup per zone, not per name: a name
/// at or below a zone already found (at the same provider) is taken to be in
/// it; `update_zone` hands back names its AXFR shows to be delegated.
async fn assign_zones(mut domains: Vec<Domain>, failed: &mut bool) -> Vec<ZoneWork> {
    // Shorter names first, so a zone apex is looked up before the names below it.
    domains.sort_by_key(|d| (d.name.as_str().split('.').count(), d.name.clone()));
    let mut zones: Vec<ZoneWork> = Vec::new();
    for domain in domains {
        let id = domain.provider.id;
        let known = zones
            .iter_mut()
            .filter(|w| w.provider_id == id && domain.name.is_at_or_below(&w.zone))
            .max_by_key(|w| w.zone.as_str().len());
        if let Some(work) = known {
            work.domains.push(domain);
            continue;
        }
        match domain.provider.instance.find_zone(&domain.name).await {
            Ok(zone) => match zones
                .iter_mut()
                .find(|w| w.provider_id == id && w.zone == zone)
            {
                Some(work) => work.domains.push(domain),
                None => zones.push(ZoneWork {
                    provider: domain.provider.instance.clone(),
                    provider_id: id,
                    zone,
                    domains: vec![domain],
                }),
            },
            Err(e) => {
                error!(
                    "[domain:{}]: {e}; its records are left as they are",
                    domain.name
                );
                *failed = true;
            }
        }
    }
    zones
}

/// The domains of one zone at one provider.
struct ZoneWork {
    provider: Arc<dyn DnsProvider>,
    provider_id: usize,
    zone: Name,
    domains: Vec<Domain>,
}

/// What became of one zone's work.
struct ZoneOutcome {
    failed: bool,
    /// Domains that lie below a delegation in this zone, so in another zone.
    delegated: Vec<Domain>,
}

async fn update_zone(
    work: ZoneWork,
    ips: &HashMap<String, PublicIpAnswer>,
    caa: &HashMap<Name, Result<Vec<String>, String>>,
    dry_run: bool,
) -> ZoneOutcome {
    let ZoneWork {
        provider,
        zone,
        domains,
        ..
    } = work;
    let wanted = rrsets_to_read(&domains, &zone);
    let existing = match provider.read_rrsets(&zone, &wanted).await {
        Ok(records) => records,
        Err(e) => {
            error!("zone {zone}: {e}; nothing in this zone was changed");
            return ZoneOutcome {
                failed: true,
                delegated: Vec::new(),
            };
        }
    };
    // NS records below the apex are delegations: names at or below them belong
    // to another zone.
    let cuts: Vec<&Name> = existing
        .iter()
        .filter(|r| r.record_type() == RecordType::Ns && r.name != zone)
        .map(|r| &r.name)
        .collect();
    let (delegated, domains): (Vec<Domain>, Vec<Domain>) = domains
        .into_iter()
        .partition(|d| cuts.iter().any(|cut| d.name.is_at_or_below(cut)));
    let mut failed = false;
    let mut changes = ChangeSet::default();
    let mut plans: Vec<(&Domain, DomainPlan)> = Vec::new();
    for domain in &domains {
        let public = PublicIps {
            v4: needs(domain, true).then(|| answer_v4(ips, &domain.ip4_lookup)),
            v6: needs(domain, false).then(|| answer_v6(ips, &domain.ip6_lookup)),
        };
        let caa_identities = |d: &Domain| {
            caa.get(&d.name)
                .cloned()
                .unwrap_or_else(|| Err(format!("no certificate covers {}", d.name)))
        };
        let plan = plan_domain(domain, &zone, &existing, &public, &caa_identities);
        changes.adds.extend(plan.changes.adds.iter().cloned());
        changes.deletes.extend(plan.changes.deletes.iter().cloned());
        plans.push((domain, plan));
    }
    // Two sections whose scopes overlap must not delete what the other adds.
    let adds = changes.adds.clone();
    changes
        .deletes
        .retain(|d| !adds.iter().any(|a| a.same_as(d)));

    let applied = if dry_run || changes.is_empty() {
        Ok(())
    } else {
        provider.apply(&zone, &changes).await
    };
    for (domain, plan) in &plans {
        info!("Create resource records for section \"{}\"", domain.name);
        for line in &plan.lines {
            info!("{line}");
        }
        for message in &plan.errors {
            error!("[domain:{}] {message}", domain.name);
            failed = true;
        }
    }
    if dry_run {
        for record in &changes.adds {
            println!("zone {zone}: add {record}");
        }
        for record in &changes.deletes {
            println!("zone {zone}: delete {record}");
        }
        if changes.is_empty() {
            println!("zone {zone}: no changes");
        }
    }
    if let Err(e) = applied {
        error!("zone {zone}: {e}; none of the changes above were made");
        failed = true;
    }
    ZoneOutcome { failed, delegated }
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
