//! The update phase's plan for one domain (docs/configuration.md): from the domain's record
//! rules and what the zone holds now, the records to add and delete and the log
//! lines in the original's words. Pure: public addresses and CAA identities are
//! looked up beforehand and passed in.
//!
//! Several keys may speak for one scope (`ip4 = a` inherited, `ip4 += b` own):
//! whatever any set or add key wants is kept, a remove key takes its records out
//! of that, and a set key deletes the rest of its scope.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::scope::{Filter, Names, Scope};
use crate::config::model::Domain;
use crate::config::records::{AddrEntry, CaaEntry, Op, RecordKind, SoaField, hostmaster_to_rname};
use crate::dns::provider::ChangeSet;
use crate::dns::record::{Name, RData, Record, RecordType};

/// Public addresses looked up for `auto` (`None` when not needed).
#[derive(Clone, Debug, Default)]
pub struct PublicIps {
    pub v4: Option<Result<Ipv4Addr, String>>,
    pub v6: Option<Result<Ipv6Addr, String>>,
}

/// What a log line says happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    AddNew,
    AddExists,
    Delete,
}

/// One line of the change log, in the original's words:
/// `add (new) A for test1234.example.de : 5.6.7.8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub action: Action,
    pub rtype: &'static str,
    pub name: Name,
    pub content: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::AddNew => "add (new)",
            Action::AddExists => "add (exists)",
            Action::Delete => "delete",
        };
        write!(
            f,
            "{action} {} for {} : {}",
            self.rtype, self.name, self.content
        )
    }
}

/// The plan for one domain.
#[derive(Debug, Default)]
pub struct DomainPlan {
    /// Adds and exists first, then deletes.
    pub lines: Vec<LogLine>,
    pub changes: ChangeSet,
    /// Keys that could not be planned (their records are left as they are).
    pub errors: Vec<String>,
}

/// What one key contributes: records it wants (or removes) and its scope.
#[derive(Clone, Debug)]
pub struct Contribution {
    pub op: Op,
    /// The type the log lines show (`TLSA`, `DKIM`, `SPF`, ...).
    pub log_type: &'static str,
    /// What a set key speaks for: the rest of it is deleted.
    pub scope: Scope,
    pub records: Vec<Record>,
}

/// Plans the static records of `domain` in `zone`, given the zone's records.
/// `caa_identities` returns the CA domains for `caa = auto`.
pub fn plan_domain(
    domain: &Domain,
    zone: &Name,
    existing: &[Record],
    ips: &PublicIps,
    caa_identities: &dyn Fn(&Domain) -> Result<Vec<String>, String>,
) -> DomainPlan {
    let mut plan = DomainPlan::default();
    let mut contributions = Vec::new();
    let name = &domain.name;
    let ttl = domain.ttl;
    let record = |owner: &Name, data: RData| Record::new(owner.clone(), ttl, data);

    for spanned in &domain.rules {
        let rule = &spanned.rule;
        let op = rule.op;
        let log_type = rule.kind.log_type();
        let result: Result<Option<(Scope, Vec<Record>)>, String> = match &rule.kind {
            RecordKind::Ip4(entries) => resolve(entries, &ips.v4, "IPv4").map(|addrs| {
                Some((
                    Scope::exact(name.clone(), RecordType::A),
                    addrs
                        .into_iter()
                        .map(|a| record(name, RData::A(a)))
                        .collect(),
                ))
            }),
            RecordKind::Ip6(entries) => resolve(entries, &ips.v6, "IPv6").map(|addrs| {
                Some((
                    Scope::exact(name.clone(), RecordType::Aaaa),
                    addrs
                        .into_iter()
                        .map(|a| record(name, RData::Aaaa(a)))
                        .collect(),
                ))
            }),
            RecordKind::Mx {
                scope_priority,
                entries,
            } => Ok(Some((
                Scope {
                    filter: scope_priority.map_or(Filter::Any, Filter::MxPriority),
                    ..Scope::exact(name.clone(), RecordType::Mx)
                },
                entries
                    .iter()
                    .map(|(host, preference)| {
                        record(
                            name,
                            RData::Mx {
                                preference: *preference,
                                exchange: host.clone(),
                            },
                        )
                    })
                    .collect(),
            ))),
            RecordKind::Srv { scope, entries } => entries
                .iter()
                .map(|e| {
                    let owner = name
                        .prepend(&format!("_{}._{}", e.service, e.proto))
                        .map_err(|err| format!("SRV owner name: {err}"))?;
                    Ok(record(
                        &owner,
                        RData::Srv {
                            priority: e.priority,
                            weight: e.weight,
                            port: e.port,
                            target: e.target.clone(),
                        },
                    ))
                })
                .collect::<Result<Vec<_>, String>>()
                .map(|records| {
                    Some((
                        Scope {
                            names: Names::ServiceBelow(name.clone()),
                            rtype: RecordType::Srv,
                            filter: Filter::Srv(scope.clone()),
                        },
                        records,
                    ))
                }),
            RecordKind::Caa(entries) => caa_records(domain, entries, caa_identities).map(|data| {
                Some((
                    Scope::exact(name.clone(), RecordType::Caa),
                    data.into_iter().map(|d| record(name, d)).collect(),
                ))
            }),
            RecordKind::Acme(tokens) => txt_at(name, "_acme-challenge").map(|owner| {
                Some((
                    Scope::exact(owner.clone(), RecordType::Txt),
                    tokens
                        .iter()
                        .map(|t| record(&owner, RData::Txt(t.clone())))
                        .collect(),
                ))
            }),
            RecordKind::Adsp(value) => txt_at(name, "_adsp._domainkey").map(|owner| {
                Some((
                    Scope::exact(owner.clone(), RecordType::Txt),
                    value
                        .iter()
                        .map(|v| record(&owner, RData::Txt(format!("dkim={v}"))))
                        .collect(),
                ))
            }),
            RecordKind::TlsRpt(uris) => txt_at(name, "_smtp._tls").map(|owner| {
                Some((
                    Scope {
                        filter: Filter::TxtTag("v=TLSRPTv1"),
                        ..Scope::exact(owner.clone(), RecordType::Txt)
                    },
                    (!uris.is_empty())
                        .then(|| {
                            record(
                                &owner,
                                RData::Txt(format!("v=TLSRPTv1; rua={}", uris.join(","))),
                            )
                        })
                        .into_iter()
                        .collect(),
                ))
            }),
            // Folded below: one record built from all keys of its kind.
            RecordKind::Spf(_) | RecordKind::Dmarc { .. } | RecordKind::Soa { .. } => Ok(None),
            // Follow certificates and DKIM keys: prepare and cleanup, not update.
            RecordKind::Tlsa { .. } | RecordKind::Dkim { .. } => Ok(None),
        };
        match result {
            Ok(Some((scope, records))) => contributions.push(Contribution {
                op,
                log_type,
                scope,
                records,
            }),
            Ok(None) => {}
            Err(message) => plan.errors.push(format!(
                "{}: {message}; the records of this key are left as they are",
                rule.key
            )),
        }
    }

    let folded = [
        fold_spf(domain, existing),
        fold_dmarc(domain, existing),
        fold_soa(domain, zone, existing),
    ];
    for fold in folded {
        match fold {
            Ok(Some(c)) => contributions.push(c),
            Ok(None) => {}
            Err(message) => plan.errors.push(message),
        }
    }

    combine(&contributions, existing, &mut plan);
    plan
}

/// Fixed addresses plus the public one for `auto`; a failed lookup fails the key.
fn resolve<A: Copy>(
    entries: &[AddrEntry<A>],
    public: &Option<Result<A, String>>,
    family: &str,
) -> Result<Vec<A>, String> {
    entries
        .iter()
        .map(|entry| match entry {
            AddrEntry::Fixed(addr) => Ok(*addr),
            AddrEntry::Auto => match public {
                Some(Ok(addr)) => Ok(*addr),
                Some(Err(e)) => Err(format!("public {family} address lookup failed: {e}")),
                None => Err(format!("public {family} address not looked up")),
            },
        })
        .collect()
}

fn caa_records(
    domain: &Domain,
    entries: &[CaaEntry],
    caa_identities: &dyn Fn(&Domain) -> Result<Vec<String>, String>,
) -> Result<Vec<RData>, String> {
    let mut data = Vec::new();
    for entry in entries {
        match entry {
            CaaEntry::Fixed { flags, tag, value } => data.push(RData::Caa {
                flags: *flags,
                tag: tag.clone(),
                value: value.clone(),
            }),
            CaaEntry::Auto => {
                for identity in caa_identities(domain)? {
                    data.push(RData::Caa {
                        flags: 0,
                        tag: "issue".into(),
                        value: identity,
                    });
                }
            }
        }
    }
    Ok(data)
}

fn txt_at(name: &Name, label: &str) -> Result<Name, String> {
    name.prepend(label)
        .map_err(|e| format!("{label}.{name}: {e}"))
}

/// Normalised SPF term for comparison: the default `+` qualifier dropped.
fn spf_term_key(term: &str) -> String {
    term.strip_prefix('+').unwrap_or(term).to_ascii_lowercase()
}

fn is_all(term: &str) -> bool {
    spf_term_key(term).trim_start_matches(['-', '?', '~']) == "all"
}

/// The one `v=spf1` record at the name, from all `spf` keys in order.
fn fold_spf(domain: &Domain, existing: &[Record]) -> Result<Option<Contribution>, String> {
    let rules: Vec<_> = domain
        .rules
        .iter()
        .filter_map(|r| match &r.rule.kind {
            RecordKind::Spf(terms) => Some((r.rule.op, terms)),
            _ => None,
        })
        .collect();
    if rules.is_empty() {
        return Ok(None);
    }
    let scope = Scope {
        filter: Filter::TxtTag("v=spf1"),
        ..Scope::exact(domain.name.clone(), RecordType::Txt)
    };
    let current = existing.iter().find(|r| scope.contains(r));
    let current_terms = |r: &Record| match &r.data {
        RData::Txt(text) => text
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let mut wanted = current.is_some();
    let mut terms: Vec<String> = current.map(current_terms).unwrap_or_default();
    for (op, given) in &rules {
        match op {
            Op::Set | Op::Add => {
                if *op == Op::Set {
                    terms.clear();
                    wanted = !given.is_empty();
                } else {
                    wanted = true;
                }
                for term in given.iter() {
                    if is_all(term) {
                        terms.retain(|t| !is_all(t));
                    }
                    let key = spf_term_key(term);
                    if !terms.iter().any(|t| spf_term_key(t) == key) {
                        terms.push(term.clone());
                    }
                }
            }
            Op::Remove => {
                let remove: Vec<String> = given.iter().map(|t| spf_term_key(t)).collect();
                terms.retain(|t| !remove.contains(&spf_term_key(t)));
            }
        }
    }
    // `all` always last.
    let (mut body, all): (Vec<String>, Vec<String>) = terms.into_iter().partition(|t| !is_all(t));
    body.extend(all.into_iter().last());
    let records = if wanted {
        let same_as_current = current.filter(|r| {
            let now: Vec<String> = current_terms(r).iter().map(|t| spf_term_key(t)).collect();
            now == body.iter().map(|t| spf_term_key(t)).collect::<Vec<_>>()
        });
        vec![match same_as_current {
            Some(r) => r.clone(),
            None => {
                let text = std::iter::once("v=spf1".to_string())
                    .chain(body)
                    .collect::<Vec<_>>()
                    .join(" ");
                Record::new(domain.name.clone(), domain.ttl, RData::Txt(text))
            }
        }]
    } else {
        Vec::new()
    };
    Ok(Some(Contribution {
        op: Op::Set,
        log_type: "SPF",
        scope,
        records,
    }))
}

/// DMARC tags of a record (`v` excluded), in order.
fn dmarc_tags(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|part| {
            let (tag, value) = part.split_once('=')?;
            let tag = tag.trim().to_ascii_lowercase();
            (tag != "v" && !tag.is_empty()).then(|| (tag, value.trim().to_string()))
        })
        .collect()
}

/// The one `v=DMARC1` record at `_dmarc.NAME`, from all `dmarc` keys.
fn fold_dmarc(domain: &Domain, existing: &[Record]) -> Result<Option<Contribution>, String> {
    let rules: Vec<_> = domain
        .rules
        .iter()
        .filter_map(|r| match &r.rule.kind {
            RecordKind::Dmarc { tag, value } => Some((r.rule.op, tag, value)),
            _ => None,
        })
        .collect();
    if rules.is_empty() {
        return Ok(None);
    }
    let owner = txt_at(&domain.name, "_dmarc")?;
    let scope = Scope {
        filter: Filter::TxtTag("v=DMARC1"),
        ..Scope::exact(owner.clone(), RecordType::Txt)
    };
    let current = existing.iter().find(|r| scope.contains(r));
    let current_tags = current.map(|r| match &r.data {
        RData::Txt(text) => dmarc_tags(text),
        _ => Vec::new(),
    });
    let only_given = rules.iter().any(|(_, tag, _)| tag.is_none());
    let any_tags = rules.iter().any(|(_, tag, _)| tag.is_some());
    if only_given && !any_tags {
        // `dmarc =` alone: no DMARC record.
        return Ok(Some(Contribution {
            op: Op::Set,
            log_type: "DMARC",
            scope,
            records: Vec::new(),
        }));
    }
    let mut tags = if only_given {
        Vec::new()
    } else {
        current_tags.clone().unwrap_or_default()
    };
    for (op, tag, value) in &rules {
        let Some(tag) = tag else { continue };
        tags.retain(|(t, _)| t != tag);
        if let (Op::Set | Op::Add, Some(value)) = (op, value) {
            tags.push((tag.clone(), value.clone()));
        }
    }
    let p = tags
        .iter()
        .position(|(t, _)| t == "p")
        .map(|i| tags.remove(i))
        .unwrap_or_else(|| ("p".into(), "none".into()));
    tags.insert(0, p);
    let unchanged = current_tags.as_ref().is_some_and(|now| {
        let mut a = now.clone();
        let mut b = tags.clone();
        a.sort();
        b.sort();
        a == b
    });
    let record = match (unchanged, current) {
        (true, Some(r)) => r.clone(),
        _ => {
            let text = std::iter::once("v=DMARC1".to_string())
                .chain(tags.iter().map(|(t, v)| format!("{t}={v}")))
                .collect::<Vec<_>>()
                .join("; ");
            Record::new(owner, domain.ttl, RData::Txt(text))
        }
    };
    Ok(Some(Contribution {
        op: Op::Set,
        log_type: "DMARC",
        scope,
        records: vec![record],
    }))
}

/// The zone's SOA with the fields the `soa.*` keys set; serial increased when
/// anything changed.
fn fold_soa(
    domain: &Domain,
    zone: &Name,
    existing: &[Record],
) -> Result<Option<Contribution>, String> {
    let fields: Vec<_> = domain
        .rules
        .iter()
        .filter_map(|r| match &r.rule.kind {
            RecordKind::Soa { field, value } => {
                Some((r.rule.key.as_str(), *field, value.as_deref()))
            }
            _ => None,
        })
        .collect();
    if fields.is_empty() {
        return Ok(None);
    }
    if &domain.name != zone {
        return Err(format!(
            "soa.* keys set the SOA of a zone, but {} is not a zone apex (its zone is {zone}); the SOA is left as it is",
            domain.name
        ));
    }
    let Some((current, soa)) = existing.iter().find_map(|r| match &r.data {
        RData::Soa(soa) if &r.name == zone => Some((r, soa)),
        _ => None,
    }) else {
        return Err(format!(
            "the zone {zone} has no SOA record; the SOA is left as it is"
        ));
    };
    let mut new = soa.clone();
    for (key, field, value) in fields {
        let Some(value) = value else { continue };
        let seconds = || {
            value
                .parse::<u32>()
                .map_err(|_| format!("{key}: \"{value}\" is not a number"))
        };
        match field {
            SoaField::PrimaryNs => {
                new.mname = Name::parse(value).map_err(|e| format!("{key}: {e}"))?;
            }
            SoaField::Hostmaster => {
                new.rname = hostmaster_to_rname(value).map_err(|e| format!("{key}: {e}"))?
            }
            SoaField::Refresh => new.refresh = seconds()?,
            SoaField::Retry => new.retry = seconds()?,
            SoaField::Expire => new.expire = seconds()?,
            SoaField::NegativeTtl => new.minimum = seconds()?,
        }
    }
    let record = if &new == soa {
        current.clone()
    } else {
        new.serial = soa.serial.wrapping_add(1);
        Record::new(zone.clone(), current.ttl, RData::Soa(new))
    };
    Ok(Some(Contribution {
        op: Op::Set,
        log_type: "SOA",
        scope: Scope::exact(zone.clone(), RecordType::Soa),
        records: vec![record],
    }))
}

/// Plans contributions made elsewhere (material records such as TLSA and DKIM)
/// against the zone's records.
pub fn plan_contributions(contributions: &[Contribution], existing: &[Record]) -> DomainPlan {
    let mut plan = DomainPlan::default();
    combine(contributions, existing, &mut plan);
    plan
}

/// Combines the contributions into log lines and one change set.
fn combine(contributions: &[Contribution], existing: &[Record], plan: &mut DomainPlan) {
    let removed = |r: &Record| {
        contributions
            .iter()
            .any(|c| c.op == Op::Remove && c.records.iter().any(|x| x.same_as(r)))
    };
    let mut keep: Vec<(&Record, &'static str)> = Vec::new();
    for c in contributions.iter().filter(|c| c.op != Op::Remove) {
        for r in &c.records {
            if !removed(r) && !keep.iter().any(|(k, _)| k.same_as(r)) {
                keep.push((r, c.log_type));
            }
        }
    }
    let exists = |r: &Record| existing.iter().any(|e| e.same_as(r));
    for (record, log_type) in &keep {
        let action = if exists(record) {
            Action::AddExists
        } else {
            plan.changes.adds.push((*record).clone());
            Action::AddNew
        };
        plan.lines.push(line(action, log_type, record));
    }
    let mut deletes: Vec<(&Record, &'static str)> = Vec::new();
    for c in contributions {
        for e in existing {
            let stale = match c.op {
                Op::Set => c.scope.contains(e),
                Op::Remove => c.records.iter().any(|r| r.same_as(e)),
                Op::Add => false,
            };
            if stale
                && !keep.iter().any(|(k, _)| k.same_as(e))
                && !deletes.iter().any(|(d, _)| d.same_as(e))
            {
                deletes.push((e, c.log_type));
            }
        }
    }
    for (record, log_type) in deletes {
        plan.lines.push(line(Action::Delete, log_type, record));
        // An SOA is replaced by the add, never deleted.
        if record.record_type() != RecordType::Soa {
            plan.changes.deletes.push(record.clone());
        }
    }
}

fn line(action: Action, rtype: &'static str, record: &Record) -> LogLine {
    LogLine {
        action,
        rtype,
        name: record.name.clone(),
        content: record.data.to_string(),
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
