//! The `inwx` provider end to end: the binary's update phase against an
//! emulation of INWX's documented JSON-RPC API (`tests/support/inwx.rs`), since
//! INWX itself cannot be reached from here. Assertions are on the emulation's
//! record state, the calls it received and the binary's exit status.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use support::cdm::{Run, cdm, write_config};
use support::inwx::InwxEmulation;

const ZONE: &str = "example.de";
const NAME: &str = "www.example.de";
const USER: &str = "cdm-user";
const PASS: &str = "sentinel-pass-93ad";
/// base32 of RFC 6238's test secret "12345678901234567890".
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A credentials file with `handler = dnsuptools/inwx` (the original's name).
fn credentials(inwx: &InwxEmulation, extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[cdm]\nstatedir = {}\n\n[domain]\nhandler = dnsuptools/inwx\nuser = {USER}\napiurl = {}\n{extra}",
        dir.path().join("state").display(),
        inwx.url()
    );
    let path = write_config(dir.path(), "credentials.conf", &text);
    (dir, path)
}

fn update(dir: &tempfile::TempDir, creds: &str, config: &str) -> Run {
    cdm(dir.path(), &["--update", creds, "--config-content", config])
}

fn count(calls: &[String], method: &str) -> usize {
    calls.iter().filter(|c| *c == method).count()
}

fn assert_no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "a secret appears in the output:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

fn emulation(totp: Option<&str>) -> InwxEmulation {
    let inwx = InwxEmulation::start(USER, PASS, totp);
    inwx.add_domain(ZONE);
    inwx.add_record(ZONE, NAME, "A", "192.0.2.1", 0);
    inwx
}

#[test]
fn update_phase_sets_records_and_keeps_the_rest_of_each_rrset() {
    let inwx = emulation(None);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let spf: Vec<String> = (1..=20).map(|i| format!("+ip4:198.51.100.{i}")).collect();
    let config = format!(
        "[domain:{NAME}]\nip4 += 192.0.2.2\nip6 = 2001:db8::1\nmx = mail.example.de:20\n\
         caa = 0 issue letsencrypt.org\nsrv.imap.tcp.143 = mail.example.de:11:19\nspf = {}, -all\n",
        spf.join(", ")
    );
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(inwx.contents(NAME, "AAAA"), vec!["2001:db8::1"]);
    assert_eq!(
        inwx.records(NAME, "MX"),
        vec![("mail.example.de".to_string(), 20)]
    );
    assert_eq!(
        inwx.contents(NAME, "CAA"),
        vec!["0 issue \"letsencrypt.org\""]
    );
    assert_eq!(
        inwx.records("_imap._tcp.www.example.de", "SRV"),
        vec![("19 143 mail.example.de".to_string(), 11)]
    );
    let txt = inwx.contents(NAME, "TXT");
    assert_eq!(txt.len(), 1, "{txt:?}");
    assert!(txt[0].len() > 255 && txt[0].starts_with("v=spf1") && txt[0].ends_with("-all"));
    assert_eq!(inwx.open_sessions(), 0, "the session is logged out");

    // The same config again creates and deletes nothing.
    let before = inwx.calls();
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = inwx.calls();
    assert_eq!(
        count(&after, "nameserver.createRecord"),
        count(&before, "nameserver.createRecord")
    );
    assert_eq!(count(&after, "nameserver.deleteRecord"), 0);

    // Setting A to one address deletes the others.
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.3\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.3"]);
    assert_eq!(inwx.contents(NAME, "AAAA"), vec!["2001:db8::1"]);
    assert_no_secret(&run, PASS);
}

#[test]
fn two_factor_login_sends_a_valid_tan() {
    let inwx = emulation(Some(TOTP_SECRET));
    let (dir, creds) = credentials(
        &inwx,
        &format!("passwd = {PASS}\nsharedsecret = {TOTP_SECRET}\n"),
    );
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.5\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(inwx.calls().contains(&"account.unlock".to_string()));
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.5"]);
    assert_no_secret(&run, TOTP_SECRET);

    // Without the shared secret: a clear error, nothing changed.
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.6\n"));
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("set sharedsecret"), "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.5"]);

    // A wrong shared secret (another valid base32 key): the TAN is rejected.
    let wrong = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\nsharedsecret = {wrong}\n"));
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.6\n"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("account.unlock") && run.stderr.contains("2200"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, wrong);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.5"]);
}

#[test]
fn temporary_failures_are_retried_and_object_exists_counts_as_done() {
    let inwx = emulation(None);
    inwx.fail_next("nameserver.createRecord", 2400);
    inwx.fail_next("nameserver.info", 2502);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{NAME}]\nip4 += 192.0.2.2\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(count(&inwx.calls(), "nameserver.createRecord"), 2);

    // "2302 object exists" on a create: the record is there, the run succeeds.
    inwx.fail_next("nameserver.createRecord", 2302);
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{NAME}]\nip4 += 192.0.2.3\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // A failure that persists is reported after a bounded number of attempts.
    for _ in 0..4 {
        inwx.fail_next("nameserver.createRecord", 2500);
    }
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{NAME}]\nip4 += 192.0.2.4\n"),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("2500") && run.stderr.contains("zone example.de"),
        "{}",
        run.stderr
    );
    assert!(!inwx.contents(NAME, "A").contains(&"192.0.2.4".to_string()));
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_password() {
    let inwx = emulation(None);
    let wrong = "sentinel-wrong-pass-77c1";
    let (dir, creds) = credentials(&inwx, &format!("passwd = {wrong}\n"));
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.9\n"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("inwx")
            && run.stderr.contains(NAME)
            && run.stderr.contains("2200 Authentication error"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, wrong);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.1"]);

    // The domain's own passwd overrides the default section's.
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{NAME}]\npasswd = {PASS}\nip4 = 192.0.2.9\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.9"]);
    assert_no_secret(&run, PASS);

    // A domain the account does not have.
    let run = update(
        &dir,
        &creds,
        "[domain:www.other.test]\npasswd = x\nip4 = 192.0.2.9\n",
    );
    assert_ne!(run.code, 0);
    let run = update(
        &dir,
        &creds,
        &format!("[domain:www.other.test]\npasswd = {PASS}\nip4 = 192.0.2.9\n"),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("no zone found for www.other.test"),
        "{}",
        run.stderr
    );
}

/// INWX's SOA as its knowledge base describes it: seven fields, the
/// hostmaster as a name. `soa.hostmaster` and `soa.refresh` are written with
/// `nameserver.updateRecord`; INWX counts the serial, one up per change.
#[test]
fn the_soa_hostmaster_and_timers_are_written() {
    let inwx = emulation(None);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{ZONE}]\nsoa.hostmaster = admin@{ZONE}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        inwx.contents(ZONE, "SOA"),
        vec![format!(
            "ns.inwx.de admin.{ZONE} 2024010102 10800 3600 604800 3600"
        )]
    );

    let config = format!("[domain:{ZONE}]\nsoa.refresh = 7200\nsoa.ncttl = 300\n");
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        inwx.served(ZONE, "SOA"),
        vec![format!(
            "ns.inwx.de. admin.{ZONE}. 2024010103 7200 3600 604800 300"
        )]
    );

    // Written as asked: the same keys again change nothing.
    let before = count(&inwx.calls(), "nameserver.updateRecord");
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&inwx.calls(), "nameserver.updateRecord"), before);
}

/// The original's example style: `soa.refresh` in the zone apex section next
/// to the other record keys, and a second section in the same zone. Every
/// record is written, the SOA timer included.
#[test]
fn the_soa_timer_goes_out_with_the_other_records_of_the_zone() {
    let inwx = emulation(None);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let config = format!(
        "[domain:{ZONE}]\nsoa.refresh = 7200\nip4 = 192.0.2.10\nip6 = 2001:db8::10\n\
         mx = mail.{ZONE}:10\ncaa = 0 issue letsencrypt.org\nspf = +mx, -all\n\
         dmarc.p = quarantine\nadsp = all\nacme = token-1\nsrv.imap.tcp.143 = mail.{ZONE}:11:19\n\
         [domain:{NAME}]\nip4 = 192.0.2.11\n"
    );
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let soa = inwx.contents(ZONE, "SOA");
    assert!(soa[0].ends_with(" 7200 3600 604800 3600"), "{soa:?}");
    assert_eq!(inwx.contents(ZONE, "A"), vec!["192.0.2.10"]);
    assert_eq!(inwx.contents(ZONE, "AAAA"), vec!["2001:db8::10"]);
    assert_eq!(inwx.records(ZONE, "MX"), vec![(format!("mail.{ZONE}"), 10)]);
    assert_eq!(
        inwx.contents(ZONE, "CAA"),
        vec!["0 issue \"letsencrypt.org\""]
    );
    assert_eq!(inwx.contents(ZONE, "TXT"), vec!["v=spf1 +mx -all"]);
    assert_eq!(
        inwx.contents(&format!("_dmarc.{ZONE}"), "TXT"),
        vec!["v=DMARC1; p=quarantine"]
    );
    assert_eq!(
        inwx.contents(&format!("_adsp._domainkey.{ZONE}"), "TXT"),
        vec!["dkim=all"]
    );
    assert_eq!(
        inwx.contents(&format!("_acme-challenge.{ZONE}"), "TXT"),
        vec!["token-1"]
    );
    assert_eq!(
        inwx.records(&format!("_imap._tcp.{ZONE}"), "SRV"),
        vec![(format!("19 143 mail.{ZONE}"), 11)]
    );
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.11"]);
}

/// Data INWX refuses a record for (a CNAME at the name: RFC 1034 §3.6.2): the
/// other records of the zone still go out, the refused one is named with
/// INWX's answer, the run exits 1, and the old record stays (its delete is
/// held back). With the CNAME gone, the next run sends only what is missing.
#[test]
fn a_refused_record_does_not_block_the_zone_and_keeps_the_old_one() {
    let inwx = emulation(None);
    inwx.add_record(ZONE, NAME, "CNAME", "www.example.net", 0);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let config = format!(
        "[domain:{NAME}]\nip4 = 192.0.2.9\n\
         [domain:{ZONE}]\nmx = mail.{ZONE}:10\n[domain:mail.{ZONE}]\nip4 = 192.0.2.25\n"
    );
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("add {NAME} 300 A 192.0.2.9"))
            && run.stderr.contains("2308 Data management policy violation")
            && run.stderr.contains("has a CNAME record"),
        "{}",
        run.stderr
    );
    assert_eq!(
        inwx.contents(NAME, "A"),
        vec!["192.0.2.1"],
        "the old record stays"
    );
    assert_eq!(
        inwx.contents(&format!("mail.{ZONE}"), "A"),
        vec!["192.0.2.25"]
    );
    assert_eq!(inwx.records(ZONE, "MX"), vec![(format!("mail.{ZONE}"), 10)]);

    inwx.remove_records(NAME, "CNAME");
    let before = inwx.calls();
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.9"]);
    let after = inwx.calls();
    let sent = |method| count(&after, method) - count(&before, method);
    assert_eq!(
        (
            sent("nameserver.createRecord"),
            sent("nameserver.deleteRecord")
        ),
        (1, 1),
        "only the refused add and its held-back delete are sent again"
    );
}

/// A key the chosen provider cannot honour is a configuration error (exit 2,
/// the key and the provider named) found before any request: INWX, the
/// provider of the other section, receives nothing.
#[test]
fn a_key_a_provider_cannot_honour_stops_the_run_before_any_request() {
    let inwx = emulation(None);
    let (dir, creds) = credentials(&inwx, &format!("passwd = {PASS}\n"));
    let run = update(
        &dir,
        &creds,
        &format!(
            "[domain:{NAME}]\nip4 = 192.0.2.9\n\
             [domain:example.org]\nhandler = cloudflare\napitoken = t\nsoa.refresh = 7200\n"
        ),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("soa.refresh: handler cloudflare cannot write an SOA record"),
        "{}",
        run.stderr
    );
    assert!(inwx.calls().is_empty(), "{:?}", inwx.calls());
    assert_eq!(inwx.contents(NAME, "A"), vec!["192.0.2.1"]);
}
