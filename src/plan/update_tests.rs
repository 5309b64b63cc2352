//! Table tests of the update plan: config text and zone contents in, log lines
//! and changes out.

use super::*;
use crate::config::ini::{Source, read};
use crate::config::model::build;
use crate::dns::record::Soa;

const PROVIDER: &str =
    "[domain]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\n";

fn domain(text: &str) -> Domain {
    let config = build(
        &read(&[Source {
            name: "t.conf".into(),
            text: format!("{PROVIDER}{text}"),
        }])
        .unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    config.domains.into_iter().next().unwrap()
}

/// Records from lines like `x.example A 1.2.3.4`.
fn zone(lines: &[&str]) -> Vec<Record> {
    lines
        .iter()
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            let name = Name::parse(words.next().unwrap()).unwrap();
            let rtype = words.next().unwrap();
            let rest = words.next().unwrap();
            let fields: Vec<&str> = rest.split(' ').collect();
            let data = match rtype {
                "A" => RData::A(rest.parse().unwrap()),
                "AAAA" => RData::Aaaa(rest.parse().unwrap()),
                "MX" => RData::Mx {
                    preference: fields[0].parse().unwrap(),
                    exchange: Name::parse(fields[1]).unwrap(),
                },
                "SRV" => RData::Srv {
                    priority: fields[0].parse().unwrap(),
                    weight: fields[1].parse().unwrap(),
                    port: fields[2].parse().unwrap(),
                    target: Name::parse(fields[3]).unwrap(),
                },
                "TXT" => RData::Txt(rest.to_string()),
                "CAA" => RData::Caa {
                    flags: fields[0].parse().unwrap(),
                    tag: fields[1].into(),
                    value: fields[2].into(),
                },
                "SOA" => RData::Soa(Soa {
                    mname: Name::parse(fields[0]).unwrap(),
                    rname: Name::parse(fields[1]).unwrap(),
                    serial: fields[2].parse().unwrap(),
                    refresh: fields[3].parse().unwrap(),
                    retry: fields[4].parse().unwrap(),
                    expire: fields[5].parse().unwrap(),
                    minimum: fields[6].parse().unwrap(),
                }),
                other => panic!("type {other}"),
            };
            Record::new(name, 3600, data)
        })
        .collect()
}

fn no_caa(_: &Domain) -> Result<Vec<String>, String> {
    Err("no certificate".into())
}

fn plan_with(config: &str, records: &[&str], ips: PublicIps) -> DomainPlan {
    let d = domain(config);
    let zone_name = Name::parse("example.de").unwrap();
    plan_domain(&d, &zone_name, &zone(records), &ips, &no_caa)
}

fn lines(plan: &DomainPlan) -> Vec<String> {
    plan.lines.iter().map(|l| l.to_string()).collect()
}

fn ip4(addr: &str) -> PublicIps {
    PublicIps {
        v4: Some(Ok(addr.parse().unwrap())),
        v6: None,
    }
}

const T: &str = "[domain:test1234.example.de]\n";

#[test]
fn the_tutorial_examples() {
    // ip4 = 1.2.3.4,5.6.7.8,auto with 1.2.3.4 and 6.7.8.9 in the zone.
    let plan = plan_with(
        &format!("{T}ip4 = 1.2.3.4,5.6.7.8,auto\n"),
        &[
            "test1234.example.de A 1.2.3.4",
            "test1234.example.de A 6.7.8.9",
        ],
        ip4("92.60.36.246"),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (exists) A for test1234.example.de : 1.2.3.4",
            "add (new) A for test1234.example.de : 5.6.7.8",
            "add (new) A for test1234.example.de : 92.60.36.246",
            "delete A for test1234.example.de : 6.7.8.9",
        ]
    );
    assert_eq!(plan.changes.adds.len(), 2);
    assert_eq!(plan.changes.deletes.len(), 1);

    // ip4 += 6.5.4.3 deletes nothing.
    let plan = plan_with(
        &format!("{T}ip4 += 6.5.4.3\n"),
        &["test1234.example.de A 1.2.3.4"],
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec!["add (new) A for test1234.example.de : 6.5.4.3"]
    );
    assert!(plan.changes.deletes.is_empty());

    // ip4 = none deletes every A record of the name, and nothing else.
    let plan = plan_with(
        &format!("{T}ip4 = none\n"),
        &[
            "test1234.example.de A 1.2.3.4",
            "test1234.example.de AAAA 2001:db8::1",
            "other.example.de A 1.2.3.4",
        ],
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec!["delete A for test1234.example.de : 1.2.3.4"]
    );
}

#[test]
fn a_failed_lookup_leaves_the_key_alone() {
    let plan = plan_with(
        &format!("{T}ip4 = auto\nmx = mail.example.de\n"),
        &["test1234.example.de A 1.2.3.4"],
        PublicIps {
            v4: Some(Err("timed out".into())),
            v6: None,
        },
    );
    assert!(plan.changes.deletes.is_empty());
    assert_eq!(
        lines(&plan),
        vec!["add (new) MX for test1234.example.de : 10 mail.example.de"]
    );
    assert!(plan.errors[0].contains("timed out"), "{:?}", plan.errors);
}

#[test]
fn inherited_set_and_own_add_both_stay() {
    let d = domain("ip4 = 1.2.3.4\n[domain:x.example.de]\nip4 += 5.6.7.8\n");
    let plan = plan_domain(
        &d,
        &Name::parse("example.de").unwrap(),
        &zone(&["x.example.de A 5.6.7.8", "x.example.de A 9.9.9.9"]),
        &PublicIps::default(),
        &no_caa,
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) A for x.example.de : 1.2.3.4",
            "add (exists) A for x.example.de : 5.6.7.8",
            "delete A for x.example.de : 9.9.9.9",
        ]
    );
}

#[test]
fn remove_and_scoped_keys() {
    let records = [
        "test1234.example.de MX 10 a.example.de",
        "test1234.example.de MX 30 b.example.de",
        "test1234.example.de MX 30 c.example.de",
    ];
    // mx.30 only touches priority 30.
    let plan = plan_with(
        &format!("{T}mx.30 = b.example.de\n"),
        &records,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (exists) MX for test1234.example.de : 30 b.example.de",
            "delete MX for test1234.example.de : 30 c.example.de",
        ]
    );
    let plan = plan_with(
        &format!("{T}mx -= a.example.de\n"),
        &records,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec!["delete MX for test1234.example.de : 10 a.example.de"]
    );
    // Removing what is not there does nothing.
    let plan = plan_with(
        &format!("{T}mx -= z.example.de\n"),
        &records,
        PublicIps::default(),
    );
    assert!(plan.lines.is_empty() && plan.changes.is_empty());
}

#[test]
fn srv_scope_by_service() {
    let records = [
        "_imap._tcp.test1234.example.de SRV 0 0 143 old.example.de",
        "_submission._tcp.test1234.example.de SRV 0 0 587 mail.example.de",
    ];
    let plan = plan_with(
        &format!("{T}srv.imap.tcp.143 = mail.example.de:11:19\n"),
        &records,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) SRV for _imap._tcp.test1234.example.de : 11 19 143 mail.example.de",
            "delete SRV for _imap._tcp.test1234.example.de : 0 0 143 old.example.de",
        ]
    );
}

#[test]
fn spf_set_merge_and_all_last() {
    let existing = [
        "test1234.example.de TXT v=spf1 +mx ~all",
        "test1234.example.de TXT other",
    ];
    let plan = plan_with(
        &format!("{T}spf = -all, a, +mx\n"),
        &existing,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) SPF for test1234.example.de : v=spf1 a +mx -all",
            "delete SPF for test1234.example.de : v=spf1 +mx ~all",
        ]
    );
    let plan = plan_with(
        &format!("{T}spf += ip4:192.0.2.1\n"),
        &existing,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan)[0],
        "add (new) SPF for test1234.example.de : v=spf1 +mx ip4:192.0.2.1 ~all"
    );
    // Same terms (mx and +mx are the same mechanism): nothing to do.
    let plan = plan_with(
        &format!("{T}spf = mx, ~all\n"),
        &existing,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec!["add (exists) SPF for test1234.example.de : v=spf1 +mx ~all"]
    );
    assert!(plan.changes.is_empty());
    let plan = plan_with(&format!("{T}spf =\n"), &existing, PublicIps::default());
    assert_eq!(
        lines(&plan),
        vec!["delete SPF for test1234.example.de : v=spf1 +mx ~all"]
    );
    // Removing from a name without SPF creates nothing.
    let plan = plan_with(&format!("{T}spf -= mx\n"), &[], PublicIps::default());
    assert!(plan.lines.is_empty());
}

#[test]
fn dmarc_merge_or_replace() {
    let existing = ["_dmarc.test1234.example.de TXT v=DMARC1; p=reject; rua=mailto:a@example.de"];
    let plan = plan_with(
        &format!("{T}dmarc.pct = 50\n"),
        &existing,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) DMARC for _dmarc.test1234.example.de : v=DMARC1; p=reject; rua=mailto:a@example.de; pct=50",
            "delete DMARC for _dmarc.test1234.example.de : v=DMARC1; p=reject; rua=mailto:a@example.de",
        ]
    );
    let plan = plan_with(
        &format!("{T}dmarc =\ndmarc.pct = 50\n"),
        &existing,
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan)[0],
        "add (new) DMARC for _dmarc.test1234.example.de : v=DMARC1; p=none; pct=50"
    );
    let plan = plan_with(
        &format!("{T}dmarc.p = reject\n"),
        &existing,
        PublicIps::default(),
    );
    assert!(plan.changes.is_empty(), "{:?}", lines(&plan));
}

#[test]
fn adsp_acme_caa() {
    let plan = plan_with(
        &format!("{T}adsp = all\nacme = tok1\ncaa = 0 issue letsencrypt.org\n"),
        &["_acme-challenge.test1234.example.de TXT old"],
        PublicIps::default(),
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) ACME for _acme-challenge.test1234.example.de : tok1",
            "add (new) ADSP for _adsp._domainkey.test1234.example.de : dkim=all",
            "add (new) CAA for test1234.example.de : 0 issue \"letsencrypt.org\"",
            "delete ACME for _acme-challenge.test1234.example.de : old",
        ]
    );
    // caa = auto without a certificate: an error, CAA records untouched.
    let plan = plan_with(
        &format!("{T}caa = auto\n"),
        &["test1234.example.de CAA 0 issue x.example"],
        PublicIps::default(),
    );
    assert!(plan.changes.is_empty());
    assert_eq!(plan.errors.len(), 1);
}

#[test]
fn soa_fields_bump_the_serial() {
    let soa = "example.de SOA ns1.example.de hostmaster.example.de 7 3600 900 604800 300";
    let d = domain("[domain:example.de]\nsoa.refresh = 7200\nsoa.hostmaster = admin@example.de\n");
    let plan = plan_domain(
        &d,
        &Name::parse("example.de").unwrap(),
        &zone(&[soa]),
        &PublicIps::default(),
        &no_caa,
    );
    assert_eq!(
        lines(&plan),
        vec![
            "add (new) SOA for example.de : ns1.example.de admin.example.de 8 7200 900 604800 300",
            "delete SOA for example.de : ns1.example.de hostmaster.example.de 7 3600 900 604800 300",
        ]
    );
    assert_eq!(plan.changes.adds.len(), 1);
    assert!(
        plan.changes.deletes.is_empty(),
        "an SOA is replaced, not deleted"
    );
    // Below the apex: an error, nothing changed.
    let d = domain("[domain:www.example.de]\nsoa.refresh = 7200\n");
    let plan = plan_domain(
        &d,
        &Name::parse("example.de").unwrap(),
        &zone(&[soa]),
        &PublicIps::default(),
        &no_caa,
    );
    assert!(plan.changes.is_empty() && plan.errors.len() == 1);
}

#[test]
fn ipv6_spellings_are_the_same_record() {
    let plan = plan_with(
        &format!("{T}ip6 = 2001:0db8:0000::0001\n"),
        &["test1234.example.de AAAA 2001:db8::1"],
        PublicIps::default(),
    );
    assert!(plan.changes.is_empty());
}

#[test]
fn tlsrpt_keeps_other_txt_records() {
    let owner = "_smtp._tls.test1234.example.de";
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "tlsrpt = mailto:a@example.de, https://r.example.de/v1\n",
            &[],
            &[
                "add (new) TLSRPT for _smtp._tls.test1234.example.de : v=TLSRPTv1; rua=mailto:a@example.de,https://r.example.de/v1",
            ],
        ),
        (
            "tlsrpt = mailto:b@example.de\n",
            &[
                "_smtp._tls.test1234.example.de TXT v=TLSRPTv1; rua=mailto:a@example.de",
                "_smtp._tls.test1234.example.de TXT other",
            ],
            &[
                "add (new) TLSRPT for _smtp._tls.test1234.example.de : v=TLSRPTv1; rua=mailto:b@example.de",
                "delete TLSRPT for _smtp._tls.test1234.example.de : v=TLSRPTv1; rua=mailto:a@example.de",
            ],
        ),
        (
            "tlsrpt = none\n",
            &[
                "_smtp._tls.test1234.example.de TXT v=TLSRPTv1; rua=mailto:a@example.de",
                "_smtp._tls.test1234.example.de TXT other",
            ],
            &[
                "delete TLSRPT for _smtp._tls.test1234.example.de : v=TLSRPTv1; rua=mailto:a@example.de",
            ],
        ),
    ];
    for (keys, zone_records, expected) in cases {
        let plan = plan_with(&format!("{T}{keys}"), zone_records, PublicIps::default());
        assert_eq!(lines(&plan), *expected, "{keys}");
        assert!(
            plan.changes
                .deletes
                .iter()
                .all(|r| r.data.to_string() != "other"),
            "{owner}: an unrelated TXT record was deleted"
        );
    }
}
