//! Material records (TLSA, DKIM TXT) through `phases::records` against a real
//! Knot: added next to what is there, pruned to what is still wanted, one
//! UPDATE per zone, and the "served by every authoritative server" check.

mod support;

use cryptdomainmgr::config::ini::{self, Source};
use cryptdomainmgr::config::model::{self, Domain};
use cryptdomainmgr::config::records::Op;
use cryptdomainmgr::dns::record::{Name, RData, Record, RecordType};
use cryptdomainmgr::phases::records::{self, DomainRecords};
use cryptdomainmgr::plan::scope::{Names, Scope};
use cryptdomainmgr::plan::update::Contribution;
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.test";

fn domains(knot: &KnotEnv) -> Vec<Domain> {
    let text = format!(
        "[domain]\nhandler = rfc2136\nserver = {}\nkeyname = {}\nsecret = {}\nnameservers = {}\n\
         [domain:{ZONE}]\n[domain:mail.{ZONE}]\n",
        knot.server(),
        knot.key_name(),
        knot.secret(),
        knot.server(),
    );
    let ini = ini::read(&[Source {
        name: "test.conf".into(),
        text,
    }])
    .unwrap();
    model::build(&ini).unwrap().domains
}

fn tlsa(owner: &Name, byte: u8) -> Record {
    Record::new(
        owner.clone(),
        300,
        RData::Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![byte; 32],
        },
    )
}

fn contribution(op: Op, domain: &Domain, records: Vec<Record>) -> Contribution {
    Contribution {
        op,
        log_type: "TLSA",
        scope: Scope {
            names: Names::ServiceBelow(domain.name.clone()),
            rtype: RecordType::Tlsa,
            filter: cryptdomainmgr::plan::scope::Filter::Any,
        },
        records,
    }
}

fn served(knot: &KnotEnv, owner: &str) -> Vec<String> {
    let mut lines: Vec<String> = knot
        .dig(owner, "TLSA")
        .into_iter()
        .map(|l| l.to_lowercase().replace(' ', ""))
        .collect();
    lines.sort();
    lines
}

fn hex_line(byte: u8) -> String {
    format!("311{}", format!("{byte:02x}").repeat(32))
}

#[tokio::test]
async fn adds_next_to_existing_then_prunes_to_wanted_with_one_update_per_zone() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let doms = domains(&knot);
    let apex = doms.iter().find(|d| d.name.as_str() == ZONE).unwrap();
    let mail = doms.iter().find(|d| d.name.as_str() != ZONE).unwrap();
    let at_apex = apex.name.prepend("_443._tcp").unwrap();
    let at_mail = mail.name.prepend("_25._tcp").unwrap();
    let work = |op, a: Vec<Record>, m: Vec<Record>| {
        vec![
            DomainRecords {
                domain: apex.clone(),
                contributions: vec![contribution(op, apex, a)],
            },
            DomainRecords {
                domain: mail.clone(),
                contributions: vec![contribution(op, mail, m)],
            },
        ]
    };

    // Two names in one zone: one UPDATE (one serial step).
    let serial = knot.serial(ZONE);
    records::apply(
        work(Op::Add, vec![tlsa(&at_apex, 1)], vec![tlsa(&at_mail, 1)]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(knot.serial(ZONE), serial + 1);
    assert_eq!(served(&knot, at_apex.as_str()), vec![hex_line(1)]);

    // Add keeps what is there.
    records::apply(
        work(Op::Add, vec![tlsa(&at_apex, 2)], vec![tlsa(&at_mail, 2)]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        served(&knot, at_apex.as_str()),
        vec![hex_line(1), hex_line(2)]
    );
    assert_eq!(
        served(&knot, at_mail.as_str()),
        vec![hex_line(1), hex_line(2)]
    );

    // The records are served by the configured authoritative server.
    let answers = records::served_everywhere(apex, &[tlsa(&at_apex, 2)])
        .await
        .unwrap();
    assert_eq!(answers.len(), 1);
    assert!(answers[0].1, "Knot serves the record");
    let answers = records::served_everywhere(apex, &[tlsa(&at_apex, 9)])
        .await
        .unwrap();
    assert!(!answers[0].1, "Knot does not serve a record never added");

    // A dry run changes nothing.
    let serial = knot.serial(ZONE);
    records::apply(work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]), true)
        .await
        .unwrap();
    assert_eq!(knot.serial(ZONE), serial);

    // Set prunes the scope to what is wanted.
    records::apply(work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]), false)
        .await
        .unwrap();
    assert_eq!(served(&knot, at_apex.as_str()), vec![hex_line(2)]);
    assert!(served(&knot, at_mail.as_str()).is_empty());

    // Nothing to change: no UPDATE.
    let serial = knot.serial(ZONE);
    records::apply(work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]), false)
        .await
        .unwrap();
    assert_eq!(knot.serial(ZONE), serial);
}
