//! Records that material puts into DNS: TLSA records of the certificates in a
//! domain's `cert` list, TXT records of its DKIM selectors. They are planned
//! like the static records (contributions against the zone's records) and go
//! out in the same change set per zone.
//!
//! Prepare publishes the new material's records next to the old ones
//! (`Op::Add`); cleanup lets set keys prune what no material in use needs
//! (`Op::Set`), and removes the record of a drained DKIM selector.

use chrono::{DateTime, Utc};

use super::dkim::{prune, publish, record};
use super::observed::ServedAnswers;
use super::timing::{WHEN, cleanup_safe_at};
use super::tlsa::{self as tlsa, Mode, Role, TlsaCert, has_tlsa, wanted_for};
use super::update::Contribution;
use super::{Input, Request, Section};
use crate::config::model::Domain;
use crate::dns::record::{Name, Record};
use crate::material::cert::CertInfo;
use crate::state::{CertMaterial, Served, State};

/// What material wants at one domain section.
#[derive(Debug, Default)]
pub struct DomainMaterial {
    pub contributions: Vec<Contribution>,
    /// Keys that could not be planned (their records are left as they are).
    pub errors: Vec<String>,
    /// What is kept and until when.
    pub info: Vec<(Section, String)>,
    /// The records of prepared material at this domain, per section: once
    /// they are in the zone, the section's records count as published.
    pub pending: Vec<(Section, Vec<Record>)>,
}

impl DomainMaterial {
    pub fn is_empty(&self) -> bool {
        self.contributions.is_empty() && self.pending.is_empty()
    }
}

/// True when `domain` carries material records: `tlsa` keys, or DKIM sections
/// that list it.
pub fn has_material(input: &Input<'_>, domain: &Domain) -> bool {
    has_tlsa(domain)
        || input
            .config
            .dkims
            .iter()
            .any(|d| d.domains.contains(&domain.name))
}

/// The material records of `domain` for this round's request.
pub fn for_domain(input: &Input<'_>, domain: &Domain) -> DomainMaterial {
    let mut out = DomainMaterial::default();
    if !matches!(
        input.request,
        Request::Prepare | Request::Cleanup | Request::Auto
    ) {
        return out;
    }
    tlsa_records(input, domain, &mut out);
    dkim_records(input, domain, &mut out);
    out
}

/// A certificate of a domain's `cert` list.
struct Loaded<'a> {
    section: &'a str,
    role: Role,
    info: &'a CertInfo,
}

fn tlsa_records(input: &Input<'_>, domain: &Domain, out: &mut DomainMaterial) {
    if !has_tlsa(domain) {
        return;
    }
    let mut loaded: Vec<Loaded<'_>> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    for section in domain.certs.iter().flat_map(|c| c.names.iter()) {
        let entry = input.state.certs.get(section);
        let materials = [
            (Role::Current, entry.and_then(|e| e.current.as_ref())),
            (Role::Prepared, entry.and_then(|e| e.prepared.as_ref())),
        ];
        if materials.iter().all(|(_, m)| m.is_none()) {
            missing.push(section);
        }
        if let Some(next) = staged_next_key(input.config, input.state, section)
            && let Some(Ok(info)) = input.observed.certs.get(&next.dir)
        {
            loaded.push(Loaded {
                section,
                role: Role::Next,
                info,
            });
        }
        for (role, material) in materials {
            let Some(material) = material else { continue };
            match certificate(input, material) {
                Ok(info) => loaded.push(Loaded {
                    section,
                    role,
                    info,
                }),
                Err(e) => {
                    out.errors.push(format!(
                        "[cert:{section}] ({}): {e}; the TLSA records of {} are left as they are",
                        role.as_str(),
                        domain.name
                    ));
                    return;
                }
            }
        }
    }
    let prune_due = missing.is_empty() && prune_wait(domain, input.state, input.now).is_none();
    let mode = match input.request {
        Request::Prepare => Mode::Publish,
        Request::Auto if prune_due => Mode::Prune,
        Request::Auto => Mode::Publish,
        Request::Cleanup if !missing.is_empty() => {
            out.info.push((
                Section::Domain(domain.name.clone()),
                format!(
                    "[cert:{}] has no certificate yet; TLSA records are not pruned until it has",
                    missing.join("], [cert:")
                ),
            ));
            return;
        }
        Request::Cleanup => match prune_wait(domain, input.state, input.now) {
            Some(until) => {
                out.info.push((
                    Section::Domain(domain.name.clone()),
                    format!(
                        "keeps the TLSA records of the replaced certificate until {} (twice the TTL of {} s after rollover); a later --cleanup deletes them",
                        until.format(WHEN),
                        domain.ttl
                    ),
                ));
                return;
            }
            None => Mode::Prune,
        },
        Request::Update | Request::Rollover => return,
    };
    let refs: Vec<TlsaCert<'_>> = loaded
        .iter()
        .map(|c| TlsaCert {
            section: c.section,
            role: c.role,
            info: c.info,
        })
        .collect();
    let (contributions, errors) = tlsa::contributions(domain, &refs, mode);
    out.contributions.extend(contributions);
    out.errors.extend(errors);
    for cert in refs.iter().filter(|c| c.role == Role::Prepared) {
        if let Ok(records) = wanted_for(domain, *cert)
            && !records.is_empty()
        {
            out.pending
                .push((Section::Cert(cert.section.to_string()), records));
        }
    }
}

/// The next key of `[cert:section]`, when it is `keystrategy = staged`.
pub fn staged_next_key<'a>(
    config: &crate::config::model::Config,
    state: &'a State,
    section: &str,
) -> Option<&'a crate::state::NextKey> {
    config
        .certs
        .iter()
        .find(|c| c.name == section)
        .filter(|c| c.key_strategy == crate::config::cert::KeyStrategy::Staged)?;
    state.certs.get(section)?.next_key.as_ref()
}

/// The parsed certificate of `material`, as observed.
pub fn certificate<'a>(
    input: &'a Input<'_>,
    material: &CertMaterial,
) -> Result<&'a CertInfo, String> {
    match input.observed.certs.get(&material.dir) {
        Some(Ok(info)) => Ok(info),
        Some(Err(e)) => Err(e.clone()),
        None => Err(format!("{} was not read", material.dir.display())),
    }
}

/// Until when cleanup keeps `domain`'s TLSA records: two TTLs after the last
/// rollover of one of its certificates, if that is still to come.
pub fn prune_wait(domain: &Domain, state: &State, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    domain
        .certs
        .iter()
        .flat_map(|c| c.names.iter())
        .filter_map(|section| state.certs.get(section)?.current.as_ref()?.deployed_at)
        .map(|deployed| cleanup_safe_at(deployed, domain.ttl))
        .filter(|until| *until > now)
        .max()
}

fn dkim_records(input: &Input<'_>, domain: &Domain, out: &mut DomainMaterial) {
    for dkim in input
        .config
        .dkims
        .iter()
        .filter(|d| d.domains.contains(&domain.name))
    {
        let section = Section::Dkim(dkim.name.clone());
        let entry = input
            .state
            .dkim
            .get(&dkim.name)
            .cloned()
            .unwrap_or_default();
        let mut prunes = Vec::new();
        if matches!(input.request, Request::Cleanup | Request::Auto) {
            for old in &entry.retired {
                if super::dkim::may_go(input, dkim, old).is_err() {
                    continue;
                }
                match prune(&old.selector, &domain.name) {
                    Ok(c) => prunes.push(c),
                    Err(e) => out.errors.push(format!("[dkim:{}] {e}", dkim.name)),
                }
            }
        }
        // Cleanup writes the keys in use only next to what it deletes.
        let publish_keys = input.request != Request::Cleanup || !prunes.is_empty();
        // A prepared key whose file is not (or not rightly) there is made
        // again before its record goes out.
        let prepared = entry.prepared.iter().filter(|_| {
            !input.observed.dkim_key_missing.contains(&dkim.name)
                && !input.observed.dkim_key_wrong.contains_key(&dkim.name)
        });
        if publish_keys {
            for key in entry.current.iter().chain(prepared.clone()) {
                match publish(key, &domain.name, domain.ttl) {
                    Ok(c) => out.contributions.push(c),
                    Err(e) => out.errors.push(format!("[dkim:{}] {e}", dkim.name)),
                }
            }
        }
        out.contributions.extend(prunes);
        if let Some(prepared) = prepared.clone().next()
            && input.request != Request::Cleanup
            && let Ok(r) = record(prepared, &domain.name, domain.ttl)
        {
            out.pending.push((section, vec![r]));
        }
    }
}

/// The first-served fact, when every server serves the records now.
pub fn served_now(answers: &ServedAnswers, now: DateTime<Utc>) -> Option<Served> {
    if !answers.all_served() {
        return None;
    }
    Some(Served {
        at: now,
        ttl: answers.max_ttl(),
        negative_ttl: *answers.negative_ttl.as_ref().ok()?,
        servers: u32::try_from(answers.servers.len()).unwrap_or(u32::MAX),
    })
}

/// The longest TTL of the RRsets at the owners and types of `records` in
/// `existing` (what resolvers may hold of the RRsets the records join).
pub fn joined_ttl(records: &[Record], existing: &[Record]) -> u32 {
    existing
        .iter()
        .filter(|e| {
            records
                .iter()
                .any(|r| r.name == e.name && r.record_type() == e.record_type())
        })
        .map(|e| e.ttl)
        .max()
        .unwrap_or(0)
}

/// A section's records to ask the authoritative servers about, per domain
/// section.
#[derive(Clone, Debug)]
pub struct Awaited {
    pub section: Section,
    pub domains: Vec<(Name, Vec<Record>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::RData;

    fn rec(name: &str, ttl: u32, txt: &str) -> Record {
        Record::new(Name::parse(name).unwrap(), ttl, RData::Txt(txt.into()))
    }

    #[test]
    fn the_joined_ttl_is_the_longest_at_the_same_rrset() {
        let new = [rec("s._domainkey.a.test", 300, "new")];
        let existing = [
            rec("s._domainkey.a.test", 3600, "old"),
            rec("other.a.test", 86400, "x"),
        ];
        assert_eq!(joined_ttl(&new, &existing), 3600);
        assert_eq!(joined_ttl(&new, &existing[1..]), 0);
    }

    #[test]
    fn served_needs_every_server_and_the_negative_ttl() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let addr = |i: u8| format!("127.0.0.{i}:53").parse().unwrap();
        let mut answers = ServedAnswers {
            servers: vec![(addr(1), Ok(Some(300))), (addr(2), Ok(Some(600)))],
            negative_ttl: Ok(60),
            unknown: Vec::new(),
            dnssec: Default::default(),
            records: Vec::new(),
        };
        let served = served_now(&answers, now).unwrap();
        assert_eq!(
            (served.ttl, served.negative_ttl, served.servers),
            (600, 60, 2)
        );
        answers.negative_ttl = Err("no SOA".into());
        assert!(served_now(&answers, now).is_none());
        answers.negative_ttl = Ok(60);
        answers.servers[1].1 = Ok(None);
        assert!(served_now(&answers, now).is_none());
        answers.servers.clear();
        assert!(served_now(&answers, now).is_none(), "no server known");
    }
}
