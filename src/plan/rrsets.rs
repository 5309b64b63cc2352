//! Which RRsets the update phase must read for a zone: those the record keys
//! of its domains speak for, and the NS RRsets of the names between the zone and
//! each of them (a delegation there moves the name to another zone). Providers
//! that cannot list a whole zone read just these.

use std::collections::BTreeSet;

use crate::config::model::Domain;
use crate::config::records::RecordKind;
use crate::dns::record::{Name, RecordType};

/// The (name, type) pairs to read for `domains` in `zone`, sorted, each once.
/// SRV keys reach the owner names their entries and key name, e.g.
/// `_imap._tcp.NAME`; other `_service._proto` names are not read.
pub(crate) fn rrsets_to_read(domains: &[Domain], zone: &Name) -> Vec<(Name, RecordType)> {
    let mut wanted = BTreeSet::new();
    for domain in domains {
        let name = &domain.name;
        let below = |label: &str| name.prepend(label).ok();
        for rule in &domain.rules {
            let mut add = |owner: Option<Name>, rtype| {
                if let Some(owner) = owner {
                    wanted.insert((owner, rtype));
                }
            };
            match &rule.rule.kind {
                RecordKind::Ip4(_) => add(Some(name.clone()), RecordType::A),
                RecordKind::Ip6(_) => add(Some(name.clone()), RecordType::Aaaa),
                RecordKind::Mx { .. } => add(Some(name.clone()), RecordType::Mx),
                RecordKind::Caa(_) => add(Some(name.clone()), RecordType::Caa),
                RecordKind::Spf(_) => add(Some(name.clone()), RecordType::Txt),
                RecordKind::Dmarc { .. } => add(below("_dmarc"), RecordType::Txt),
                RecordKind::Adsp(_) => add(below("_adsp._domainkey"), RecordType::Txt),
                RecordKind::TlsRpt(_) => add(below("_smtp._tls"), RecordType::Txt),
                RecordKind::Acme(_) => add(below("_acme-challenge"), RecordType::Txt),
                RecordKind::Soa { .. } => add(Some(zone.clone()), RecordType::Soa),
                RecordKind::Srv { scope, entries } => {
                    for entry in entries {
                        add(
                            below(&format!("_{}._{}", entry.service, entry.proto)),
                            RecordType::Srv,
                        );
                    }
                    if let (Some(service), Some(proto)) = (&scope.service, &scope.proto) {
                        add(below(&format!("_{service}._{proto}")), RecordType::Srv);
                    }
                }
                RecordKind::Tlsa { .. } | RecordKind::Dkim { .. } => {}
            }
        }
        // The MTA-STS policy follows the MX records and names its TXT id.
        if domain.mtasts.is_some() {
            if let Some(owner) = below("_mta-sts") {
                wanted.insert((owner, RecordType::Txt));
            }
            wanted.insert((name.clone(), RecordType::Mx));
        }
    }
    let owners: Vec<Name> = wanted.iter().map(|(n, _)| n.clone()).collect();
    for owner in owners {
        let mut cut = Some(owner);
        while let Some(name) = cut {
            if &name == zone || !name.is_at_or_below(zone) {
                break;
            }
            cut = name.parent();
            wanted.insert((name, RecordType::Ns));
        }
    }
    wanted.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::{Source, read};
    use crate::config::model::build;

    fn domains(text: &str) -> Vec<Domain> {
        let provider =
            "[domain]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\n";
        build(
            &read(&[Source {
                name: "t.conf".into(),
                text: format!("{provider}{text}"),
            }])
            .unwrap(),
        )
        .unwrap()
        .domains
    }

    fn pairs(list: &[(Name, RecordType)]) -> Vec<String> {
        let mut text: Vec<String> = list.iter().map(|(n, t)| format!("{n} {t}")).collect();
        text.sort();
        text
    }

    #[test]
    fn keys_map_to_their_rrsets_and_the_cuts_above_them() {
        let zone = Name::parse("example.com").unwrap();
        let list = rrsets_to_read(
            &domains(
                "[domain:www.example.com]\nip4 = 192.0.2.1\nmx = mail.example.com\n\
                 srv.imap.tcp.143 = mail.example.com\ndmarc.p = reject\nspf = +mx\n\
                 [domain:example.com]\nsoa.refresh = 7200\nip6 = ::1\n",
            ),
            &zone,
        );
        assert_eq!(
            pairs(&list),
            vec![
                "_dmarc.www.example.com NS",
                "_dmarc.www.example.com TXT",
                "_imap._tcp.www.example.com NS",
                "_imap._tcp.www.example.com SRV",
                "_tcp.www.example.com NS",
                "example.com AAAA",
                "example.com SOA",
                "www.example.com A",
                "www.example.com MX",
                "www.example.com NS",
                "www.example.com TXT",
            ]
        );
    }
}
