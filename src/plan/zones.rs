//! One change set per zone: the static records of the update phase and the
//! material records (TLSA, DKIM) of every domain section in the zone, planned
//! against the zone's records as observed. Adds come before deletes; a record
//! one section adds is never deleted for another.
//!
//! Also decides when the new records of prepared material count as published:
//! once every zone change that adds them has succeeded ([`PublishMark`]), or at
//! once when they are all in their zones already ([`Note::Published`]).

use std::collections::{BTreeMap, BTreeSet};

use super::mtasts;
use super::records::{self, joined_ttl};
use super::update::{DomainPlan, PublicIps, plan_contributions, plan_domain};
use super::{Action, DomainLines, Input, Note, Plan, PublishMark, Section, Step, ZoneChange};
use crate::config::model::Domain;
use crate::config::records::RecordKind;
use crate::dns::provider::ChangeSet;
use crate::dns::record::Name;

/// What the zone changes of this round publish of one section.
#[derive(Default)]
struct Pending {
    /// Zones whose change adds some of its records.
    zones: Vec<(usize, Name)>,
    joined_ttl: u32,
    domains: Vec<String>,
}

/// True when `domain` has static record keys (the update phase's).
pub(crate) fn has_static(domain: &Domain) -> bool {
    domain.rules.iter().any(|r| r.rule.kind.is_static())
}

/// Whether this round plans `domain`'s static records: in the first round of
/// an update; in every round for domains whose records follow something this
/// run changes (the MTA-STS policy file, the ACME account of `caa =
/// auto`), so that the next step of their order is taken in the same run.
pub(crate) fn updates_in_round(input: &Input<'_>, domain: &Domain) -> bool {
    let mail_policy = domain.mtasts.is_some();
    input.request.updates()
        && (has_static(domain) || mail_policy)
        && (input.first_round || mail_policy || domain.caa_accounturi)
}

/// Whether the update phase looks up the public IPv4 (`v4`) or IPv6 address
/// for `domain`.
pub(crate) fn needs_public_ip(domain: &Domain, v4: bool) -> bool {
    domain.rules.iter().any(|r| {
        if v4 {
            r.rule.kind.needs_public_ip4()
        } else {
            r.rule.kind.needs_public_ip6()
        }
    })
}

/// Plans every observed zone's change, and the publish marks.
pub(crate) fn plan(input: &Input<'_>, plan: &mut Plan) {
    let mut pending: BTreeMap<Section, Pending> = BTreeMap::new();
    let mut unreadable: BTreeSet<Name> = input.observed.zone_errors.keys().cloned().collect();
    let domains_by_name: BTreeMap<&Name, &Domain> =
        input.config.domains.iter().map(|d| (&d.name, d)).collect();
    for view in &input.observed.zones {
        let Ok(existing) = &view.records else {
            unreadable.extend(view.domains.iter().cloned());
            continue;
        };
        // A zone whose change failed in this run is left alone until the next.
        if input.failed.contains(&Section::Zone(view.zone.clone())) {
            unreadable.extend(view.domains.iter().cloned());
            continue;
        }
        let mut changes = ChangeSet::default();
        let mut domains = Vec::new();
        for name in &view.domains {
            let Some(&domain) = domains_by_name.get(name) else {
                continue;
            };
            let mut lines = DomainLines {
                name: name.clone(),
                lines: Vec::new(),
                errors: Vec::new(),
            };
            if updates_in_round(input, domain) {
                let mut planned = plan_domain(
                    domain,
                    &view.zone,
                    existing,
                    &public_ips(input, domain),
                    &|d: &Domain| caa_identities(input, d),
                );
                if let Some(config) = &domain.mtasts {
                    let on_disk = config
                        .file
                        .as_ref()
                        .and_then(|f| input.observed.mtasts.get(f).cloned())
                        .unwrap_or(Ok(None));
                    let out = mtasts::plan(domain, config, existing, &mut planned, &on_disk);
                    take(planned, &mut lines, &mut changes);
                    if let Some(txt) = out.txt {
                        take(
                            plan_contributions(&[txt], existing),
                            &mut lines,
                            &mut changes,
                        );
                    }
                    lines.errors.extend(out.errors);
                    let section = Section::Domain(name.clone());
                    plan.info
                        .extend(out.info.into_iter().map(|i| (section.clone(), i)));
                    // A policy write that failed in this run is not tried again.
                    if let Some((file, reason)) = out.file
                        && !input.failed.contains(&section)
                    {
                        plan.steps
                            .push(Step::now(section, Action::MtaStsPolicy(file), reason));
                    }
                } else {
                    take(planned, &mut lines, &mut changes);
                }
            }
            let material = records::for_domain(input, domain);
            if !material.contributions.is_empty() {
                take(
                    plan_contributions(&material.contributions, existing),
                    &mut lines,
                    &mut changes,
                );
            }
            lines.errors.extend(material.errors);
            plan.info.extend(material.info);
            for (section, wanted) in material.pending {
                let entry = pending.entry(section).or_default();
                entry.joined_ttl = entry.joined_ttl.max(joined_ttl(&wanted, existing));
                entry.domains.push(name.to_string());
                let present = wanted.iter().all(|r| existing.iter().any(|e| e.same_as(r)));
                let key = (view.provider, view.zone.clone());
                if !present && !entry.zones.contains(&key) {
                    entry.zones.push(key);
                }
            }
            if !lines.lines.is_empty() || !lines.errors.is_empty() {
                domains.push(lines);
            }
        }
        // Two sections whose scopes overlap must not delete what the other adds.
        let adds = changes.adds.clone();
        changes
            .deletes
            .retain(|d| !adds.iter().any(|a| a.same_as(d)));
        if changes.is_empty() && (domains.is_empty() || !input.first_round) {
            continue;
        }
        let reason = if changes.is_empty() {
            "no changes".to_string()
        } else {
            format!(
                "{} to add, {} to delete",
                changes.adds.len(),
                changes.deletes.len()
            )
        };
        plan.steps.push(Step::now(
            Section::Zone(view.zone.clone()),
            Action::ChangeZone(ZoneChange {
                provider: view.provider,
                zone: view.zone.clone(),
                changes,
                domains,
            }),
            reason,
        ));
    }
    for (section, entry) in pending {
        if section_domains(input, &section)
            .iter()
            .any(|d| unreadable.contains(d))
        {
            continue;
        }
        if entry.zones.is_empty() {
            if !is_published(input, &section, &entry.domains) {
                plan.steps.push(Step::now(
                    section,
                    Action::Note(Note::Published {
                        joined_ttl: entry.joined_ttl,
                        domains: entry.domains,
                    }),
                    "its records are in their zones",
                ));
            }
        } else {
            plan.marks.push(PublishMark {
                section,
                zones: entry.zones,
                joined_ttl: entry.joined_ttl,
                domains: entry.domains,
            });
        }
    }
}

/// Adds one domain's plan to its lines and the zone's change set.
fn take(planned: DomainPlan, lines: &mut DomainLines, changes: &mut ChangeSet) {
    lines.lines.extend(planned.lines.iter().cloned());
    lines.errors.extend(planned.errors);
    changes.adds.extend(planned.changes.adds);
    changes.deletes.extend(planned.changes.deletes);
}

/// The domain sections whose records a section's material goes to.
fn section_domains(input: &Input<'_>, section: &Section) -> Vec<Name> {
    match section {
        Section::Cert(name) => input
            .config
            .domains
            .iter()
            .filter(|d| {
                super::tlsa::has_tlsa(d)
                    && d.certs
                        .as_ref()
                        .is_some_and(|c| c.names.iter().any(|n| n == name))
            })
            .map(|d| d.name.clone())
            .collect(),
        Section::Dkim(name) => input
            .config
            .dkims
            .iter()
            .find(|d| &d.name == name)
            .map(|d| d.domains.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Whether the state already counts `section`'s prepared records as
/// published at `domains`.
fn is_published(input: &Input<'_>, section: &Section, domains: &[String]) -> bool {
    match section {
        Section::Cert(name) => input
            .state
            .certs
            .get(name)
            .and_then(|c| c.prepared.as_ref())
            .is_some_and(|p| p.tlsa_published_at.is_some()),
        Section::Dkim(name) => input
            .state
            .dkim
            .get(name)
            .and_then(|d| d.prepared.as_ref())
            .is_some_and(|p| {
                p.published.is_some() && domains.iter().all(|d| p.domains.contains(d))
            }),
        _ => true,
    }
}

/// The public addresses the observation found for `domain`'s lookup URLs.
fn public_ips(input: &Input<'_>, domain: &Domain) -> PublicIps {
    let missing = |url: &str| format!("{url} was not asked");
    PublicIps {
        v4: needs_public_ip(domain, true).then(|| {
            input
                .observed
                .ip4
                .get(&domain.ip4_lookup)
                .cloned()
                .unwrap_or_else(|| Err(missing(&domain.ip4_lookup)))
        }),
        v6: needs_public_ip(domain, false).then(|| {
            input
                .observed
                .ip6
                .get(&domain.ip6_lookup)
                .cloned()
                .unwrap_or_else(|| Err(missing(&domain.ip6_lookup)))
        }),
    }
}

fn caa_identities(input: &Input<'_>, domain: &Domain) -> Result<Vec<String>, String> {
    input
        .observed
        .caa
        .get(&domain.name)
        .cloned()
        .unwrap_or_else(|| Err(format!("no certificate covers {}", domain.name)))
}

/// True when `domain` has a `caa = auto` entry.
pub(crate) fn wants_caa_auto(domain: &Domain) -> bool {
    use crate::config::records::CaaEntry;
    domain.rules.iter().any(
        |r| matches!(&r.rule.kind, RecordKind::Caa(entries) if entries.contains(&CaaEntry::Auto)),
    )
}
