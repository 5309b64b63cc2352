//! The `powerdns` provider end to end: the binary's update phase against a real
//! PowerDNS Authoritative server (sqlite3 backend, HTTP API) started by the test;
//! assertions on what PowerDNS serves (`dig`). API faults (HTTP 500, answers
//! that are not the API's JSON) come from a fake HTTP server, since a real
//! PowerDNS does not produce them on demand.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::sync::{Arc, Mutex};

use support::cdm::{Run, cdm, write_config};
use support::http::{HttpServer, Response};
use support::knot::minimal_zone;
use support::pdns::PdnsEnv;
use support::pebble::PebbleEnv;

const ZONE: &str = "example.de";
const NAME: &str = "www.example.de";

fn pdns(extra: &str) -> Option<PdnsEnv> {
    PdnsEnv::start(ZONE, &format!("{}{extra}", minimal_zone(ZONE)))
}

/// A credentials file for `apiurl` and `apikey`, and the directory it is in.
fn credentials(api_url: &str, api_key: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[cdm]\nstatedir = {}\n\n[domain]\nhandler = powerdns\napiurl = {api_url}\napikey = {api_key}\n",
        dir.path().join("state").display()
    );
    let path = write_config(dir.path(), "credentials.conf", &text);
    (dir, path)
}

fn update(dir: &tempfile::TempDir, creds: &str, config: &str) -> Run {
    cdm(dir.path(), &["--update", creds, "--config-content", config])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `"a" "b"` (dig's form of a TXT record) as the joined text `ab`.
fn joined_txt(line: &str) -> String {
    line.trim()
        .trim_matches('"')
        .split("\" \"")
        .collect::<String>()
}

fn assert_no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "the API key appears in the output:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn update_phase_sets_records_and_keeps_the_rest_of_each_rrset() {
    let Some(pdns) = pdns("www A 192.0.2.1\nwww A 192.0.2.2\nwww TXT \"unrelated\"\n") else {
        return;
    };
    let (dir, creds) = credentials(&pdns.api_url(), pdns.api_key());
    let spf: Vec<String> = (1..=20).map(|i| format!("+ip4:198.51.100.{i}")).collect();
    let config = format!(
        "[domain:{NAME}]\nip4 += 192.0.2.3\nip6 = 2001:db8::1\nmx = mail.example.de:20\n\
         caa = 0 issue letsencrypt.org\nspf = {}, -all\n",
        spf.join(", ")
    );

    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sorted(pdns.dig(NAME, "A")),
        vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        "adding one A record keeps the others"
    );
    assert_eq!(pdns.dig(NAME, "AAAA"), vec!["2001:db8::1"]);
    assert_eq!(pdns.dig(NAME, "MX"), vec!["20 mail.example.de."]);
    assert_eq!(pdns.dig(NAME, "CAA"), vec!["0 issue \"letsencrypt.org\""]);
    let txt: Vec<String> = pdns
        .dig(NAME, "TXT")
        .iter()
        .map(|l| joined_txt(l))
        .collect();
    let spf_text = txt
        .iter()
        .find(|t| t.starts_with("v=spf1"))
        .unwrap_or_else(|| panic!("no SPF record served: {txt:?}"));
    assert!(spf_text.len() > 255, "{spf_text}");
    assert!(spf_text.contains("ip4:198.51.100.20") && spf_text.ends_with("-all"));
    assert!(
        txt.contains(&"unrelated".to_string()),
        "other TXT kept: {txt:?}"
    );

    // A second identical run changes nothing: no PATCH, so the serial stays.
    let serial = pdns.dig(ZONE, "SOA");
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pdns.dig(ZONE, "SOA"), serial);

    // Removing one record keeps the others; `= none` deletes the RRset.
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{NAME}]\nip4 -= 192.0.2.1\nip6 = none\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sorted(pdns.dig(NAME, "A")), vec!["192.0.2.2", "192.0.2.3"]);
    assert!(pdns.dig(NAME, "AAAA").is_empty());
    assert_eq!(pdns.dig(NAME, "MX"), vec!["20 mail.example.de."]);
}

#[test]
fn a_name_deep_in_a_delegated_subzone_is_changed_there() {
    // The parent delegates sub.example.de (as a real parent must).
    let parent = format!("{}sub NS ns1.example.de.\n", minimal_zone(ZONE));
    let Some(pdns) = PdnsEnv::start_zones(&[
        (ZONE, &parent),
        ("sub.example.de", &minimal_zone("sub.example.de")),
    ]) else {
        return;
    };
    let (dir, creds) = credentials(&pdns.api_url(), pdns.api_key());
    let deep = "a.b.sub.example.de";
    let run = update(
        &dir,
        &creds,
        &format!("[domain:{deep}]\nip4 = 192.0.2.9\n[domain:x.{ZONE}]\nip4 = 192.0.2.8\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pdns.dig(deep, "A"), vec!["192.0.2.9"]);
    assert_eq!(pdns.dig(&format!("x.{ZONE}"), "A"), vec!["192.0.2.8"]);
}

/// PowerDNS refuses an RRset for its data: an A record next to a CNAME
/// (HTTP 422 "Conflicts with pre-existing RRset"; the zone was loaded with
/// both). The zone's PATCH is refused, so the RRsets go one PATCH each: the
/// others are served, the refused one is named with PowerDNS's answer, the
/// run exits 1, and the name keeps its old A record (the refused REPLACE
/// changed nothing). With the CNAME gone, the next run completes.
#[test]
fn a_refused_rrset_does_not_block_the_zone_and_keeps_the_old_records() {
    let Some(pdns) = pdns("www CNAME www.example.net.\nwww A 192.0.2.1\nmail A 192.0.2.25\n")
    else {
        return;
    };
    let (dir, creds) = credentials(&pdns.api_url(), pdns.api_key());
    let config = format!(
        "[domain:{NAME}]\nip4 = 192.0.2.9\n\
         [domain:{ZONE}]\nmx = mail.{ZONE}:10\n[domain:mail.{ZONE}]\nip4 = 192.0.2.26\n"
    );
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "add {NAME} 300 A 192.0.2.9; delete {NAME} 300 A 192.0.2.1"
        )) && run.stderr.contains("HTTP 422")
            && run.stderr.contains("Conflicts with pre-existing RRset"),
        "{}",
        run.stderr
    );
    assert_eq!(pdns.dig(&format!("mail.{ZONE}"), "A"), vec!["192.0.2.26"]);
    assert_eq!(pdns.dig(ZONE, "MX"), vec![format!("10 mail.{ZONE}.")]);
    assert_eq!(
        pdns.stored(ZONE, NAME, "A"),
        vec!["192.0.2.1"],
        "the old record stays"
    );

    pdns.delete_rrset(ZONE, NAME, "CNAME");
    let run = update(&dir, &creds, &config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pdns.dig(NAME, "A"), vec!["192.0.2.9"]);
    assert_no_secret(&run, pdns.api_key());
}

#[test]
fn a_wrong_api_key_is_a_clear_error_without_the_key() {
    let Some(pdns) = pdns("www A 192.0.2.1\n") else {
        return;
    };
    let wrong = "sentinel-wrong-key-8c1f";
    let (dir, creds) = credentials(&pdns.api_url(), wrong);
    let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.7\n"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("powerdns")
            && run.stderr.contains(NAME)
            && run.stderr.contains("refused the credentials (HTTP 401)")
            && run.stderr.contains("check apikey"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, wrong);
    assert_eq!(pdns.dig(NAME, "A"), vec!["192.0.2.1"]);

    // The right key, given in the domain's own section, overrides the default one.
    let run = update(
        &dir,
        &creds,
        &format!(
            "[domain:{NAME}]\napikey = {}\nip4 = 192.0.2.7\n",
            pdns.api_key()
        ),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pdns.dig(NAME, "A"), vec!["192.0.2.7"]);
}

#[test]
fn a_zone_the_server_does_not_have_is_a_clear_error() {
    let Some(pdns) = pdns("") else {
        return;
    };
    let (dir, creds) = credentials(&pdns.api_url(), pdns.api_key());
    let run = update(&dir, &creds, "[domain:www.other.test]\nip4 = 192.0.2.7\n");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("no zone found for www.other.test") && run.stderr.contains("powerdns"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, pdns.api_key());
}

/// A fake PowerDNS API: answers the zone list and the zone as given, PATCH with
/// `patch`; records the methods it received.
fn fake_api(
    zones: Response,
    zone: Response,
    patch: Response,
) -> (HttpServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = HttpServer::start(move |request| {
        log.lock().unwrap().push(request.method.clone());
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/api/v1/servers/localhost/zones") => zones.clone(),
            ("GET", _) => zone.clone(),
            _ => patch.clone(),
        }
    });
    (server, seen)
}

#[test]
fn api_faults_are_clear_errors_and_change_nothing() {
    let key = "sentinel-fake-key-51e2";
    let zone_list = Response::json(
        200,
        &serde_json::json!([{"id": "example.de.", "name": "example.de."}]),
    );
    let zone = Response::json(
        200,
        &serde_json::json!({"name": "example.de.", "rrsets": [
            {"name": "www.example.de.", "type": "A", "ttl": 300,
             "records": [{"content": "192.0.2.1", "disabled": false}]}
        ]}),
    );
    let cases = [
        (
            Response::text(500, "Internal Server Error"),
            zone.clone(),
            Response::text(500, ""),
            "answered HTTP 500 to listing zones for www.example.de: Internal Server Error",
            false,
        ),
        (
            zone_list.clone(),
            Response::text(200, "<html>not json</html>"),
            Response::text(204, ""),
            "not the expected JSON",
            false,
        ),
        (
            zone_list.clone(),
            zone.clone(),
            Response::json(500, &serde_json::json!({"error": "Backend error"})),
            "answered HTTP 500 to changing zone example.de: Backend error",
            true,
        ),
    ];
    for (zones, zone, patch, expected, patched) in cases {
        let (server, seen) = fake_api(zones, zone, patch);
        let (dir, creds) = credentials(&server.url(), key);
        let run = update(&dir, &creds, &format!("[domain:{NAME}]\nip4 = 192.0.2.7\n"));
        assert_ne!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains(expected) && run.stderr.contains("powerdns"),
            "expected {expected:?} in\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(NAME) || run.stderr.contains("zone example.de"),
            "{}",
            run.stderr
        );
        assert_no_secret(&run, key);
        assert_eq!(
            seen.lock().unwrap().iter().any(|m| m == "PATCH"),
            patched,
            "a PATCH is sent only when the zone was read"
        );
    }
}

#[test]
fn a_certificate_is_issued_through_powerdns() {
    let Some(pdns) = pdns("") else {
        return;
    };
    let Some(pebble) = PebbleEnv::start(Some(pdns.dns_addr())) else {
        return;
    };
    let (dir, creds) = credentials(&pdns.api_url(), pdns.api_key());
    let config = format!(
        "[domain]\nnameservers = 127.0.0.1:{}\n\
         [cert:web]\nca = {}\ncacert = {}\nkeytype = ecdsa-p256\ndestination = {}\n\
         [domain:{NAME}]\ncert = web\n",
        pdns.dns_port(),
        pebble.directory_url(),
        pebble.ca_cert_path().display(),
        dir.path().join("certs").display()
    );
    let run = cdm(
        dir.path(),
        &["--prepare", &creds, "--config-content", &config],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pebble.log().matches("POST /order-plz").count(), 1);
    let status = cdm(
        dir.path(),
        &["--status", &creds, "--config-content", &config],
    );
    assert!(
        status.stdout.contains("  prepared: serial "),
        "Pebble validated the challenge and issued: {}",
        status.stdout
    );
    assert!(
        pdns.dig(&format!("_acme-challenge.{NAME}"), "TXT")
            .is_empty(),
        "the challenge record is removed"
    );
    assert_no_secret(&run, pdns.api_key());
}
