//! DANE TLSA records through the phases (SPEC §3.2, §4, §7):
//!
//! - **prepare** publishes, for every domain with `tlsa` keys, the records of
//!   every certificate in its `cert` list, current and prepared, next to what
//!   is there; a re-run publishes the same records again (nothing to add).
//! - **rollover** deploys a certificate only when every authoritative server of
//!   each of its domains serves its TLSA records and twice the longer of their
//!   TTL and the zone's negative-caching TTL has passed since they were
//!   published (`--force` overrides), so a DANE client, even behind a caching
//!   resolver, never meets a certificate its DNS does not vouch for.
//! - **cleanup** lets set keys delete the TLSA records in their scope that match
//!   none of the certificates still in use (current and still prepared), once
//!   twice their TTL has passed since the last rollover.
//!
//! The records of all domains go out through `phases::records`: each zone read
//! once and changed with one change set.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use super::records::{self, DomainRecords, served_everywhere};
use crate::config::cert::CertSection;
use crate::config::model::{Config, Domain};
use crate::config::records::Op;
use crate::dns::observe::soa_negative_ttl;
use crate::dns::record::{Name, Record, RecordType};
use crate::material::cert::{CertInfo, parse_chain};
use crate::plan::scope::{Filter, Names, Scope};
use crate::plan::tlsa::{self as plan, Mode, Role, TlsaCert};
use crate::run::PhaseFailed;
use crate::state::{CertMaterial, State, Store};

/// The chain file read from a certificate's directory in the state directory.
const CHAIN_FILE: &str = "fullchain.pem";

/// A certificate of a domain's `cert` list, read from the state directory.
pub struct LoadedCert {
    pub section: String,
    pub role: Role,
    pub info: CertInfo,
}

impl LoadedCert {
    fn as_tlsa(&self) -> TlsaCert<'_> {
        TlsaCert {
            section: &self.section,
            role: self.role,
            info: &self.info,
        }
    }
}

/// Reads and parses the chain of `material`.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn read_chain(material: &CertMaterial) -> Result<CertInfo, String> {
    let path = material.dir.join(CHAIN_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_chain(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The certificates of `domain`'s `cert` list, current and prepared, and the
/// sections that have neither yet.
///
/// # Errors
/// When a certificate in the state cannot be read.
pub fn load_certs(
    domain: &Domain,
    state: &State,
) -> Result<(Vec<LoadedCert>, Vec<String>), String> {
    let mut loaded = Vec::new();
    let mut missing = Vec::new();
    for section in domain.certs.iter().flat_map(|c| c.names.iter()) {
        let entry = state.certs.get(section);
        let materials = [
            (Role::Current, entry.and_then(|e| e.current.as_ref())),
            (Role::Prepared, entry.and_then(|e| e.prepared.as_ref())),
        ];
        if materials.iter().all(|(_, m)| m.is_none()) {
            missing.push(section.clone());
        }
        for (role, material) in materials {
            if let Some(material) = material {
                let info = read_chain(material)
                    .map_err(|e| format!("[cert:{section}] ({}): {e}", role.as_str()))?;
                loaded.push(LoadedCert {
                    section: section.clone(),
                    role,
                    info,
                });
            }
        }
    }
    Ok((loaded, missing))
}

/// Prepare (`Mode::Publish`) or cleanup (`Mode::Prune`) of the TLSA records of
/// every domain with `tlsa` keys. After a successful publish, each prepared
/// certificate whose records went out is stamped with the time (the start of
/// rollover's wait); cleanup keeps the records of a certificate replaced less
/// than two TTLs ago and says until when.
///
/// # Errors
/// [`PhaseFailed`] when a domain's records could not be planned or a zone
/// could not be changed (each reason is logged).
pub async fn sync(
    config: &Config,
    store: &Store,
    mode: Mode,
    dry_run: bool,
) -> Result<(), PhaseFailed> {
    let state = store.snapshot().await;
    let now = Utc::now();
    let mut failed = false;
    let mut work = Vec::new();
    let mut published: Vec<String> = Vec::new();
    for domain in config.domains.iter().filter(|d| plan::has_tlsa(d)) {
        let (certs, missing) = match load_certs(domain, &state) {
            Ok(loaded) => loaded,
            Err(message) => {
                error!(
                    "[domain:{}] {message}; its TLSA records are left as they are",
                    domain.name
                );
                failed = true;
                continue;
            }
        };
        if mode == Mode::Prune {
            // Without all its certificates a set key would delete records that
            // a certificate in use may still need.
            if !missing.is_empty() {
                warn!(
                    "[domain:{}] [cert:{}] has no certificate yet; TLSA records are not pruned until it has",
                    domain.name,
                    missing.join("], [cert:")
                );
                continue;
            }
            if let Some(until) = prune_wait(domain, &state, now) {
                info!(
                    "[domain:{}] keeps the TLSA records of the replaced certificate until {} (twice the TTL of {} s after rollover); a later --cleanup deletes them",
                    domain.name,
                    until.format("%Y-%m-%d %H:%M:%S UTC"),
                    domain.ttl
                );
                continue;
            }
        }
        let refs: Vec<TlsaCert<'_>> = certs.iter().map(LoadedCert::as_tlsa).collect();
        let (contributions, errors) = plan::contributions(domain, &refs, mode);
        if errors.is_empty() {
            published.extend(
                certs
                    .iter()
                    .filter(|c| c.role == Role::Prepared)
                    .map(|c| c.section.clone()),
            );
        }
        for message in errors {
            error!("{message}");
            failed = true;
        }
        if !contributions.is_empty() {
            work.push(DomainRecords {
                domain: domain.clone(),
                contributions,
            });
        }
    }
    if records::apply(work, dry_run).await.is_err() {
        failed = true;
    }
    if mode == Mode::Publish && !failed && !dry_run {
        let stamped = store
            .update(|s| {
                for section in &published {
                    if let Some(prepared) =
                        s.certs.get_mut(section).and_then(|c| c.prepared.as_mut())
                        && prepared.tlsa_published_at.is_none()
                    {
                        prepared.tlsa_published_at = Some(now);
                    }
                }
            })
            .await;
        if let Err(e) = stamped {
            error!("{e}");
            failed = true;
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Until when cleanup keeps `domain`'s TLSA records: two TTLs after the last
/// rollover of one of its certificates, if that is still to come.
fn prune_wait(domain: &Domain, state: &State, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    domain
        .certs
        .iter()
        .flat_map(|c| c.names.iter())
        .filter_map(|section| state.certs.get(section)?.current.as_ref()?.deployed_at)
        .map(|deployed| plan::cleanup_safe_at(deployed, domain.ttl))
        .filter(|until| *until > now)
        .max()
}

/// Why `cert`'s prepared certificate may not be deployed yet (SPEC §7): its
/// TLSA records were never published, some authoritative server does not
/// serve them, or twice the longer of their TTL and the zone's
/// negative-caching TTL has not passed since they were published. `Ok(())`
/// when none of this holds for any domain of the certificate.
///
/// # Errors
/// The refusal, naming the servers, the records, or when it will be safe.
pub async fn rollover_check(
    config: &Config,
    cert: &CertSection,
    prepared: &CertMaterial,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let domains: Vec<&Domain> = config
        .domains
        .iter()
        .filter(|d| plan::has_tlsa(d))
        .filter(|d| {
            d.certs
                .as_ref()
                .is_some_and(|c| c.names.contains(&cert.name))
        })
        .collect();
    if domains.is_empty() {
        return Ok(());
    }
    let info = read_chain(prepared)?;
    let new = TlsaCert {
        section: &cert.name,
        role: Role::Prepared,
        info: &info,
    };
    let Some(published) = prepared.tlsa_published_at else {
        return Err("its TLSA records have not been published yet (run --prepare)".into());
    };
    let mut problems = Vec::new();
    let mut wait: Option<(DateTime<Utc>, u32, u32)> = None;
    for domain in domains {
        let wanted = plan::wanted_for(domain, new)?;
        if wanted.is_empty() {
            continue;
        }
        let answers = match served_everywhere(domain, &wanted).await {
            Ok(answers) if answers.is_empty() => {
                problems.push(format!(
                    "no authoritative server of {} is known",
                    domain.name
                ));
                continue;
            }
            Ok(answers) => answers,
            Err(e) => {
                problems.push(format!(
                    "cannot ask the authoritative servers of {}: {e}",
                    domain.name
                ));
                continue;
            }
        };
        let missing: Vec<SocketAddr> = answers
            .iter()
            .filter(|(_, served)| !served)
            .map(|(server, _)| *server)
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} do{} not serve all of: {}",
                join(&missing),
                if missing.len() == 1 { "es" } else { "" },
                wanted
                    .iter()
                    .map(|r| format!("{} TLSA {}", r.name, r.data))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            continue;
        }
        let ttl = wanted.iter().map(|r| r.ttl).max().unwrap_or(domain.ttl);
        match negative_ttl(domain, answers[0].0).await {
            Ok(negative) => {
                let safe = plan::rollover_safe_at(published, ttl, negative);
                if safe > now && wait.is_none_or(|(w, _, _)| safe > w) {
                    wait = Some((safe, ttl, negative));
                }
            }
            Err(e) => problems.push(format!(
                "cannot read the negative-caching TTL of the zone of {}: {e}",
                domain.name
            )),
        }
    }
    if let Some((safe, ttl, negative)) = wait {
        problems.push(format!(
            "resolvers may still hold answers without them: safe from {} (twice the longer of the TTL {ttl} s and the negative-caching TTL {negative} s after they were published at {})",
            safe.format("%Y-%m-%d %H:%M:%S UTC"),
            published.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The negative-caching TTL of `domain`'s zone as `server` serves its SOA.
async fn negative_ttl(domain: &Domain, server: SocketAddr) -> Result<u32, String> {
    let zone = domain
        .provider
        .instance
        .find_zone(&domain.name)
        .await
        .map_err(|e| e.to_string())?;
    soa_negative_ttl(server, &zone)
        .await
        .map(|ttls| ttls.negative_ttl())
        .map_err(|e| e.to_string())
}

/// `--status` lines for the TLSA records of every domain with `tlsa` keys: per
/// port the records the provider holds and which certificate each matches,
/// and the wanted records not published yet.
pub async fn status_lines(config: &Config, state: &State) -> Vec<String> {
    let mut lines = Vec::new();
    for domain in config.domains.iter().filter(|d| plan::has_tlsa(d)) {
        lines.push(format!("\nTLSA records of {}", domain.name));
        let certs = match load_certs(domain, state) {
            Ok((certs, _)) => certs,
            Err(message) => {
                lines.push(format!("  {message}"));
                Vec::new()
            }
        };
        let refs: Vec<TlsaCert<'_>> = certs.iter().map(LoadedCert::as_tlsa).collect();
        let published = match published(domain).await {
            Ok(records) => records,
            Err(message) => {
                lines.push(format!("  cannot read the zone: {message}"));
                continue;
            }
        };
        let (wanted, _) = plan::contributions(domain, &refs, Mode::Publish);
        let mut missing: Vec<&Record> = Vec::new();
        for record in wanted
            .iter()
            .filter(|c| c.op != Op::Remove)
            .flat_map(|c| c.records.iter())
        {
            if !published
                .iter()
                .chain(missing.iter().copied())
                .any(|p| p.same_as(record))
            {
                missing.push(record);
            }
        }
        let mut owners: Vec<&Name> = published
            .iter()
            .map(|r| &r.name)
            .chain(missing.iter().map(|r| &r.name))
            .collect();
        owners.sort();
        owners.dedup();
        if owners.is_empty() {
            lines.push("  none published".into());
        }
        for owner in owners {
            let port = owner
                .labels_below(&domain.name)
                .map(|l| l.join("."))
                .unwrap_or_else(|| owner.to_string());
            for record in published.iter().filter(|r| &r.name == owner) {
                let matches = plan::matching_certs(record, &refs);
                let by = if matches.is_empty() {
                    "none".to_string()
                } else {
                    matches
                        .iter()
                        .map(|c| format!("[cert:{}] {}", c.section, c.role.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                lines.push(format!("  {port}: {} -> {by}", record.data));
            }
            for record in missing.iter().filter(|r| &r.name == owner) {
                let by = plan::matching_certs(record, &refs)
                    .iter()
                    .map(|c| format!("[cert:{}] {}", c.section, c.role.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                lines.push(format!(
                    "  {port}: {} -> {by}, NOT PUBLISHED (the next prepare publishes it)",
                    record.data
                ));
            }
        }
    }
    lines
}

/// The TLSA records at `_PORT._PROTO.NAME` names of `domain`, as its provider
/// holds them.
async fn published(domain: &Domain) -> Result<Vec<Record>, String> {
    let provider = domain.provider.instance.as_ref();
    let zone = provider
        .find_zone(&domain.name)
        .await
        .map_err(|e| e.to_string())?;
    let scope = Scope {
        names: Names::ServiceBelow(domain.name.clone()),
        rtype: RecordType::Tlsa,
        filter: Filter::Any,
    };
    let mut records: Vec<Record> = provider
        .read_zone(&zone)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| scope.contains(r))
        .collect();
    records.sort_by(|a, b| (&a.name, &a.data).cmp(&(&b.name, &b.data)));
    Ok(records)
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
