//! Work grouped by zone: one zone lookup per zone (not per name), zones
//! processed concurrently, and names that the zone's contents show to lie below
//! a delegation handed back for a second round with their own lookup.

use std::future::Future;
use std::sync::Arc;

use log::{error, info};
use tokio::task::JoinSet;

use crate::config::model::Domain;
use crate::dns::provider::{ChangeSet, DnsProvider, ProviderError};
use crate::dns::record::{Name, Record, RecordType};
use crate::plan::update::DomainPlan;

/// Anything done for one domain section.
pub trait OfDomain {
    fn domain(&self) -> &Domain;
}

impl OfDomain for Domain {
    fn domain(&self) -> &Domain {
        self
    }
}

/// The items of one zone at one provider.
pub struct ZoneWork<T> {
    pub provider: Arc<dyn DnsProvider>,
    pub provider_id: usize,
    pub zone: Name,
    pub items: Vec<T>,
}

/// What became of one zone's work.
pub struct ZoneOutcome<T> {
    pub failed: bool,
    /// Items that lie below a delegation in this zone, so in another zone.
    pub delegated: Vec<T>,
}

/// Runs `process` once per zone, concurrently; returns true when anything
/// failed. Items handed back as delegated get one more round.
pub async fn for_each_zone<T, F, Fut>(items: Vec<T>, process: F) -> bool
where
    T: OfDomain + Send + 'static,
    F: Fn(ZoneWork<T>) -> Fut,
    Fut: Future<Output = ZoneOutcome<T>> + Send + 'static,
{
    let mut failed = false;
    let mut remaining = items;
    let mut round = 0;
    while !remaining.is_empty() {
        round += 1;
        let mut tasks = JoinSet::new();
        for work in assign_zones(remaining, &mut failed).await {
            tasks.spawn(process(work));
        }
        remaining = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(outcome) => {
                    failed |= outcome.failed;
                    if round == 1 {
                        remaining.extend(outcome.delegated);
                    } else {
                        for item in outcome.delegated {
                            error!(
                                "[domain:{}]: lies below a delegation, but its zone lookup names the parent zone; its records are left as they are",
                                item.domain().name
                            );
                            failed = true;
                        }
                    }
                }
                Err(_) => failed = true,
            }
        }
    }
    failed
}

/// Reads the zone once (at least the RRsets `wanted`: providers that cannot
/// list a zone read just those), plans every item against it with `plan`, and
/// applies all plans as one change set (adds before deletes); logs each item's
/// lines. A dry run prints the change set instead. When a provider without
/// transactions refused some changes, each is logged with the provider's
/// answer; the others were made, and the next run retries what is missing.
pub async fn apply_zone<T, P>(
    work: ZoneWork<T>,
    wanted: &[(Name, RecordType)],
    dry_run: bool,
    plan: P,
) -> ZoneOutcome<T>
where
    T: OfDomain,
    P: Fn(&T, &Name, &[Record]) -> DomainPlan,
{
    let ZoneWork {
        provider,
        zone,
        items,
        ..
    } = work;
    let existing = match provider.read_rrsets(&zone, wanted).await {
        Ok(records) => records,
        Err(e) => {
            error!("zone {zone}: {e}; nothing in this zone was changed");
            return ZoneOutcome {
                failed: true,
                delegated: Vec::new(),
            };
        }
    };
    let (delegated, items) = split_delegated(&zone, &existing, items);
    let mut failed = false;
    let mut changes = ChangeSet::default();
    let plans: Vec<(&T, DomainPlan)> = items
        .iter()
        .map(|item| (item, plan(item, &zone, &existing)))
        .collect();
    for (_, plan) in &plans {
        changes.adds.extend(plan.changes.adds.iter().cloned());
        changes.deletes.extend(plan.changes.deletes.iter().cloned());
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
    if applied.is_ok() && !changes.is_empty() && !dry_run {
        crate::crashpoint::reached("zone:applied");
    }
    for (item, plan) in &plans {
        let name = &item.domain().name;
        info!("Create resource records for section \"{name}\"");
        for line in &plan.lines {
            info!("{line}");
        }
        for message in &plan.errors {
            error!("[domain:{name}] {message}");
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
    match applied {
        Ok(()) => {}
        Err(ProviderError::Partial {
            server,
            applied,
            refused,
            ..
        }) => {
            for refusal in &refused {
                error!(
                    "zone {zone}: {server} did not make the change \"{}\": {}",
                    refusal.change, refusal.answer
                );
            }
            error!(
                "zone {zone}: {} change(s) not made, {applied} made; the next run retries what is missing",
                refused.len()
            );
            failed = true;
        }
        Err(e) => {
            error!("zone {zone}: {e}; none of the changes above were made");
            failed = true;
        }
    }
    ZoneOutcome { failed, delegated }
}

/// Splits `items` into those below a delegation (an NS record below the apex
/// in `existing`) and the rest.
fn split_delegated<T: OfDomain>(
    zone: &Name,
    existing: &[Record],
    items: Vec<T>,
) -> (Vec<T>, Vec<T>) {
    let cuts: Vec<&Name> = existing
        .iter()
        .filter(|r| r.record_type() == RecordType::Ns && &r.name != zone)
        .map(|r| &r.name)
        .collect();
    items.into_iter().partition(|item| {
        cuts.iter()
            .any(|cut| item.domain().name.is_at_or_below(cut))
    })
}

/// Groups items by zone with one zone lookup per zone: a name at or below a
/// zone already found (at the same provider) is taken to be in it.
async fn assign_zones<T: OfDomain>(mut items: Vec<T>, failed: &mut bool) -> Vec<ZoneWork<T>> {
    // Shorter names first, so a zone apex is looked up before the names below it.
    items.sort_by_key(|item| {
        let name = &item.domain().name;
        (name.as_str().split('.').count(), name.clone())
    });
    let mut zones: Vec<ZoneWork<T>> = Vec::new();
    for item in items {
        let domain = item.domain();
        let id = domain.provider.id;
        let known = zones
            .iter_mut()
            .filter(|w| w.provider_id == id && domain.name.is_at_or_below(&w.zone))
            .max_by_key(|w| w.zone.as_str().len());
        if let Some(work) = known {
            work.items.push(item);
            continue;
        }
        match domain.provider.instance.find_zone(&domain.name).await {
            Ok(zone) => match zones
                .iter_mut()
                .find(|w| w.provider_id == id && w.zone == zone)
            {
                Some(work) => work.items.push(item),
                None => zones.push(ZoneWork {
                    provider: domain.provider.instance.clone(),
                    provider_id: id,
                    zone,
                    items: vec![item],
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
    for work in &mut zones {
        work.items
            .sort_by(|a, b| a.domain().name.cmp(&b.domain().name));
    }
    zones
}
