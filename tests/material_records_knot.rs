//! Material records (TLSA, DKIM TXT) planned as contributions against the zone
//! and applied as one zone change, against a real Knot: added next to what is
//! there, pruned to what is still wanted, one UPDATE per zone, and the "served
//! by every authoritative server" observation.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use cryptdomainmgr::apply;
use cryptdomainmgr::config::ini::{self, Source};
use cryptdomainmgr::config::model::{self, Config, Domain};
use cryptdomainmgr::config::records::Op;
use cryptdomainmgr::dns::provider::{ChangeSet, Providers};
use cryptdomainmgr::dns::record::{Name, RData, Record, RecordType};
use cryptdomainmgr::observe;
use cryptdomainmgr::plan::records::Awaited;
use cryptdomainmgr::plan::scope::{Names, Scope};
use cryptdomainmgr::plan::update::{Contribution, plan_contributions};
use cryptdomainmgr::plan::{Section, ZoneChange};
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.test";

fn config(knot: &KnotEnv) -> Config {
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
    model::build(&ini).unwrap()
}

/// Plans the contributions of each domain against the zone as Knot holds it
/// and, unless `dry_run`, applies them as one zone change.
async fn apply_work(config: &Config, work: Vec<(&Domain, Contribution)>, dry_run: bool) {
    let providers = Providers::build(config).unwrap();
    let provider = &config.domains[0].provider;
    let instance = providers.get(provider.id).unwrap();
    let zone = instance.find_zone(&work[0].0.name).await.unwrap();
    let existing = instance.read_zone(&zone).await.unwrap();
    let mut changes = ChangeSet::default();
    for (_, contribution) in work {
        let planned = plan_contributions(&[contribution], &existing);
        changes.adds.extend(planned.changes.adds);
        changes.deletes.extend(planned.changes.deletes);
    }
    if !dry_run {
        let change = ZoneChange {
            provider: provider.id,
            zone,
            changes,
            domains: Vec::new(),
        };
        apply::zones::apply(&providers, &change).await.unwrap();
    }
}

async fn served_everywhere(config: &Config, domain: &Domain, record: Record) -> bool {
    let awaited = Awaited {
        section: Section::Cert("test".into()),
        domains: vec![(domain.name.clone(), vec![record])],
    };
    let providers = Providers::build(config).unwrap();
    let answers = observe::served(config, &providers, &awaited).await;
    assert_eq!(answers.servers.len(), 1, "{answers:?}");
    answers.all_served()
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
    let config = config(&knot);
    let apex = config
        .domains
        .iter()
        .find(|d| d.name.as_str() == ZONE)
        .unwrap();
    let mail = config
        .domains
        .iter()
        .find(|d| d.name.as_str() != ZONE)
        .unwrap();
    let at_apex = apex.name.prepend("_443._tcp").unwrap();
    let at_mail = mail.name.prepend("_25._tcp").unwrap();
    let work = |op, a: Vec<Record>, m: Vec<Record>| {
        vec![
            (apex, contribution(op, apex, a)),
            (mail, contribution(op, mail, m)),
        ]
    };

    // Two names in one zone: one UPDATE (one serial step).
    let serial = knot.serial(ZONE);
    apply_work(
        &config,
        work(Op::Add, vec![tlsa(&at_apex, 1)], vec![tlsa(&at_mail, 1)]),
        false,
    )
    .await;
    assert_eq!(knot.serial(ZONE), serial + 1);
    assert_eq!(served(&knot, at_apex.as_str()), vec![hex_line(1)]);

    // Add keeps what is there.
    apply_work(
        &config,
        work(Op::Add, vec![tlsa(&at_apex, 2)], vec![tlsa(&at_mail, 2)]),
        false,
    )
    .await;
    assert_eq!(
        served(&knot, at_apex.as_str()),
        vec![hex_line(1), hex_line(2)]
    );
    assert_eq!(
        served(&knot, at_mail.as_str()),
        vec![hex_line(1), hex_line(2)]
    );

    // The records are served by the configured authoritative server.
    assert!(
        served_everywhere(&config, apex, tlsa(&at_apex, 2)).await,
        "Knot serves the record"
    );
    assert!(
        !served_everywhere(&config, apex, tlsa(&at_apex, 9)).await,
        "Knot does not serve a record never added"
    );

    // A dry run changes nothing.
    let serial = knot.serial(ZONE);
    apply_work(
        &config,
        work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]),
        true,
    )
    .await;
    assert_eq!(knot.serial(ZONE), serial);

    // Set prunes the scope to what is wanted.
    apply_work(
        &config,
        work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]),
        false,
    )
    .await;
    assert_eq!(served(&knot, at_apex.as_str()), vec![hex_line(2)]);
    assert!(served(&knot, at_mail.as_str()).is_empty());

    // Nothing to change: no UPDATE.
    let serial = knot.serial(ZONE);
    apply_work(
        &config,
        work(Op::Set, vec![tlsa(&at_apex, 2)], vec![]),
        false,
    )
    .await;
    assert_eq!(knot.serial(ZONE), serial);
}
