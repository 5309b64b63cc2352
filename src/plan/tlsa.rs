//! TLSA records of a domain from its certificates (docs/configuration.md, docs/timing.md): each `tlsa`
//! key names ports, protocols and usage/selector/matching types, and its records
//! are those of every certificate in the domain's `cert` list, current and
//! prepared. Pure: the certificates are parsed beforehand and passed in.
//!
//! Prepare publishes the records **next to** what is there (a set key acts as
//! an add key), so a client sees a record for the old and the new certificate
//! during the rollover (RFC 7671 §8.1). Cleanup lets set keys delete what in
//! their scope matches none of the certificates still in use.

use super::scope::{Filter, Names, Scope};
use super::update::Contribution;
use crate::config::model::Domain;
use crate::config::records::{Op, RecordKind, TlsaEntry};
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::material::cert::CertInfo;
use crate::material::tlsa::{TlsaParams, association_data};

/// Where a certificate stands in its cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Deployed by the last rollover.
    Current,
    /// Issued by prepare, waiting for rollover.
    Prepared,
    /// `keystrategy = staged`: the next key, without a certificate yet; only
    /// records of the key itself (usage 3 or 1, selector 1) are its.
    Next,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Current => "current",
            Role::Prepared => "prepared",
            Role::Next => "next key",
        }
    }

    /// Whether records of `params` can be made for material in this role.
    fn gives(self, params: TlsaParams) -> bool {
        self != Role::Next || (params.selector == 1 && matches!(params.usage, 1 | 3))
    }
}

/// A certificate whose TLSA records a domain publishes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlsaCert<'a> {
    /// The `[cert:NAME]` section.
    pub section: &'a str,
    pub role: Role,
    pub info: &'a CertInfo,
}

/// What the phase does with the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Prepare: add, delete only what `-=` keys name.
    Publish,
    /// Cleanup: set keys delete the rest of their scope.
    Prune,
}

/// The owner name of a TLSA record: `_PORT._PROTO.NAME` (RFC 6698 §3).
///
/// # Errors
/// When the name becomes invalid (too long).
pub(crate) fn owner(domain: &Name, entry: &TlsaEntry) -> Result<Name, String> {
    domain
        .prepend(&format!("_{}._{}", entry.port, entry.proto))
        .map_err(|e| format!("TLSA owner name: {e}"))
}

/// The records of `entries` for `certs`, without duplicates (two keys or two
/// certificates may want the same record, e.g. a 2 x x record of one CA).
///
/// # Errors
/// A message naming the entry and certificate that cannot give a record.
pub(crate) fn records(
    domain: &Domain,
    entries: &[TlsaEntry],
    certs: &[TlsaCert<'_>],
) -> Result<Vec<Record>, String> {
    let mut out: Vec<Record> = Vec::new();
    for entry in entries {
        let name = owner(&domain.name, entry)?;
        let params = TlsaParams {
            usage: entry.usage,
            selector: entry.selector,
            matching: entry.matching,
        };
        for cert in certs.iter().filter(|c| c.role.gives(params)) {
            let data = association_data(cert.info, params)
                .map_err(|e| format!("[cert:{}] ({}): {e}", cert.section, cert.role.as_str()))?;
            let record = Record::new(
                name.clone(),
                domain.ttl,
                RData::Tlsa {
                    usage: entry.usage,
                    selector: entry.selector,
                    matching: entry.matching,
                    data,
                },
            );
            if !out.iter().any(|r| r.same_as(&record)) {
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// True when the domain has a `tlsa` key.
pub(crate) fn has_tlsa(domain: &Domain) -> bool {
    domain
        .rules
        .iter()
        .any(|r| matches!(r.rule.kind, RecordKind::Tlsa { .. }))
}

/// The contributions of the domain's `tlsa` keys for `certs` (every certificate
/// of the domain's `cert` list, current and prepared), and the keys that could
/// not be planned (their records are left as they are).
pub(crate) fn contributions(
    domain: &Domain,
    certs: &[TlsaCert<'_>],
    mode: Mode,
) -> (Vec<Contribution>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for spanned in &domain.rules {
        let rule = &spanned.rule;
        let RecordKind::Tlsa { scope, entries } = &rule.kind else {
            continue;
        };
        let op = match (mode, rule.op) {
            (Mode::Publish, Op::Set) => Op::Add,
            (_, op) => op,
        };
        match records(domain, entries, certs) {
            Ok(records) => out.push(Contribution {
                op,
                log_type: "TLSA",
                scope: Scope {
                    names: Names::ServiceBelow(domain.name.clone()),
                    rtype: RecordType::Tlsa,
                    filter: Filter::Tlsa(scope.clone()),
                },
                records,
            }),
            Err(message) => errors.push(format!(
                "[domain:{}] {} ({}): {message}; the TLSA records of this key are left as they are",
                domain.name, rule.key, spanned.span
            )),
        }
    }
    (out, errors)
}

/// The records a certificate must have served before it is deployed: those the
/// domain's set and add keys want for it.
///
/// # Errors
/// As [`records`].
pub(crate) fn wanted_for(domain: &Domain, cert: TlsaCert<'_>) -> Result<Vec<Record>, String> {
    let mut out: Vec<Record> = Vec::new();
    for spanned in &domain.rules {
        if let RecordKind::Tlsa { entries, .. } = &spanned.rule.kind
            && spanned.rule.op != Op::Remove
        {
            for record in records(domain, entries, &[cert])? {
                if !out.iter().any(|r| r.same_as(&record)) {
                    out.push(record);
                }
            }
        }
    }
    Ok(out)
}

/// The certificates a TLSA record vouches for, by its own usage, selector and
/// matching type (whatever key made it).
pub(crate) fn matching_certs<'a>(record: &Record, certs: &[TlsaCert<'a>]) -> Vec<TlsaCert<'a>> {
    let RData::Tlsa {
        usage,
        selector,
        matching,
        data,
    } = &record.data
    else {
        return Vec::new();
    };
    let params = TlsaParams {
        usage: *usage,
        selector: *selector,
        matching: *matching,
    };
    certs
        .iter()
        .filter(|c| c.role.gives(params))
        .filter(|c| association_data(c.info, params).is_ok_and(|d| &d == data))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::{Source, read};
    use crate::config::model::build;
    use crate::material::cert::{KeyType, generate_key, parse_chain};
    use crate::plan::update::plan_contributions;

    const CHAIN: &str = include_str!("../../tests/fixtures/tlsa/chain.pem");

    fn domain(keys: &str) -> Domain {
        let text = format!(
            "[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = web\n{keys}\n[cert:web]\n"
        );
        let ini = read(&[Source {
            name: "t.conf".into(),
            text,
        }])
        .unwrap();
        let config = build(&ini).unwrap_or_else(|e| panic!("{e:?}"));
        config.domains.into_iter().next().unwrap()
    }

    /// A second chain: a self-signed leaf with a fresh key, no issuer.
    fn other_chain() -> CertInfo {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        let pair = rcgen::KeyPair::from_pem(key.expose()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["www.example.test".into()]).unwrap();
        parse_chain(&params.self_signed(&pair).unwrap().pem()).unwrap()
    }

    fn tlsa(owner: &str, usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Record {
        Record::new(
            Name::parse(owner).unwrap(),
            300,
            RData::Tlsa {
                usage,
                selector,
                matching,
                data,
            },
        )
    }

    fn ee(info: &CertInfo, owner: &str) -> Record {
        let params = TlsaParams {
            usage: 3,
            selector: 1,
            matching: 1,
        };
        tlsa(owner, 3, 1, 1, association_data(info, params).unwrap())
    }

    const W443: &str = "_443._tcp.www.example.test";
    const W25: &str = "_25._tcp.www.example.test";

    #[test]
    fn key_forms_give_owner_and_numbers() {
        let info = parse_chain(CHAIN).unwrap();
        let certs = [TlsaCert {
            section: "web",
            role: Role::Current,
            info: &info,
        }];
        let d = domain("tlsa.tcp.443 = auto:3:1:1, auto:2:0:1\ntlsa = auto:3:1:2:25:tcp");
        let (cs, errors) = contributions(&d, &certs, Mode::Prune);
        assert!(errors.is_empty(), "{errors:?}");
        let mut got: Vec<String> = cs
            .iter()
            .flat_map(|c| c.records.iter())
            .map(|r| {
                let RData::Tlsa {
                    usage,
                    selector,
                    matching,
                    ..
                } = r.data
                else {
                    panic!()
                };
                format!("{} {usage}{selector}{matching}", r.name)
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                format!("{W25} 312"),
                format!("{W443} 201"),
                format!("{W443} 311")
            ]
        );
    }

    #[test]
    fn prepare_adds_next_to_old_and_cleanup_prunes_to_current() {
        let old = parse_chain(CHAIN).unwrap();
        let new = other_chain();
        let d = domain("tlsa.tcp.443 = auto:3:1:1");
        let existing = vec![ee(&old, W443), ee(&old, W25)];
        let both = [
            TlsaCert {
                section: "web",
                role: Role::Current,
                info: &old,
            },
            TlsaCert {
                section: "web",
                role: Role::Prepared,
                info: &new,
            },
        ];
        let (cs, _) = contributions(&d, &both, Mode::Publish);
        let plan = plan_contributions(&cs, &existing);
        assert_eq!(plan.changes.adds.len(), 1);
        assert!(plan.changes.adds[0].same_as(&ee(&new, W443)));
        assert!(plan.changes.deletes.is_empty());

        // After rollover the new one is current; cleanup deletes the old at
        // _443._tcp, and nothing at _25._tcp (outside the key's scope).
        let after = vec![ee(&old, W443), ee(&new, W443), ee(&old, W25)];
        let current = [TlsaCert {
            section: "web",
            role: Role::Current,
            info: &new,
        }];
        let (cs, _) = contributions(&d, &current, Mode::Prune);
        let plan = plan_contributions(&cs, &after);
        assert!(plan.changes.adds.is_empty());
        assert_eq!(plan.changes.deletes.len(), 1);
        assert!(plan.changes.deletes[0].same_as(&ee(&old, W443)));

        // A prepared certificate still waiting keeps its records in cleanup.
        let (cs, _) = contributions(&d, &both, Mode::Prune);
        assert!(
            plan_contributions(&cs, &after)
                .changes
                .deletes
                .iter()
                .all(|r| !r.same_as(&ee(&new, W443)) && !r.same_as(&ee(&old, W443)))
        );
    }

    #[test]
    fn add_keys_never_delete_and_remove_keys_do() {
        let old = parse_chain(CHAIN).unwrap();
        let new = other_chain();
        let current = [TlsaCert {
            section: "web",
            role: Role::Current,
            info: &new,
        }];
        let existing = vec![ee(&old, W443)];
        let d = domain("tlsa.tcp.443+ = auto:3:1:1");
        let (cs, _) = contributions(&d, &current, Mode::Prune);
        let plan = plan_contributions(&cs, &existing);
        assert!(plan.changes.deletes.is_empty());
        assert_eq!(plan.changes.adds.len(), 1);

        let d = domain("tlsa.tcp.443- = auto:3:1:1");
        let (cs, _) = contributions(&d, &current, Mode::Publish);
        let plan = plan_contributions(&cs, &[ee(&new, W443), ee(&old, W443)]);
        assert_eq!(plan.changes.deletes.len(), 1);
        assert!(plan.changes.deletes[0].same_as(&ee(&new, W443)));
        assert!(plan.changes.adds.is_empty());
    }

    #[test]
    fn a_ca_usage_without_issuer_is_a_key_error() {
        let selfsigned = other_chain();
        let certs = [TlsaCert {
            section: "web",
            role: Role::Prepared,
            info: &selfsigned,
        }];
        let d = domain("tlsa.tcp.443 = auto:2:0:1\ntlsa.tcp.25 = auto:3:1:1");
        let (cs, errors) = contributions(&d, &certs, Mode::Prune);
        assert_eq!(cs.len(), 1, "the other key still works");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("tlsa.tcp.443") && errors[0].contains("issuing CA"));
    }

    #[test]
    fn wanted_and_matching() {
        let old = parse_chain(CHAIN).unwrap();
        let new = other_chain();
        let d = domain("tlsa.tcp.443 = auto:3:1:1\ntlsa.tcp.25- = auto:3:1:1");
        let prepared = TlsaCert {
            section: "web",
            role: Role::Prepared,
            info: &new,
        };
        let wanted = wanted_for(&d, prepared).unwrap();
        assert_eq!(wanted.len(), 1);
        assert!(wanted[0].same_as(&ee(&new, W443)));
        let current = TlsaCert {
            section: "web",
            role: Role::Current,
            info: &old,
        };
        let both = [current, prepared];
        let m = matching_certs(&ee(&new, W443), &both);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].role, Role::Prepared);
        assert!(matching_certs(&tlsa(W443, 3, 1, 1, vec![0; 32]), &both).is_empty());
        // Another form of the same certificate also matches.
        let full = association_data(
            &old,
            TlsaParams {
                usage: 1,
                selector: 0,
                matching: 0,
            },
        )
        .unwrap();
        assert_eq!(
            matching_certs(&tlsa(W443, 1, 0, 0, full), &both)[0].role,
            Role::Current
        );
    }
}
