//! Records that material puts into DNS (TLSA for certificates, TXT for DKIM
//! selectors), planned like the update phase's static records and applied the
//! same way: each zone read once and changed with one change set. Prepare adds
//! the new material's records next to the old (`Op::Add`); cleanup keeps only
//! those of the material still in use (`Op::Set`).

use std::net::SocketAddr;

use super::zones::{OfDomain, apply_zone, for_each_zone};
use crate::config::model::Domain;
use crate::dns::observe::served_by;
use crate::dns::provider::DnsProvider;
use crate::dns::record::{Name, Record};
use crate::plan::update::{Contribution, plan_contributions};
use crate::run::PhaseFailed;

/// What material wants at one domain section.
#[derive(Clone)]
pub struct DomainRecords {
    pub domain: Domain,
    pub contributions: Vec<Contribution>,
}

impl OfDomain for DomainRecords {
    fn domain(&self) -> &Domain {
        &self.domain
    }
}

/// Applies the contributions, one change set per zone, zones concurrently.
///
/// # Errors
/// [`PhaseFailed`] when a zone could not be read or changed (logged); other
/// zones are still changed.
pub async fn apply(work: Vec<DomainRecords>, dry_run: bool) -> Result<(), PhaseFailed> {
    let failed = for_each_zone(work, |zone_work| async move {
        apply_zone(zone_work, dry_run, |item: &DomainRecords, _, existing| {
            plan_contributions(&item.contributions, existing)
        })
        .await
    })
    .await;
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Asks every authoritative server of `domain`'s zone whether it serves all of
/// `records`: the section's configured `nameservers`, or else the NS set the
/// provider reports.
///
/// # Errors
/// The zone or its servers cannot be found; a server that cannot be asked
/// counts as not serving.
pub async fn served_everywhere(
    domain: &Domain,
    records: &[Record],
) -> Result<Vec<(SocketAddr, bool)>, String> {
    let provider = domain.provider.instance.as_ref();
    let zone = provider
        .find_zone(&domain.name)
        .await
        .map_err(|e| e.to_string())?;
    let servers = authoritative_servers(provider, &zone, &domain.nameservers).await?;
    let mut answers = Vec::with_capacity(servers.len());
    for server in servers {
        let served = served_by(server, records).await.unwrap_or(false);
        answers.push((server, served));
    }
    Ok(answers)
}

/// The configured `nameservers`, or the zone's NS set from the provider.
///
/// # Errors
/// A configured name does not resolve, or the provider cannot list the NS set.
pub async fn authoritative_servers(
    provider: &dyn DnsProvider,
    zone: &Name,
    nameservers: &[(String, u16)],
) -> Result<Vec<SocketAddr>, String> {
    if nameservers.is_empty() {
        return provider.nameservers(zone).await.map_err(|e| e.to_string());
    }
    let mut servers = Vec::new();
    for (host, port) in nameservers {
        let addrs = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("nameserver {host}: {e}"))?;
        servers.extend(addrs);
    }
    Ok(servers)
}
