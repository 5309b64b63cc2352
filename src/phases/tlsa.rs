//! DANE TLSA records through the phases (SPEC §3.2, §4, §7):
//!
//! - **prepare** publishes, for every domain with `tlsa` keys, the records of
//!   every certificate in its `cert` list, current and prepared, next to what
//!   is there; a re-run publishes the same records again (nothing to add).
//! - **rollover** deploys a certificate only when every authoritative server of
//!   each of its domains serves its TLSA records (`--force` overrides), so a
//!   DANE client never meets a certificate its DNS does not vouch for.
//! - **cleanup** lets set keys delete the TLSA records in their scope that match
//!   none of the certificates still in use (current and still prepared).
//!
//! The records of all domains go out through `phases::records`: each zone read
//! once and changed with one change set.

use std::net::SocketAddr;

use log::{error, warn};

use super::records::{self, DomainRecords, served_everywhere};
use crate::config::cert::CertSection;
use crate::config::model::{Config, Domain};
use crate::config::records::Op;
use crate::dns::record::{Name, Record, RecordType};
use crate::material::cert::{CertInfo, parse_chain};
use crate::plan::scope::{Filter, Names, Scope};
use crate::plan::tlsa::{self as plan, Mode, Role, TlsaCert};
use crate::run::PhaseFailed;
use crate::state::{CertMaterial, State};

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
/// every domain with `tlsa` keys.
///
/// # Errors
/// [`PhaseFailed`] when a domain's records could not be planned or a zone
/// could not be changed (each reason is logged).
pub async fn sync(
    config: &Config,
    state: &State,
    mode: Mode,
    dry_run: bool,
) -> Result<(), PhaseFailed> {
    let mut failed = false;
    let mut work = Vec::new();
    for domain in config.domains.iter().filter(|d| plan::has_tlsa(d)) {
        let (certs, missing) = match load_certs(domain, state) {
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
        // Without all its certificates a set key would delete records that a
        // certificate in use may still need.
        if mode == Mode::Prune && !missing.is_empty() {
            warn!(
                "[domain:{}] [cert:{}] has no certificate yet; TLSA records are not pruned until it has",
                domain.name,
                missing.join("], [cert:")
            );
            continue;
        }
        let refs: Vec<TlsaCert<'_>> = certs.iter().map(LoadedCert::as_tlsa).collect();
        let (contributions, errors) = plan::contributions(domain, &refs, mode);
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
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Why `cert`'s prepared certificate may not be deployed yet: the TLSA records
/// it needs that some authoritative server does not serve. `Ok(())` when every
/// server of every domain of the certificate serves them all.
///
/// # Errors
/// The refusal, naming the servers and records.
pub async fn check_served(
    config: &Config,
    cert: &CertSection,
    prepared: &CertMaterial,
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
    let mut problems = Vec::new();
    for domain in domains {
        let wanted = plan::wanted_for(domain, new)?;
        if wanted.is_empty() {
            continue;
        }
        match served_everywhere(domain, &wanted).await {
            Ok(answers) => {
                let missing: Vec<SocketAddr> = answers
                    .iter()
                    .filter(|(_, served)| !served)
                    .map(|(server, _)| *server)
                    .collect();
                if answers.is_empty() {
                    problems.push(format!(
                        "no authoritative server of {} is known",
                        domain.name
                    ));
                } else if !missing.is_empty() {
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
                }
            }
            Err(e) => problems.push(format!(
                "cannot ask the authoritative servers of {}: {e}",
                domain.name
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
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
