//! Which existing records a record key speaks for (its scope of deletion, docs/configuration.md,
//! "Scopes of deletion"). Pure predicates over records.

use crate::config::records::{SrvFields, TlsaFields};
use crate::dns::record::{Name, RData, Record, RecordType};

/// The names a scope covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Names {
    /// Exactly this name.
    Exact(Name),
    /// Names of the form `_LEFT._RIGHT.NAME` (SRV: `_service._proto`, TLSA: `_port._proto`).
    ServiceBelow(Name),
}

/// An extra condition on the record data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Any,
    MxPriority(u16),
    Srv(SrvFields),
    Tlsa(TlsaFields),
    /// TXT records whose text starts with this tag (`v=spf1`, `v=DMARC1`), case-insensitive.
    TxtTag(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub names: Names,
    pub rtype: RecordType,
    pub filter: Filter,
}

impl Scope {
    pub fn exact(name: Name, rtype: RecordType) -> Self {
        Scope {
            names: Names::Exact(name),
            rtype,
            filter: Filter::Any,
        }
    }

    /// True when `record` lies in this scope.
    pub fn contains(&self, record: &Record) -> bool {
        if record.record_type() != self.rtype {
            return false;
        }
        let labels = match &self.names {
            Names::Exact(name) => {
                if &record.name != name {
                    return false;
                }
                None
            }
            Names::ServiceBelow(base) => match record.name.labels_below(base) {
                Some(labels) if labels.len() == 2 && labels.iter().all(|l| l.starts_with('_')) => {
                    Some((labels[0][1..].to_string(), labels[1][1..].to_string()))
                }
                _ => return false,
            },
        };
        match (&self.filter, &record.data) {
            (Filter::Any, _) => true,
            (Filter::MxPriority(p), RData::Mx { preference, .. }) => p == preference,
            (
                Filter::Srv(f),
                RData::Srv {
                    priority,
                    weight,
                    port,
                    ..
                },
            ) => {
                let Some((service, proto)) = labels else {
                    return false;
                };
                f.service.as_ref().is_none_or(|s| *s == service)
                    && f.proto.as_ref().is_none_or(|p| *p == proto)
                    && f.port.is_none_or(|p| p == *port)
                    && f.weight.is_none_or(|w| w == *weight)
                    && f.priority.is_none_or(|p| p == *priority)
            }
            (
                Filter::Tlsa(f),
                RData::Tlsa {
                    usage,
                    selector,
                    matching,
                    ..
                },
            ) => {
                let Some((port, proto)) = labels else {
                    return false;
                };
                f.port.is_none_or(|p| p.to_string() == port)
                    && f.proto.as_ref().is_none_or(|p| *p == proto)
                    && f.usage.is_none_or(|u| u == *usage)
                    && f.selector.is_none_or(|s| s == *selector)
                    && f.matching.is_none_or(|m| m == *matching)
            }
            (Filter::TxtTag(tag), RData::Txt(text)) => has_tag(text, tag),
            _ => false,
        }
    }
}

/// True when `text` starts with `tag` followed by the end, a space or `;`.
pub fn has_tag(text: &str, tag: &str) -> bool {
    let text = text.trim_start();
    text.len() >= tag.len()
        && text[..tag.len()].eq_ignore_ascii_case(tag)
        && matches!(text.as_bytes().get(tag.len()), None | Some(b' ' | b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, data: RData) -> Record {
        Record::new(Name::parse(name).unwrap(), 300, data)
    }

    fn srv(prio: u16, port: u16) -> RData {
        RData::Srv {
            priority: prio,
            weight: 0,
            port,
            target: Name::parse("mail.example.com").unwrap(),
        }
    }

    #[test]
    fn srv_scopes() {
        let base = Name::parse("example.com").unwrap();
        let all = Scope {
            names: Names::ServiceBelow(base.clone()),
            rtype: RecordType::Srv,
            filter: Filter::Srv(SrvFields::default()),
        };
        let imap = Scope {
            filter: Filter::Srv(SrvFields {
                service: Some("imap".into()),
                ..SrvFields::default()
            }),
            ..all.clone()
        };
        let imap_rec = rec("_imap._tcp.example.com", srv(0, 143));
        let smtp_rec = rec("_submission._tcp.example.com", srv(0, 587));
        let deeper = rec("_imap._tcp.sub.example.com", srv(0, 143));
        assert!(all.contains(&imap_rec) && all.contains(&smtp_rec));
        assert!(imap.contains(&imap_rec) && !imap.contains(&smtp_rec));
        assert!(!all.contains(&deeper));
    }

    #[test]
    fn txt_tags() {
        assert!(has_tag("v=spf1 +mx -all", "v=spf1"));
        assert!(has_tag("V=SPF1", "v=spf1"));
        assert!(!has_tag("v=spf10", "v=spf1"));
        assert!(has_tag("v=DMARC1;p=none", "v=DMARC1"));
    }
}
