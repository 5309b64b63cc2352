//! The adapter to the `dns-update` crate, through the crate's PowerDNS client,
//! against a real PowerDNS server (sqlite3 backend, HTTP API) started by the
//! test: zone lookup, reading only the RRsets asked for, adds before deletes
//! that keep the rest of each RRset, record forms through a real API, a
//! refused RRset that does not block the others, and errors without secrets.
//! Assertions on what PowerDNS serves (`dig`) and holds (`pdnsutil`).

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::time::Duration;

use cryptdomainmgr::dns::provider::dnsupdate::CrateProvider;
use cryptdomainmgr::dns::provider::{ChangeSet, DnsProvider, ProviderError};
use cryptdomainmgr::dns::record::{Name, RData, Record, RecordType, Soa};
use cryptdomainmgr::secret::Secret;
use dns_update::DnsUpdater;
use support::knot::minimal_zone;
use support::pdns::PdnsEnv;

const ZONE: &str = "example.de";
const NAME: &str = "www.example.de";

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn record(owner: &str, data: RData) -> Record {
    Record::new(name(owner), 300, data)
}

fn adapter(pdns: &PdnsEnv, key: &str) -> CrateProvider {
    let updater = DnsUpdater::new_pdns(
        key,
        Some(pdns.api_url()),
        None::<&str>,
        Some(Duration::from_secs(10)),
    )
    .unwrap();
    CrateProvider::new("pdns", updater, vec![Secret::new(key)])
        .with_timeout(Duration::from_secs(10))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn zone_lookup_reads_and_changes_through_the_crate() {
    let Some(pdns) = PdnsEnv::start(
        ZONE,
        &format!(
            "{}www A 192.0.2.1\nwww A 192.0.2.2\nwww TXT \"other\"\nmail A 192.0.2.25\n",
            minimal_zone(ZONE)
        ),
    ) else {
        return;
    };
    let provider = adapter(&pdns, pdns.api_key());
    let zone = provider.find_zone(&name(NAME)).await.unwrap();
    assert_eq!(zone, name(ZONE));

    // Only the RRsets asked for are read.
    let wanted = [(name(NAME), RecordType::A), (name(NAME), RecordType::Mx)];
    let read = provider.read_rrsets(&zone, &wanted).await.unwrap();
    let mut shown: Vec<String> = read.iter().map(|r| r.data.to_string()).collect();
    shown.sort();
    assert_eq!(shown, vec!["192.0.2.1", "192.0.2.2"]);

    let long = format!("v=spf1 {}-all", "+ip4:198.51.100.1 ".repeat(20));
    let tlsa = RData::Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0xab; 32],
    };
    let changes = ChangeSet {
        adds: vec![
            record(NAME, RData::A("192.0.2.3".parse().unwrap())),
            record(NAME, RData::Txt(long.clone())),
            record(
                NAME,
                RData::Mx {
                    preference: 20,
                    exchange: name("mail.example.de"),
                },
            ),
            record(
                NAME,
                RData::Caa {
                    flags: 0,
                    tag: "issue".into(),
                    value: "letsencrypt.org".into(),
                },
            ),
            record("_443._tcp.www.example.de", tlsa.clone()),
            record(
                "_imap._tcp.www.example.de",
                RData::Srv {
                    priority: 11,
                    weight: 19,
                    port: 143,
                    target: name("mail.example.de"),
                },
            ),
        ],
        deletes: vec![record(NAME, RData::A("192.0.2.1".parse().unwrap()))],
    };
    provider.apply(&zone, &changes).await.unwrap();
    assert_eq!(
        sorted(pdns.dig(NAME, "A")),
        vec!["192.0.2.2", "192.0.2.3"],
        "the add kept 192.0.2.2, the delete removed only 192.0.2.1"
    );
    assert_eq!(pdns.dig(NAME, "MX"), vec!["20 mail.example.de."]);
    assert_eq!(pdns.dig(NAME, "CAA"), vec!["0 issue \"letsencrypt.org\""]);
    assert_eq!(
        pdns.dig("_imap._tcp.www.example.de", "SRV"),
        vec!["11 19 143 mail.example.de."]
    );
    let txt: Vec<String> = pdns
        .dig(NAME, "TXT")
        .iter()
        .map(|l| l.trim_matches('"').split("\" \"").collect())
        .collect();
    assert!(
        txt.contains(&long) && txt.contains(&"other".to_string()),
        "{txt:?}"
    );

    // What was written reads back equal (the diff will not re-add it).
    let wanted: Vec<(Name, RecordType)> = changes
        .adds
        .iter()
        .map(|r| (r.name.clone(), r.record_type()))
        .collect();
    let read = provider.read_rrsets(&zone, &wanted).await.unwrap();
    for add in &changes.adds {
        assert!(
            read.iter().any(|r| r.same_as(add)),
            "{add} does not read back: {read:?}"
        );
    }
    assert!(read.iter().any(|r| r.data == tlsa));

    // An SOA cannot be written through the crate: an error, nothing changed.
    let soa = RData::Soa(Soa {
        mname: name("ns1.example.de"),
        rname: name("hostmaster.example.de"),
        serial: 99,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    });
    let changes = ChangeSet {
        adds: vec![
            record(NAME, RData::A("192.0.2.4".parse().unwrap())),
            record(ZONE, soa),
        ],
        deletes: vec![],
    };
    let error = provider
        .apply(&zone, &changes)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("SOA") && error.contains("pdns"), "{error}");
    assert_eq!(sorted(pdns.dig(NAME, "A")), vec!["192.0.2.2", "192.0.2.3"]);
}

/// PowerDNS refuses the add to one RRset (an A record next to a CNAME, HTTP
/// 422): the other RRsets are changed, the refused add is named with
/// PowerDNS's answer, and the delete of the same RRset is held back, so the
/// name keeps its old record. With the CNAME gone, the same changes complete.
#[tokio::test]
async fn a_refused_rrset_does_not_block_the_others_and_keeps_the_old_record() {
    let Some(pdns) = PdnsEnv::start(
        ZONE,
        &format!(
            "{}www CNAME www.example.net.\nwww A 192.0.2.1\nmail A 192.0.2.25\n",
            minimal_zone(ZONE)
        ),
    ) else {
        return;
    };
    let provider = adapter(&pdns, pdns.api_key());
    let zone = provider.find_zone(&name(NAME)).await.unwrap();
    let a = |owner: &str, ip: &str| record(owner, RData::A(ip.parse().unwrap()));
    let changes = ChangeSet {
        adds: vec![
            a(NAME, "192.0.2.9"),
            a("mail.example.de", "192.0.2.26"),
            record(
                ZONE,
                RData::Mx {
                    preference: 10,
                    exchange: name("mail.example.de"),
                },
            ),
        ],
        deletes: vec![a(NAME, "192.0.2.1"), a("mail.example.de", "192.0.2.25")],
    };
    let Err(ProviderError::Partial {
        applied, refused, ..
    }) = provider.apply(&zone, &changes).await
    else {
        panic!("not a partial application")
    };
    assert_eq!(applied, 3, "{refused:?}");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0].change, format!("add {NAME} 300 A 192.0.2.9"));
    assert!(
        refused[0]
            .answer
            .contains("Conflicts with pre-existing RRset"),
        "{refused:?}"
    );
    assert!(
        refused[1].change == format!("delete {NAME} 300 A 192.0.2.1")
            && refused[1].answer.starts_with("not sent"),
        "{refused:?}"
    );
    assert_eq!(pdns.dig("mail.example.de", "A"), vec!["192.0.2.26"]);
    assert_eq!(pdns.dig(ZONE, "MX"), vec!["10 mail.example.de."]);
    assert_eq!(pdns.stored(ZONE, NAME, "A"), vec!["192.0.2.1"]);

    pdns.delete_rrset(ZONE, NAME, "CNAME");
    provider.apply(&zone, &changes).await.unwrap();
    assert_eq!(pdns.dig(NAME, "A"), vec!["192.0.2.9"]);
}

#[tokio::test]
async fn errors_name_the_provider_and_hide_the_key() {
    let Some(pdns) = PdnsEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let wrong = "sentinel-crate-key-0d5a";
    let error = adapter(&pdns, wrong)
        .find_zone(&name(NAME))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("pdns") && error.contains(NAME), "{error}");
    assert!(!error.contains(wrong), "{error}");

    let error = adapter(&pdns, pdns.api_key())
        .find_zone(&name("www.other.test"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no zone found for www.other.test") && error.contains("zone = "),
        "{error}"
    );
}
