//! Provider conformance: one list of cases, run against every backend the
//! program can change zones on, each a real server started by the test:
//!
//! - `rfc2136_knot`: RFC 2136 UPDATE with TSIG to Knot DNS;
//! - `rfc2136_bind`: the same to BIND 9 (`named`);
//! - `zonefile_knot`: the `zonefile` provider editing the zone file Knot DNS
//!   loads, with `knotc zone-reload` as `reloadcommand`, so after every step
//!   Knot serves what the file holds;
//! - `powerdns_pdns`: the `powerdns` provider against a real PowerDNS
//!   Authoritative server (`pdns_server`, sqlite3 backend) through its HTTP
//!   API, with what PowerDNS serves asked by `dig`;
//! - `inwx_emulated`: the `inwx` provider against the emulation of INWX's
//!   documented JSON-RPC API (`tests/support/inwx.rs`); INWX itself cannot be
//!   reached from here, so what is "served" is the emulation's record store.
//!
//! Every case drives the provider through the `DnsProvider` trait (built from
//! the registry with config keys, as the program does) and asserts on what the
//! server serves (`dig`); for the zone file also on the file's text. One case
//! runs the binary's `--update` against each backend. A backend is one small
//! [`Backend`] impl: start it with the initial zone text (a server seeded
//! through an API can read that text with `zonefile::parse_zone_text`), give
//! its provider keys, say what it serves; then one `conformance!` line runs
//! every case against it.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cryptdomainmgr::dns::provider::zonefile::parse_zone_text;
use cryptdomainmgr::dns::provider::{ChangeSet, DnsProvider, lookup};
use cryptdomainmgr::dns::record::{Name, RData, Record, RecordType};
use support::bind::BindEnv;
use support::cdm::{cdm, write_config};
use support::inwx::InwxEmulation;
use support::knot::{KnotEnv, minimal_zone};
use support::pdns::PdnsEnv;

const ZONE: &str = "example.test";

/// A comment in the initial zone text: a zone file edit must keep it.
const COMMENT: &str = "; conformance: this comment stays";

/// The records every case starts with (relative to `$ORIGIN example.test.`).
fn initial_body() -> String {
    format!(
        "{}{COMMENT}\n\
         www A 192.0.2.1\n\
         www A 192.0.2.2\n\
         www A 192.0.2.3\n\
         v6 AAAA 2001:0DB8:0000:0000:0000:0000:0000:0001\n\
         @ MX 10 mail\n\
         mail A 192.0.2.25\n\
         txt TXT \"hello \\\"world\\\"\" \"second\"\n\
         @ CAA 0 issue \"letsencrypt.org\"\n",
        minimal_zone(ZONE)
    )
}

/// A server (or file) a provider changes, and how to see what it serves.
trait Backend: Sized {
    /// Starts the backend with the zone text `body`; `None` when a needed
    /// program is missing (outside CI).
    fn start(body: &str) -> Option<Self>;
    /// The provider's config keys, `handler` included.
    fn provider_keys(&self) -> BTreeMap<String, String>;
    /// What the server serves for `name type` (`dig +short` lines, sorted).
    fn served(&self, name: &str, rtype: &str) -> Vec<String>;
    /// The zone file's text, for a backend that is a file.
    fn file_text(&self) -> Option<String> {
        None
    }
    /// Checks after every applied change (the file backend: the server loaded
    /// the file, and the file kept its comment).
    fn after_apply(&self) {}
}

struct KnotRfc2136(KnotEnv);

impl Backend for KnotRfc2136 {
    fn start(body: &str) -> Option<Self> {
        KnotEnv::start(ZONE, body).map(KnotRfc2136)
    }
    fn provider_keys(&self) -> BTreeMap<String, String> {
        self.0.provider_keys()
    }
    fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        sorted(self.0.dig(name, rtype))
    }
}

struct BindRfc2136(BindEnv);

impl Backend for BindRfc2136 {
    fn start(body: &str) -> Option<Self> {
        BindEnv::start(ZONE, body).map(BindRfc2136)
    }
    fn provider_keys(&self) -> BTreeMap<String, String> {
        self.0.provider_keys()
    }
    fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        sorted(self.0.dig(name, rtype))
    }
}

/// The zone file Knot loads, edited by the `zonefile` provider; its reload
/// command is `knotc -b zone-reload`.
struct ZoneFileKnot {
    knot: KnotEnv,
    file: PathBuf,
}

impl Backend for ZoneFileKnot {
    fn start(body: &str) -> Option<Self> {
        let knot = KnotEnv::start(ZONE, body)?;
        let file = knot.zone_file(ZONE);
        Some(ZoneFileKnot { knot, file })
    }
    fn provider_keys(&self) -> BTreeMap<String, String> {
        // Every word quoted, as a user would quote a path with blanks.
        let reload: Vec<String> = self
            .knot
            .reload_command(ZONE)
            .iter()
            .map(|word| format!("\"{word}\""))
            .collect();
        BTreeMap::from([
            ("handler".to_string(), "zonefile".to_string()),
            ("file".to_string(), self.file.display().to_string()),
            ("reloadcommand".to_string(), reload.join(" ")),
        ])
    }
    fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        sorted(self.knot.dig(name, rtype))
    }
    fn file_text(&self) -> Option<String> {
        Some(std::fs::read_to_string(&self.file).expect("read the zone file"))
    }
    fn after_apply(&self) {
        let text = self.file_text().unwrap_or_default();
        assert!(text.contains(COMMENT), "the comment is gone:\n{text}");
        let in_file = text
            .lines()
            .find(|line| line.contains(" SOA "))
            .and_then(|line| line.split_whitespace().nth(6))
            .and_then(|serial| serial.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no SOA serial in\n{text}"));
        assert_eq!(
            self.knot.serial(ZONE),
            in_file,
            "Knot does not serve the edited file:\n{}",
            self.knot.log()
        );
    }
}

/// A real PowerDNS Authoritative server, changed through its HTTP API, seeded
/// with the zone text by `pdnsutil load-zone`.
struct PowerDnsServer(PdnsEnv);

impl Backend for PowerDnsServer {
    fn start(body: &str) -> Option<Self> {
        PdnsEnv::start(ZONE, body).map(PowerDnsServer)
    }
    fn provider_keys(&self) -> BTreeMap<String, String> {
        self.0.provider_keys()
    }
    fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        sorted(self.0.dig(name, rtype))
    }
}

/// INWX's JSON-RPC API, emulated from its documentation: INWX itself cannot
/// be reached from here, so `served` reads the emulation's record store
/// (rendered as `dig` would print it), not a name server. The zone is seeded
/// with the records of the zone text, except its SOA: INWX makes its own (and
/// counts its serial).
struct InwxEmulated(InwxEmulation);

impl Backend for InwxEmulated {
    fn start(body: &str) -> Option<Self> {
        let inwx = InwxEmulation::start("conformance", "conformance-pass", None);
        let text = format!("$ORIGIN {ZONE}.\n$TTL 300\n{body}");
        let (_, records) = parse_zone_text(&text, None).expect("the initial zone text");
        inwx.add_domain(ZONE);
        inwx.add_records(ZONE, &records);
        Some(InwxEmulated(inwx))
    }
    fn provider_keys(&self) -> BTreeMap<String, String> {
        self.0.provider_keys()
    }
    fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        self.0.served(name, rtype)
    }
}

// ---------------------------------------------------------------------------
// Helpers shared by the cases.

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn rec(owner: &str, data: RData) -> Record {
    Record::new(name(owner), 300, data)
}

fn a(owner: &str, ip: &str) -> Record {
    rec(owner, RData::A(ip.parse().unwrap()))
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

fn strings(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

/// The provider for a backend, built from its keys through the registry.
fn provider<B: Backend>(backend: &B) -> Arc<dyn DnsProvider> {
    let keys = backend.provider_keys();
    let spec = lookup(&keys["handler"]).expect("a registered handler");
    match (spec.build)(&keys) {
        Ok(provider) => provider,
        Err(e) => panic!("{}: {}", e.key, e.message),
    }
}

/// Starts a backend with the initial zone and builds its provider.
fn setup<B: Backend>() -> Option<(B, Arc<dyn DnsProvider>)> {
    let backend = B::start(&initial_body())?;
    let provider = provider(&backend);
    Some((backend, provider))
}

async fn apply<B: Backend>(backend: &B, provider: &Arc<dyn DnsProvider>, changes: ChangeSet) {
    let zone = provider.find_zone(&name(ZONE)).await.unwrap();
    provider
        .apply(&zone, &changes)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", provider.describe()));
    backend.after_apply();
}

fn adds(records: Vec<Record>) -> ChangeSet {
    ChangeSet {
        adds: records,
        deletes: Vec::new(),
    }
}

fn deletes(records: Vec<Record>) -> ChangeSet {
    ChangeSet {
        adds: Vec::new(),
        deletes: records,
    }
}

async fn read(provider: &Arc<dyn DnsProvider>) -> Vec<Record> {
    provider.read_zone(&name(ZONE)).await.unwrap()
}

fn count_same(records: &[Record], wanted: &Record) -> usize {
    records.iter().filter(|r| r.same_as(wanted)).count()
}

/// TLSA as served, with dig's blanks inside the hex removed and lower-cased.
fn tlsa_line(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    format!(
        "{} {} {} {}",
        fields[0],
        fields[1],
        fields[2],
        fields[3..].concat().to_ascii_lowercase()
    )
}

// ---------------------------------------------------------------------------
// The cases.

mod cases {
    use super::*;

    /// Reading the zone gives every record of the handled types, in canonical
    /// form (the long IPv6 spelling of the file read as the short one).
    pub async fn list<B: Backend>() {
        let Some((_backend, provider)) = setup::<B>() else {
            return;
        };
        let zone = provider
            .find_zone(&name("a.b.c.d.example.test"))
            .await
            .unwrap();
        assert_eq!(zone, name(ZONE));
        let records = read(&provider).await;
        let expected = [
            a("www.example.test", "192.0.2.1"),
            a("www.example.test", "192.0.2.2"),
            a("www.example.test", "192.0.2.3"),
            rec(
                "v6.example.test",
                RData::Aaaa("2001:db8::1".parse().unwrap()),
            ),
            rec(
                ZONE,
                RData::Mx {
                    preference: 10,
                    exchange: name("mail.example.test"),
                },
            ),
            rec(
                "txt.example.test",
                RData::Txt("hello \"world\"second".into()),
            ),
            rec(
                ZONE,
                RData::Caa {
                    flags: 0,
                    tag: "issue".into(),
                    value: "letsencrypt.org".into(),
                },
            ),
            rec(ZONE, RData::Ns(name("ns1.example.test"))),
        ];
        for record in &expected {
            assert_eq!(count_same(&records, record), 1, "{record} in {records:?}");
        }
        let soa = records
            .iter()
            .filter(|r| r.record_type() == RecordType::Soa)
            .count();
        assert_eq!(soa, 1, "{records:?}");
        let ttl = records
            .iter()
            .find(|r| r.same_as(&expected[0]))
            .unwrap()
            .ttl;
        assert_eq!(ttl, 300);
    }

    /// A new record is served; the others of its RRset stay.
    pub async fn add<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        apply(
            &backend,
            &provider,
            adds(vec![a("www.example.test", "192.0.2.4")]),
        )
        .await;
        assert_eq!(
            backend.served("www.example.test", "A"),
            strings(&["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"])
        );
        assert_eq!(
            count_same(&read(&provider).await, &a("www.example.test", "192.0.2.4")),
            1
        );
        if let Some(text) = backend.file_text() {
            // The old lines as they were, the new one appended.
            assert!(
                text.contains(&format!(
                    "{COMMENT}\nwww A 192.0.2.1\nwww A 192.0.2.2\nwww A 192.0.2.3\n"
                )),
                "{text}"
            );
            assert!(
                text.ends_with("\nwww.example.test. 300 IN A 192.0.2.4\n"),
                "{text}"
            );
        }
    }

    /// Adding a record that exists is no error and makes no duplicate; the
    /// zone file is not even rewritten.
    pub async fn add_existing<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let before = backend.file_text();
        let existing = a("www.example.test", "192.0.2.2");
        apply(
            &backend,
            &provider,
            adds(vec![existing.clone(), existing.clone()]),
        )
        .await;
        assert_eq!(
            backend.served("www.example.test", "A"),
            strings(&["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        );
        assert_eq!(count_same(&read(&provider).await, &existing), 1);
        assert_eq!(backend.file_text(), before, "the file was rewritten");
    }

    /// Deleting one record of an RRset keeps the others.
    pub async fn delete_one_of_several<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        apply(
            &backend,
            &provider,
            deletes(vec![a("www.example.test", "192.0.2.2")]),
        )
        .await;
        assert_eq!(
            backend.served("www.example.test", "A"),
            strings(&["192.0.2.1", "192.0.2.3"])
        );
        // Deleting what is not there is no error either.
        apply(
            &backend,
            &provider,
            deletes(vec![a("www.example.test", "192.0.2.99")]),
        )
        .await;
        assert_eq!(
            backend.served("www.example.test", "A"),
            strings(&["192.0.2.1", "192.0.2.3"])
        );
        if let Some(text) = backend.file_text() {
            assert!(!text.contains("192.0.2.2\n"), "{text}");
            assert!(
                text.contains("\nwww A 192.0.2.1\nwww A 192.0.2.3\n"),
                "{text}"
            );
        }
    }

    /// TXT with quotes and backslashes, and one longer than 255 bytes, which
    /// travels as several character-strings; both read back unchanged.
    pub async fn txt_quotes_and_long<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let quoted = rec(
            "q.example.test",
            RData::Txt("v=spf1 \"quoted\" back\\slash; semi".into()),
        );
        let long_text = format!("{}{}{}", "a".repeat(255), "b".repeat(255), "c".repeat(90));
        let long = rec("long.example.test", RData::Txt(long_text.clone()));
        apply(
            &backend,
            &provider,
            adds(vec![quoted.clone(), long.clone()]),
        )
        .await;
        assert_eq!(
            backend.served("q.example.test", "TXT"),
            strings(&["\"v=spf1 \\\"quoted\\\" back\\\\slash; semi\""])
        );
        assert_eq!(
            backend.served("long.example.test", "TXT"),
            vec![format!(
                "\"{}\" \"{}\" \"{}\"",
                "a".repeat(255),
                "b".repeat(255),
                "c".repeat(90)
            )]
        );
        let records = read(&provider).await;
        assert_eq!(count_same(&records, &quoted), 1, "{records:?}");
        assert_eq!(count_same(&records, &long), 1);
        // And they can be deleted again by the same canonical form.
        apply(&backend, &provider, deletes(vec![quoted, long])).await;
        assert!(backend.served("q.example.test", "TXT").is_empty());
        assert!(backend.served("long.example.test", "TXT").is_empty());
    }

    /// CAA with flags, tags and quoted values; one of two deleted.
    pub async fn caa<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
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
        apply(
            &backend,
            &provider,
            ChangeSet {
                adds: vec![
                    caa(128, "iodef", "mailto:security@example.test"),
                    caa(0, "issuewild", ";"),
                ],
                deletes: vec![caa(0, "issue", "letsencrypt.org")],
            },
        )
        .await;
        assert_eq!(
            backend.served(ZONE, "CAA"),
            strings(&[
                "0 issuewild \";\"",
                "128 iodef \"mailto:security@example.test\""
            ])
        );
        let records = read(&provider).await;
        assert_eq!(count_same(&records, &caa(0, "issuewild", ";")), 1);
    }

    /// SRV below `_service._proto`.
    pub async fn srv<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let srv = |priority, weight, port| {
            rec(
                "_imap._tcp.example.test",
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target: name("mail.example.test"),
                },
            )
        };
        apply(
            &backend,
            &provider,
            adds(vec![srv(0, 5, 143), srv(10, 0, 993)]),
        )
        .await;
        assert_eq!(
            backend.served("_imap._tcp.example.test", "SRV"),
            strings(&["0 5 143 mail.example.test.", "10 0 993 mail.example.test."])
        );
        apply(&backend, &provider, deletes(vec![srv(10, 0, 993)])).await;
        assert_eq!(
            backend.served("_imap._tcp.example.test", "SRV"),
            strings(&["0 5 143 mail.example.test."])
        );
        assert_eq!(count_same(&read(&provider).await, &srv(0, 5, 143)), 1);
    }

    /// TLSA with a SHA-256 and a SHA-512 digest.
    pub async fn tlsa<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let tlsa = |matching, len: u8| {
            rec(
                "_443._tcp.www.example.test",
                RData::Tlsa {
                    usage: 3,
                    selector: 1,
                    matching,
                    data: (0..len).map(|i| i.wrapping_mul(37)).collect(),
                },
            )
        };
        let hex = |len: u8| -> String {
            (0..len)
                .map(|i| format!("{:02x}", i.wrapping_mul(37)))
                .collect()
        };
        apply(&backend, &provider, adds(vec![tlsa(1, 32), tlsa(2, 64)])).await;
        let served: Vec<String> = backend
            .served("_443._tcp.www.example.test", "TLSA")
            .iter()
            .map(|l| tlsa_line(l))
            .collect();
        assert_eq!(
            sorted(served),
            vec![format!("3 1 1 {}", hex(32)), format!("3 1 2 {}", hex(64))]
        );
        let records = read(&provider).await;
        assert_eq!(count_same(&records, &tlsa(1, 32)), 1);
        assert_eq!(count_same(&records, &tlsa(2, 64)), 1);
    }

    /// MX: a second exchange added, the first replaced by another preference.
    pub async fn mx<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let mx = |preference, exchange: &str| {
            rec(
                ZONE,
                RData::Mx {
                    preference,
                    exchange: name(exchange),
                },
            )
        };
        apply(
            &backend,
            &provider,
            ChangeSet {
                adds: vec![mx(20, "backup.example.net"), mx(5, "mail.example.test")],
                deletes: vec![mx(10, "mail.example.test")],
            },
        )
        .await;
        assert_eq!(
            backend.served(ZONE, "MX"),
            strings(&["20 backup.example.net.", "5 mail.example.test."])
        );
    }

    /// The long and the short spelling of an IPv6 address are one record:
    /// adding the short form of a record stored in the long form adds nothing,
    /// and deleting by the short form removes it.
    pub async fn ipv6_forms<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let short = rec(
            "v6.example.test",
            RData::Aaaa("2001:db8::1".parse().unwrap()),
        );
        let full = rec(
            "v6.example.test",
            RData::Aaaa("2001:0db8:0000:0000:0000:0000:0000:0001".parse().unwrap()),
        );
        let before = backend.file_text();
        apply(&backend, &provider, adds(vec![short.clone(), full])).await;
        assert_eq!(
            backend.served("v6.example.test", "AAAA"),
            strings(&["2001:db8::1"])
        );
        assert_eq!(backend.file_text(), before);
        let other = rec(
            "v6.example.test",
            RData::Aaaa("2001:db8:0:0:1::".parse().unwrap()),
        );
        apply(
            &backend,
            &provider,
            ChangeSet {
                adds: vec![other],
                deletes: vec![short],
            },
        )
        .await;
        assert_eq!(
            backend.served("v6.example.test", "AAAA"),
            strings(&["2001:db8:0:0:1::"])
        );
        if let Some(text) = backend.file_text() {
            assert!(!text.contains("2001:0DB8"), "{text}");
            assert!(
                text.contains("v6.example.test. 300 IN AAAA 2001:db8:0:0:1::\n"),
                "{text}"
            );
        }
    }

    /// A name four labels below the zone: found in the zone, added, deleted.
    pub async fn deep_name<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let deep = "a.b.c.d.example.test";
        assert_eq!(provider.find_zone(&name(deep)).await.unwrap(), name(ZONE));
        apply(&backend, &provider, adds(vec![a(deep, "192.0.2.77")])).await;
        assert_eq!(backend.served(deep, "A"), strings(&["192.0.2.77"]));
        apply(&backend, &provider, deletes(vec![a(deep, "192.0.2.77")])).await;
        assert!(backend.served(deep, "A").is_empty());
        assert_eq!(
            count_same(&read(&provider).await, &a(deep, "192.0.2.77")),
            0
        );
    }

    /// A new SOA replaces the old one: the changed field is served and the
    /// serial has grown.
    pub async fn soa<B: Backend>() {
        let Some((backend, provider)) = setup::<B>() else {
            return;
        };
        let records = read(&provider).await;
        let old = records
            .iter()
            .find(|r| r.record_type() == RecordType::Soa)
            .expect("an SOA record");
        let RData::Soa(mut soa) = old.data.clone() else {
            unreachable!("an SOA record holds SOA data")
        };
        let old_serial = soa.serial;
        soa.refresh = 7200;
        soa.rname = name("admin.example.test");
        soa.serial += 1;
        let new = Record::new(old.name.clone(), old.ttl, RData::Soa(soa));
        apply(&backend, &provider, adds(vec![new])).await;
        let served = backend.served(ZONE, "SOA");
        let fields: Vec<&str> = served[0].split_whitespace().collect();
        assert_eq!(fields[1], "admin.example.test.", "{served:?}");
        assert_eq!(fields[3], "7200", "{served:?}");
        let serial: u32 = fields[2].parse().unwrap();
        assert!(serial > old_serial, "{served:?}");
        let soas = read(&provider)
            .await
            .into_iter()
            .filter(|r| r.record_type() == RecordType::Soa)
            .count();
        assert_eq!(soas, 1);
    }

    /// The binary's `--update` with several record keys: the first run makes
    /// the zone match the config, a second identical run changes nothing.
    pub async fn update_through_binary<B: Backend>() {
        let Some(backend) = B::start(&initial_body()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\n",
            dir.path().join("state").display()
        );
        for (key, value) in backend.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(
            "\n[domain:www.example.test]\nip4 = 192.0.2.10, 192.0.2.11\nip6 = 2001:db8::10\n\
             mx = mail.example.test:20\nsrv.imap.tcp.143 = mail.example.test:11:19\n\
             caa = 0 issue letsencrypt.org\nspf = +mx, -all\n",
        );
        let conf = write_config(dir.path(), "update.conf", &text);
        let run = tokio::task::spawn_blocking({
            let cwd = dir.path().to_path_buf();
            let conf = conf.clone();
            move || cdm(&cwd, &["--update", &conf])
        })
        .await
        .unwrap();
        assert_eq!(run.code, 0, "{}", run.stderr);
        backend.after_apply();
        let www = "www.example.test";
        assert_eq!(
            backend.served(www, "A"),
            strings(&["192.0.2.10", "192.0.2.11"])
        );
        assert_eq!(backend.served(www, "AAAA"), strings(&["2001:db8::10"]));
        assert_eq!(
            backend.served(www, "MX"),
            strings(&["20 mail.example.test."])
        );
        assert_eq!(
            backend.served("_imap._tcp.www.example.test", "SRV"),
            strings(&["11 19 143 mail.example.test."])
        );
        assert_eq!(
            backend.served(www, "CAA"),
            strings(&["0 issue \"letsencrypt.org\""])
        );
        assert_eq!(
            backend.served(www, "TXT"),
            strings(&["\"v=spf1 +mx -all\""])
        );

        let soa = backend.served(ZONE, "SOA");
        let file = backend.file_text();
        let again = tokio::task::spawn_blocking({
            let cwd = dir.path().to_path_buf();
            move || cdm(&cwd, &["--update", &conf])
        })
        .await
        .unwrap();
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert!(!again.stderr.contains("add (new)"), "{}", again.stderr);
        assert_eq!(
            backend.served(ZONE, "SOA"),
            soa,
            "the second run changed the zone"
        );
        assert_eq!(backend.file_text(), file);
    }
}

/// One test per case for a backend.
macro_rules! conformance {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn list() {
                cases::list::<$backend>().await;
            }
            #[tokio::test]
            async fn add() {
                cases::add::<$backend>().await;
            }
            #[tokio::test]
            async fn add_existing() {
                cases::add_existing::<$backend>().await;
            }
            #[tokio::test]
            async fn delete_one_of_several() {
                cases::delete_one_of_several::<$backend>().await;
            }
            #[tokio::test]
            async fn txt_quotes_and_long() {
                cases::txt_quotes_and_long::<$backend>().await;
            }
            #[tokio::test]
            async fn caa() {
                cases::caa::<$backend>().await;
            }
            #[tokio::test]
            async fn srv() {
                cases::srv::<$backend>().await;
            }
            #[tokio::test]
            async fn tlsa() {
                cases::tlsa::<$backend>().await;
            }
            #[tokio::test]
            async fn mx() {
                cases::mx::<$backend>().await;
            }
            #[tokio::test]
            async fn ipv6_forms() {
                cases::ipv6_forms::<$backend>().await;
            }
            #[tokio::test]
            async fn deep_name() {
                cases::deep_name::<$backend>().await;
            }
            #[tokio::test]
            async fn soa() {
                cases::soa::<$backend>().await;
            }
            #[tokio::test]
            async fn update_through_binary() {
                cases::update_through_binary::<$backend>().await;
            }
        }
    };
}

conformance!(rfc2136_knot, KnotRfc2136);
conformance!(rfc2136_bind, BindRfc2136);
conformance!(zonefile_knot, ZoneFileKnot);
conformance!(powerdns_pdns, PowerDnsServer);
conformance!(inwx_emulated, InwxEmulated);
