//! MTA-STS (RFC 8461) for one domain section: the policy file's content, when
//! it is written, when the `_mta-sts.NAME` TXT names it, and when the MX
//! records may change.
//!
//! The policy file on disk is the journal: the TXT record's `id` is derived
//! from the content of the file as observed, and is published only when that
//! file holds exactly the wanted policy. So a sender that sees a new id always
//! finds the policy it names, and a run that stops between writing the file
//! and publishing the TXT publishes it on the next run.
//!
//! MX records and the policy move together so that a sender with a cached
//! policy never meets an MX it does not name: the policy names every MX the
//! zone holds now and every MX it is going to hold; MX changes wait until the
//! file on disk names all MX hosts of the change's result; an MX that left the
//! zone leaves the policy in the round after.

use std::path::PathBuf;

use super::scope::{Filter, Scope};
use super::update::{Action as LineAction, Contribution, DomainPlan};
use crate::config::mailpolicy::{Mode, MtaSts};
use crate::config::model::Domain;
use crate::config::records::Op;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::material::cert::hex;

/// A policy file to write (`Some`) or remove (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    pub domain: Name,
    pub path: PathBuf,
    pub content: Option<String>,
}

/// What MTA-STS asks of one domain section in this round.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The `_mta-sts` TXT record wanted (`None`: leave it as it is).
    pub txt: Option<Contribution>,
    /// The policy file to write or remove, with the reason.
    pub file: Option<(PolicyFile, String)>,
    /// What waits, for the log.
    pub info: Vec<String>,
    pub errors: Vec<String>,
}

/// The policy text (RFC 8461 §3.2), CRLF line ends.
pub fn render(mode: Mode, mx: &[String], max_age: u32) -> String {
    let mut text = format!("version: STSv1\r\nmode: {}\r\n", mode.as_str());
    for pattern in mx {
        text.push_str(&format!("mx: {pattern}\r\n"));
    }
    text.push_str(&format!("max_age: {max_age}\r\n"));
    text
}

/// The TXT `id` for a policy text: 20 hex digits of its SHA-256 (RFC 8461
/// §3.1 allows 1 to 32 letters and digits), so every content has its own.
pub fn policy_id(content: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, content.as_bytes());
    hex(digest.as_ref())[..20].to_string()
}

/// The `mx:` patterns of a policy text (any line ends).
pub fn policy_mx(content: &str) -> Vec<String> {
    content
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "mx").then(|| value.trim().to_ascii_lowercase())
        })
        .collect()
}

/// RFC 8461 §4.1: a pattern names a host exactly, or `*.` matches one
/// leftmost label.
pub fn covers(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => *p == host,
    })
}

fn mx_hosts<'a>(records: impl Iterator<Item = &'a Record>, name: &Name) -> Vec<String> {
    let mut hosts: Vec<String> = records
        .filter(|r| &r.name == name)
        .filter_map(|r| match &r.data {
            RData::Mx { exchange, .. } => Some(exchange.to_string().to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Plans MTA-STS for `domain` against the zone's records (`existing`), the
/// static records already planned (`planned`, whose MX changes may be held
/// back here) and the policy file as observed (`on_disk`: `Ok(None)` when
/// there is none).
pub(crate) fn plan(
    domain: &Domain,
    config: &MtaSts,
    existing: &[Record],
    planned: &mut DomainPlan,
    on_disk: &Result<Option<String>, String>,
) -> Outcome {
    let mut out = Outcome::default();
    let name = &domain.name;
    let owner = match name.prepend("_mta-sts") {
        Ok(owner) => owner,
        Err(e) => {
            out.errors.push(format!("mtasts: _mta-sts.{name}: {e}"));
            return out;
        }
    };
    let scope = Scope {
        filter: Filter::TxtTag("v=STSv1"),
        ..Scope::exact(owner.clone(), RecordType::Txt)
    };
    let txt = |records: Vec<Record>| Contribution {
        op: Op::Set,
        log_type: "MTA-STS",
        scope: scope.clone(),
        records,
    };
    let on_disk = match on_disk {
        Ok(content) => content,
        Err(e) => {
            hold_mx(domain, planned);
            out.errors.push(format!(
                "mtasts: {e}; the policy, its TXT record and the MX records are left as they are"
            ));
            return out;
        }
    };

    let Some(mode) = config.mode else {
        // Withdrawal: the TXT goes first; the file once no TXT names it.
        out.txt = Some(txt(Vec::new()));
        let txt_present = existing.iter().any(|r| scope.contains(r));
        if let (Some(path), Some(_), false) = (&config.file, on_disk, txt_present) {
            out.file = Some((
                PolicyFile {
                    domain: name.clone(),
                    path: path.clone(),
                    content: None,
                },
                "mtasts = none and no TXT record names the policy".into(),
            ));
        }
        return out;
    };
    let Some(path) = &config.file else {
        out.errors.push("mtasts needs mtastsfile".into());
        return out;
    };

    let before = mx_hosts(existing.iter(), name);
    let after = {
        let deleted = |r: &Record| planned.changes.deletes.iter().any(|d| d.same_as(r));
        let kept = existing.iter().filter(|r| !deleted(r));
        mx_hosts(kept.chain(planned.changes.adds.iter()), name)
    };
    let patterns = config.mx.clone().unwrap_or_else(|| after.clone());
    let mut policy_hosts = patterns.clone();
    for host in before.iter().chain(after.iter()) {
        if !covers(&policy_hosts, host) {
            policy_hosts.push(host.clone());
        }
    }
    if policy_hosts.is_empty() {
        out.errors.push(format!(
            "mtasts: {name} has no MX records and no mtasts.mx, so a policy would name no MX (RFC 8461 §3.2); the policy is left as it is"
        ));
        return out;
    }
    let wanted = render(mode, &policy_hosts, config.max_age);
    let in_place = on_disk.as_deref() == Some(wanted.as_str());

    let disk_patterns = on_disk.as_deref().map(policy_mx).unwrap_or_default();
    let uncovered: Vec<&String> = after
        .iter()
        .filter(|h| !covers(&disk_patterns, h))
        .collect();
    if !uncovered.is_empty() && hold_mx(domain, planned) {
        out.info.push(format!(
            "the MX records of {name} change once the MTA-STS policy names {}",
            uncovered
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if in_place {
        out.txt = Some(txt(vec![Record::new(
            owner,
            domain.ttl,
            RData::Txt(format!("v=STSv1; id={}", policy_id(&wanted))),
        )]));
    } else {
        let reason = match on_disk {
            None => "no policy file yet".to_string(),
            Some(_) => "the policy changed".to_string(),
        };
        out.file = Some((
            PolicyFile {
                domain: name.clone(),
                path: path.clone(),
                content: Some(wanted),
            },
            reason,
        ));
        out.info.push(format!(
            "the _mta-sts.{name} TXT record names the new policy once its file is in place"
        ));
    }
    out
}

/// Takes the MX changes at `domain`'s name out of `planned`. Returns whether
/// there were any.
fn hold_mx(domain: &Domain, planned: &mut DomainPlan) -> bool {
    let is_mx = |r: &Record| r.name == domain.name && r.record_type() == RecordType::Mx;
    let had = planned.changes.adds.iter().any(is_mx) || planned.changes.deletes.iter().any(is_mx);
    planned.changes.adds.retain(|r| !is_mx(r));
    planned.changes.deletes.retain(|r| !is_mx(r));
    planned.lines.retain(|l| {
        !(l.rtype == "MX" && l.name == domain.name && l.action != LineAction::AddExists)
    });
    had
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::{Source, read};
    use crate::config::model::build;
    use crate::plan::update::{PublicIps, plan_domain};

    const PROVIDER: &str =
        "[domain]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\n";

    fn domain(keys: &str) -> Domain {
        let text = format!("{PROVIDER}[domain:example.com]\nmtastsfile = /srv/mta-sts.txt\n{keys}");
        build(
            &read(&[Source {
                name: "t.conf".into(),
                text,
            }])
            .unwrap(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .domains
        .remove(0)
    }

    fn mx(host: &str) -> Record {
        Record::new(
            Name::parse("example.com").unwrap(),
            300,
            RData::Mx {
                preference: 10,
                exchange: Name::parse(host).unwrap(),
            },
        )
    }

    struct Round {
        planned: DomainPlan,
        out: Outcome,
    }

    fn round(keys: &str, zone: &[&str], on_disk: Option<&str>) -> Round {
        let d = domain(keys);
        let existing: Vec<Record> = zone.iter().map(|h| mx(h)).collect();
        let zone_name = Name::parse("example.com").unwrap();
        let mut planned = plan_domain(&d, &zone_name, &existing, &PublicIps::default(), &|_| {
            Ok(Vec::new())
        });
        let config = d.mtasts.clone().unwrap();
        let out = plan(
            &d,
            &config,
            &existing,
            &mut planned,
            &Ok(on_disk.map(str::to_string)),
        );
        Round { planned, out }
    }

    fn policy(mode: &str, mx: &[&str]) -> String {
        let mut s = format!("version: STSv1\r\nmode: {mode}\r\n");
        for m in mx {
            s.push_str(&format!("mx: {m}\r\n"));
        }
        s + "max_age: 604800\r\n"
    }

    fn written(r: &Round) -> Option<String> {
        r.out.file.as_ref().and_then(|(f, _)| f.content.clone())
    }

    fn txt(r: &Round) -> Option<Vec<String>> {
        r.out.txt.as_ref().map(|c| {
            c.records
                .iter()
                .map(|r| r.data.to_string())
                .collect::<Vec<_>>()
        })
    }

    fn mx_changes(r: &Round) -> (Vec<String>, Vec<String>) {
        let hosts = |rs: &[Record]| {
            rs.iter()
                .filter_map(|r| match &r.data {
                    RData::Mx { exchange, .. } => Some(exchange.to_string()),
                    _ => None,
                })
                .collect()
        };
        (
            hosts(&r.planned.changes.adds),
            hosts(&r.planned.changes.deletes),
        )
    }

    #[test]
    fn policy_text_and_id() {
        let text = render(
            Mode::Enforce,
            &["mx1.example.com".into(), "*.example.net".into()],
            86400,
        );
        assert_eq!(
            text,
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n"
        );
        let id = policy_id(&text);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(
            id,
            policy_id(&render(Mode::Testing, &["mx1.example.com".into()], 86400))
        );
        assert_eq!(policy_mx(&text), vec!["mx1.example.com", "*.example.net"]);
    }

    #[test]
    fn wildcards_match_one_label() {
        let p = vec!["*.example.net".to_string(), "mx.example.com".to_string()];
        for (host, expected) in [
            ("a.example.net", true),
            ("A.Example.NET.", true),
            ("a.b.example.net", false),
            ("example.net", false),
            ("mx.example.com", true),
            ("mx2.example.com", false),
        ] {
            assert_eq!(covers(&p, host), expected, "{host}");
        }
    }

    /// The sequence of rounds of an MX change: file first, then MX and id,
    /// then the old MX leaves the policy, then the id follows.
    #[test]
    fn an_mx_change_goes_file_first() {
        let keys = "mtasts = enforce\nmx = new.example.com\n";
        // Round 1: nothing on disk: write the policy naming both; hold the MX.
        let r = round(keys, &["old.example.com"], None);
        let both = policy("enforce", &["new.example.com", "old.example.com"]);
        assert_eq!(written(&r), Some(both.clone()));
        assert_eq!(txt(&r), None);
        assert_eq!(mx_changes(&r), (vec![], vec![]));
        assert!(
            r.planned
                .lines
                .iter()
                .all(|l| l.rtype != "MX" || l.action == LineAction::AddExists)
        );
        // Round 2: the file names both: MX change and the id of that file.
        let r = round(keys, &["old.example.com"], Some(&both));
        assert_eq!(written(&r), None);
        assert_eq!(
            txt(&r),
            Some(vec![format!("v=STSv1; id={}", policy_id(&both))])
        );
        assert_eq!(
            mx_changes(&r),
            (
                vec!["new.example.com".into()],
                vec!["old.example.com".into()]
            )
        );
        // Round 3: the old MX is gone from the zone: it leaves the policy; the
        // id stays until the file is in place.
        let r = round(keys, &["new.example.com"], Some(&both));
        let new = policy("enforce", &["new.example.com"]);
        assert_eq!(written(&r), Some(new.clone()));
        assert_eq!(txt(&r), None);
        // Round 4: the id of the new file.
        let r = round(keys, &["new.example.com"], Some(&new));
        assert_eq!(written(&r), None);
        assert_eq!(
            txt(&r),
            Some(vec![format!("v=STSv1; id={}", policy_id(&new))])
        );
    }

    #[test]
    fn table() {
        struct Case {
            keys: &'static str,
            zone: &'static [&'static str],
            disk: Option<String>,
            write: Option<Option<String>>,
            txt: Option<usize>,
            errors: usize,
        }
        let p = |mode: &str, mx: &[&str]| Some(policy(mode, mx));
        let cases = [
            // Explicit patterns cover the new MX: no hold.
            Case {
                keys: "mtasts = testing\nmtasts.mx = *.example.com\nmx = b.example.com\n",
                zone: &["a.example.com"],
                disk: p("testing", &["*.example.com"]),
                write: None,
                txt: Some(1),
                errors: 0,
            },
            // A served MX outside the patterns is added to the policy.
            Case {
                keys: "mtasts = enforce\nmtasts.mx = mx.example.com\n",
                zone: &["other.example.net"],
                disk: None,
                write: Some(p("enforce", &["mx.example.com", "other.example.net"])),
                txt: None,
                errors: 0,
            },
            // No MX anywhere: an error, nothing written.
            Case {
                keys: "mtasts = enforce\n",
                zone: &[],
                disk: None,
                write: None,
                txt: None,
                errors: 1,
            },
            // none: the TXT goes; the file stays while the zone has the TXT
            // (here the zone has none: the file goes).
            Case {
                keys: "mtasts = none\n",
                zone: &["a.example.com"],
                disk: p("enforce", &["a.example.com"]),
                write: Some(None),
                txt: Some(0),
                errors: 0,
            },
            Case {
                keys: "mtasts = none\n",
                zone: &["a.example.com"],
                disk: None,
                write: None,
                txt: Some(0),
                errors: 0,
            },
            // The mode changes: a new file, the TXT waits.
            Case {
                keys: "mtasts = enforce\n",
                zone: &["a.example.com"],
                disk: p("testing", &["a.example.com"]),
                write: Some(p("enforce", &["a.example.com"])),
                txt: None,
                errors: 0,
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let r = round(c.keys, c.zone, c.disk.as_deref());
            assert_eq!(
                r.out.file.as_ref().map(|(f, _)| f.content.clone()),
                c.write,
                "case {i}"
            );
            assert_eq!(txt(&r).map(|t| t.len()), c.txt, "case {i}");
            assert_eq!(r.out.errors.len(), c.errors, "case {i}: {:?}", r.out.errors);
        }
    }

    #[test]
    fn an_unreadable_file_holds_everything() {
        let d = domain("mtasts = enforce\nmx = b.example.com\n");
        let existing = vec![mx("a.example.com")];
        let zone = Name::parse("example.com").unwrap();
        let mut planned = plan_domain(&d, &zone, &existing, &PublicIps::default(), &|_| {
            Ok(Vec::new())
        });
        let out = plan(
            &d,
            d.mtasts.as_ref().unwrap(),
            &existing,
            &mut planned,
            &Err("reading /srv/mta-sts.txt: permission denied".into()),
        );
        assert!(out.file.is_none() && out.txt.is_none());
        assert_eq!(out.errors.len(), 1);
        assert!(planned.changes.is_empty());
    }
}
