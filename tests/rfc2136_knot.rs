//! The RFC 2136 provider and the observation helpers against a real Knot DNS
//! server on loopback; what the server serves is checked with `dig`.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cryptdomainmgr::dns::observe::{self, NameServer};
use cryptdomainmgr::dns::provider::rfc2136::Rfc2136;
use cryptdomainmgr::dns::provider::{ChangeSet, DnsProvider, ProviderError};
use cryptdomainmgr::dns::record::{Name, RData, Record, RecordType};
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.test";

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn rec(owner: &str, data: RData) -> Record {
    Record::new(name(owner), 300, data)
}

fn a(owner: &str, ip: &str) -> Record {
    rec(owner, RData::A(ip.parse().unwrap()))
}

fn provider(knot: &KnotEnv) -> Rfc2136 {
    Rfc2136::from_keys(&knot.provider_keys()).unwrap()
}

fn adds(records: Vec<Record>) -> ChangeSet {
    ChangeSet {
        adds: records,
        deletes: Vec::new(),
    }
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// The character-strings of one `dig +short` TXT line, unescaped and joined.
fn joined_txt(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    let mut inside = false;
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '"') => inside = true,
            (true, '"') => inside = false,
            (true, '\\') => out.extend(chars.next()),
            (true, c) => out.push(c),
            (false, _) => {}
        }
    }
    out
}

/// Captures debug log lines (all tests share one process; filter by server).
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn captured_lines(server: &str) -> Vec<String> {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        capture
    });
    let suffix = format!(" to {server}");
    capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("rfc2136: sent ") && line.ends_with(&suffix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_operation_sends_one_message() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let server = knot.server();
    assert!(captured_lines(&server).is_empty());
    let p = provider(&knot);
    let zone = p.find_zone(&name("a.b.example.test")).await.unwrap();
    p.read_zone(&zone).await.unwrap();
    let changes = ChangeSet {
        adds: vec![
            a("www.example.test", "192.0.2.1"),
            a("www.example.test", "192.0.2.2"),
        ],
        deletes: vec![a("www.example.test", "192.0.2.3")],
    };
    p.apply(&zone, &changes).await.unwrap();
    p.apply(&zone, &ChangeSet::default()).await.unwrap();
    assert_eq!(
        captured_lines(&server),
        vec![
            format!("rfc2136: sent QUERY SOA a.b.example.test to {server}"),
            format!("rfc2136: sent AXFR example.test to {server}"),
            format!("rfc2136: sent UPDATE example.test (2 adds, 1 deletes) to {server}"),
        ]
    );
}

#[tokio::test]
async fn find_zone_at_apex_and_deep_below() {
    let Some(knot) = KnotEnv::builder()
        .zone(ZONE, &minimal_zone(ZONE))
        .zone("other.test", &minimal_zone("other.test"))
        .start()
    else {
        return;
    };
    let p = provider(&knot);
    assert_eq!(p.find_zone(&name(ZONE)).await.unwrap(), name(ZONE));
    // NODATA below the apex
    assert_eq!(
        p.find_zone(&name("ns1.example.test")).await.unwrap(),
        name(ZONE)
    );
    // NXDOMAIN deep below the apex
    assert_eq!(
        p.find_zone(&name("_443._tcp.a.b.c.Example.TEST"))
            .await
            .unwrap(),
        name(ZONE)
    );
    assert_eq!(
        p.find_zone(&name("www.other.test")).await.unwrap(),
        name("other.test")
    );
    let err = p.find_zone(&name("www.unknown.test")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");
}

#[tokio::test]
async fn configured_zone_needs_no_query() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let mut keys = knot.provider_keys();
    keys.insert("zone".into(), "configured.test".into());
    keys.insert("server".into(), "127.0.0.1:1".into());
    let p = Rfc2136::from_keys(&keys).unwrap();
    assert_eq!(
        p.find_zone(&name("www.example.test")).await.unwrap(),
        name("configured.test")
    );
}

#[tokio::test]
async fn read_zone_sees_the_zone_records() {
    let body = format!(
        "{}www A 192.0.2.1\nwww A 192.0.2.2\nwww AAAA 2001:db8::1\n@ MX 10 mail\n\
         @ TXT \"v=spf1\" \" -all\"\n@ CAA 0 issue \"letsencrypt.org\"\n\
         _imap._tcp SRV 0 5 143 mail\n_443._tcp.www TLSA 3 1 1 abcdef0123\n\
         alias CNAME www\nptr PTR www\n",
        minimal_zone(ZONE)
    );
    let Some(knot) = KnotEnv::start(ZONE, &body) else {
        return;
    };
    let records = provider(&knot).read_zone(&name(ZONE)).await.unwrap();
    let has = |r: &Record| records.iter().any(|x| x.same_as(r));
    for want in [
        a("www.example.test", "192.0.2.1"),
        a("www.example.test", "192.0.2.2"),
        a("ns1.example.test", "127.0.0.1"),
        rec(
            "www.example.test",
            RData::Aaaa("2001:db8::1".parse().unwrap()),
        ),
        rec(
            ZONE,
            RData::Mx {
                preference: 10,
                exchange: name("mail.example.test"),
            },
        ),
        rec(ZONE, RData::Txt("v=spf1 -all".into())),
        rec(
            ZONE,
            RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into(),
            },
        ),
        rec(
            "_imap._tcp.example.test",
            RData::Srv {
                priority: 0,
                weight: 5,
                port: 143,
                target: name("mail.example.test"),
            },
        ),
        rec(
            "_443._tcp.www.example.test",
            RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0xab, 0xcd, 0xef, 0x01, 0x23],
            },
        ),
        rec("alias.example.test", RData::Cname(name("www.example.test"))),
        rec(ZONE, RData::Ns(name("ns1.example.test"))),
    ] {
        assert!(has(&want), "missing {want} in {records:#?}");
    }
    let soas = records
        .iter()
        .filter(|r| r.record_type() == RecordType::Soa)
        .count();
    assert_eq!(soas, 1, "the closing SOA of the AXFR is dropped");
    assert!(!records.iter().any(|r| r.name == name("ptr.example.test")));
    let ttl = records
        .iter()
        .find(|r| r.record_type() == RecordType::Soa)
        .unwrap()
        .ttl;
    assert_eq!(ttl, 3600);
}

#[tokio::test]
async fn apply_adds_every_type_and_knot_serves_them() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let p = provider(&knot);
    let long_txt = format!("v=test \"quoted\" {}", "x".repeat(300));
    let tlsa_data: Vec<u8> = (0u8..32).collect();
    let caa = |flags, tag: &str, value: &str| {
        rec(
            ZONE,
            RData::Caa {
                flags,
                tag: tag.into(),
                value: value.into(),
            },
        )
    };
    let records = vec![
        a("www.example.test", "192.0.2.10"),
        rec(
            "www.example.test",
            RData::Aaaa("2001:0DB8:0000:0::0001".parse().unwrap()),
        ),
        rec(
            "www.example.test",
            RData::Aaaa("2001:db8::2".parse().unwrap()),
        ),
        rec(
            ZONE,
            RData::Mx {
                preference: 10,
                exchange: name("mail.example.test"),
            },
        ),
        rec(
            "_imap._tcp.example.test",
            RData::Srv {
                priority: 0,
                weight: 5,
                port: 143,
                target: name("mail.example.test"),
            },
        ),
        caa(0, "issue", "letsencrypt.org"),
        caa(0, "iodef", "mailto:a@b.c"),
        caa(128, "tbs", "x"),
        rec(
            "_443._tcp.www.example.test",
            RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: tlsa_data.clone(),
            },
        ),
        rec("long.example.test", RData::Txt(long_txt.clone())),
        a("a.b.c.d.example.test", "192.0.2.99"),
    ];
    p.apply(&name(ZONE), &adds(records.clone())).await.unwrap();

    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.10"]);
    assert_eq!(
        sorted(knot.dig("www.example.test", "AAAA")),
        vec!["2001:db8::1", "2001:db8::2"]
    );
    assert_eq!(knot.dig(ZONE, "MX"), vec!["10 mail.example.test."]);
    assert_eq!(
        knot.dig("_imap._tcp.example.test", "SRV"),
        vec!["0 5 143 mail.example.test."]
    );
    assert_eq!(
        sorted(knot.dig(ZONE, "CAA")),
        vec![
            "0 iodef \"mailto:a@b.c\"",
            "0 issue \"letsencrypt.org\"",
            "128 tbs \"x\""
        ]
    );
    let tlsa = knot.dig("_443._tcp.www.example.test", "TLSA");
    assert_eq!(tlsa.len(), 1);
    let hex: String = tlsa_data.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        tlsa[0].replace(' ', "").to_ascii_lowercase(),
        format!("311{hex}")
    );
    let txt = knot.dig("long.example.test", "TXT");
    assert_eq!(txt.len(), 1);
    assert_eq!(txt[0].matches("\" \"").count(), 1, "two strings: {txt:?}");
    assert_eq!(joined_txt(&txt[0]), long_txt);
    assert_eq!(knot.dig("a.b.c.d.example.test", "A"), vec!["192.0.2.99"]);

    // Reading the zone back gives the same records, canonically.
    let zone = p.read_zone(&name(ZONE)).await.unwrap();
    for want in &records {
        assert!(
            zone.iter().any(|r| r.same_as(want)),
            "missing {want} after apply"
        );
    }
    // The observation helpers agree.
    assert!(observe::served_by(knot.addr(), &records).await.unwrap());
}

#[tokio::test]
async fn deleting_one_record_keeps_the_rest_of_the_rrset() {
    let body = format!(
        "{}www A 192.0.2.1\nwww A 192.0.2.2\nwww A 192.0.2.3\n",
        minimal_zone(ZONE)
    );
    let Some(knot) = KnotEnv::start(ZONE, &body) else {
        return;
    };
    let changes = ChangeSet {
        adds: vec![a("www.example.test", "192.0.2.4")],
        deletes: vec![a("www.example.test", "192.0.2.2")],
    };
    provider(&knot).apply(&name(ZONE), &changes).await.unwrap();
    assert_eq!(
        sorted(knot.dig("www.example.test", "A")),
        vec!["192.0.2.1", "192.0.2.3", "192.0.2.4"]
    );
}

#[tokio::test]
async fn an_soa_in_adds_replaces_the_soa() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let p = provider(&knot);
    let before = knot.serial(ZONE);
    let zone = p.read_zone(&name(ZONE)).await.unwrap();
    let mut soa = zone
        .into_iter()
        .find(|r| r.record_type() == RecordType::Soa)
        .unwrap();
    let RData::Soa(fields) = &mut soa.data else {
        unreachable!()
    };
    fields.serial = before + 10;
    fields.refresh = 7200;
    fields.minimum = 120;
    p.apply(&name(ZONE), &adds(vec![soa])).await.unwrap();
    let served = knot.dig(ZONE, "SOA");
    assert_eq!(
        served,
        vec![format!(
            "ns1.example.test. hostmaster.example.test. {} 7200 600 86400 120",
            before + 10
        )]
    );
    assert!(knot.serial(ZONE) > before);
    let ttls = observe::soa_negative_ttl(knot.addr(), &name(ZONE))
        .await
        .unwrap();
    assert_eq!(ttls.minimum, 120);
    assert_eq!(ttls.negative_ttl(), 120);
}

#[tokio::test]
async fn an_empty_change_set_sends_nothing() {
    // The server does not exist: any message would fail.
    let keys = std::collections::BTreeMap::from([
        ("server".to_string(), "127.0.0.1:1".to_string()),
        ("keyname".to_string(), "k".to_string()),
        ("secret".to_string(), "c2VjcmV0".to_string()),
    ]);
    let p = Rfc2136::from_keys(&keys).unwrap();
    p.apply(&name(ZONE), &ChangeSet::default()).await.unwrap();
}

#[tokio::test]
async fn a_wrong_secret_is_bad_tsig_and_changes_nothing() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let mut keys = knot.provider_keys();
    keys.insert("secret".into(), support::random_secret());
    let p = Rfc2136::from_keys(&keys).unwrap();
    let err = p
        .apply(&name(ZONE), &adds(vec![a("www.example.test", "192.0.2.1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::BadTsig { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(keys["secret"].as_str()),
        "secret leaked: {text}"
    );
    assert!(knot.dig("www.example.test", "A").is_empty());
    let err = p.read_zone(&name(ZONE)).await.unwrap_err();
    assert!(matches!(err, ProviderError::BadTsig { .. }), "{err}");

    // An unknown key name is a TSIG error too.
    keys.insert("keyname".into(), "no-such-key".into());
    let p = Rfc2136::from_keys(&keys).unwrap();
    let err = p
        .apply(&name(ZONE), &adds(vec![a("www.example.test", "192.0.2.1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::BadTsig { .. }), "{err}");
    assert!(knot.dig("www.example.test", "A").is_empty());
}

#[tokio::test]
async fn a_key_without_update_rights_is_refused() {
    let Some(knot) = KnotEnv::builder()
        .zone(ZONE, &minimal_zone(ZONE))
        .readonly_key()
        .start()
    else {
        return;
    };
    let (key, secret) = knot.readonly_key().unwrap();
    let mut keys = knot.provider_keys();
    keys.insert("keyname".into(), key.into());
    keys.insert("secret".into(), secret.into());
    let p = Rfc2136::from_keys(&keys).unwrap();
    // It may transfer...
    assert!(!p.read_zone(&name(ZONE)).await.unwrap().is_empty());
    // ...but not update.
    let err = p
        .apply(&name(ZONE), &adds(vec![a("www.example.test", "192.0.2.1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Refused { .. }), "{err}");
    assert!(knot.dig("www.example.test", "A").is_empty());
}

#[tokio::test]
async fn an_update_outside_the_servers_zones_is_not_authoritative() {
    let Some(knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let err = provider(&knot)
        .apply(
            &name("elsewhere.test"),
            &adds(vec![a("www.elsewhere.test", "192.0.2.1")]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::NotAuthoritative { .. } | ProviderError::Refused { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_quickly() {
    let Some(mut knot) = KnotEnv::start(ZONE, &minimal_zone(ZONE)) else {
        return;
    };
    let p = provider(&knot);
    knot.stop();
    let started = Instant::now();
    let err = p
        .apply(&name(ZONE), &adds(vec![a("www.example.test", "192.0.2.1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&knot.server()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Updates live in the journal and survive a restart.
    knot.restart();
    p.apply(&name(ZONE), &adds(vec![a("www.example.test", "192.0.2.1")]))
        .await
        .unwrap();
    knot.restart();
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);
}

#[tokio::test]
async fn observe_nameservers_served_records_and_negative_ttl() {
    let body = format!("{}@ NS localhost.\nwww A 192.0.2.1\n", minimal_zone(ZONE));
    let Some(knot) = KnotEnv::start(ZONE, &body) else {
        return;
    };
    let listed = observe::ns_hosts_from(knot.addr(), &name(ZONE))
        .await
        .unwrap();
    let servers = observe::resolve_nameservers(&name(ZONE), listed)
        .await
        .unwrap();
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(
        servers[0],
        NameServer {
            host: name("ns1.example.test"),
            addrs: vec!["127.0.0.1:53".parse().unwrap()],
        }
    );
    // localhost has no glue: the system resolver supplies its address.
    assert_eq!(servers[1].host, name("localhost"));
    assert!(
        servers[1]
            .addrs
            .iter()
            .any(|a| a.ip().is_loopback() && a.port() == 53),
        "{servers:?}"
    );

    let www = a("www.example.test", "192.0.2.1");
    let new = a("www.example.test", "192.0.2.2");
    let elsewhere = a("new.example.test", "192.0.2.3");
    assert!(
        observe::served_by(knot.addr(), std::slice::from_ref(&www))
            .await
            .unwrap()
    );
    assert!(
        !observe::served_by(knot.addr(), &[www.clone(), new.clone()])
            .await
            .unwrap()
    );
    assert!(
        !observe::served_by(knot.addr(), std::slice::from_ref(&elsewhere))
            .await
            .unwrap()
    );
    provider(&knot)
        .apply(&name(ZONE), &adds(vec![new.clone(), elsewhere.clone()]))
        .await
        .unwrap();
    assert!(
        observe::served_by(knot.addr(), &[www, new, elsewhere])
            .await
            .unwrap()
    );

    let ttls = observe::soa_negative_ttl(knot.addr(), &name(ZONE))
        .await
        .unwrap();
    assert_eq!((ttls.soa_ttl, ttls.minimum), (3600, 300));
    assert_eq!(ttls.negative_ttl(), 300);

    // A server that is not authoritative for the name says so.
    let err = observe::served_by(knot.addr(), &[a("www.elsewhere.test", "192.0.2.1")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Refused { .. } | ProviderError::NotAuthoritative { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_transfer_of_several_messages_is_verified_and_complete() {
    let mut body = minimal_zone(ZONE);
    for i in 0..1000 {
        body.push_str(&format!("t{i} TXT \"{}\"\n", "y".repeat(200)));
    }
    let Some(knot) = KnotEnv::start(ZONE, &body) else {
        return;
    };
    let records = provider(&knot).read_zone(&name(ZONE)).await.unwrap();
    let txt = records
        .iter()
        .filter(|r| r.record_type() == RecordType::Txt)
        .count();
    assert_eq!(txt, 1000);
    // SOA, NS, ns1 A and the TXT records; no closing SOA.
    assert_eq!(records.len(), 1003);
}
