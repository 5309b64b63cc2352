//! The `zonefile` provider's bad input, end to end through the binary: the
//! file is the one a real Knot DNS loads, `reloadcommand` is `knotc
//! zone-reload`. Each failure must name the file (and line) or the zone, and
//! leave the file byte for byte as it was and Knot serving what it served.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cryptdomainmgr::dns::provider::zonefile::ZoneFileProvider;
use cryptdomainmgr::dns::provider::{ChangeSet, DnsProvider, KeyValues};
use cryptdomainmgr::dns::record::{Name, RData, Record};
use support::cdm::{Run, cdm, write_config};
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.test";

fn knot() -> Option<KnotEnv> {
    KnotEnv::start(ZONE, &format!("{}www A 192.0.2.1\n", minimal_zone(ZONE)))
}

/// A config whose `[domain]` edits Knot's zone file with `reload` as the
/// reload command, and sets the A record of www.
fn config(dir: &Path, file: &Path, reload: &str, ip: &str) -> String {
    write_config(
        dir,
        "zonefile.conf",
        &format!(
            "[cdm]\nstatedir = {}\n\n[domain]\nhandler = zonefile\nfile = {}\nreloadcommand = {reload}\n\n\
             [domain:www.example.test]\nip4 = {ip}\n",
            dir.join("state").display(),
            file.display()
        ),
    )
}

fn knotc_reload(knot: &KnotEnv, zone: &str) -> String {
    knot.reload_command(zone)
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn update(dir: &Path, conf: &str) -> Run {
    cdm(dir, &["--update", conf])
}

#[test]
fn a_syntax_error_names_file_and_line_and_nothing_is_written() {
    let Some(knot) = knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = knot.zone_file(ZONE);
    let broken = format!(
        "{}mail A 192.0.2.300\n",
        std::fs::read_to_string(&file).unwrap()
    );
    std::fs::write(&file, &broken).unwrap();
    let line = broken.lines().count();
    let conf = config(dir.path(), &file, &knotc_reload(&knot, ZONE), "192.0.2.9");
    let run = update(dir.path(), &conf);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{}:{line}: A: \"192.0.2.300\" is not an IPv4 address",
            file.display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("zonefile"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);
}

#[test]
fn a_read_only_file_is_left_alone() {
    let Some(knot) = knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = knot.zone_file(ZONE);
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let conf = config(dir.path(), &file, &knotc_reload(&knot, ZONE), "192.0.2.9");
    let run = update(dir.path(), &conf);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("zone {ZONE}: {} is read-only", file.display())),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);

    // A file that does not exist, or a directory given as the file.
    for missing in [dir.path().join("nosuch.zone"), dir.path().to_path_buf()] {
        let conf = config(dir.path(), &missing, "true", "192.0.2.9");
        let run = update(dir.path(), &conf);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("cannot read {}", missing.display())),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_failing_reload_command_restores_the_file_and_the_next_run_finishes() {
    let Some(knot) = knot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = knot.zone_file(ZONE);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read_to_string(&file).unwrap();

    // knotc fails: Knot has no zone of that name.
    let wrong = knotc_reload(&knot, "nosuch.test");
    let run = update(dir.path(), &config(dir.path(), &file, &wrong, "192.0.2.9"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    for part in [
        "zonefile: zone example.test: reload command: ",
        "zone-reload nosuch.test failed (exit status 1): ",
        "no such zone",
        "the file was restored to its previous text",
    ] {
        assert!(
            run.stderr.contains(part),
            "{part:?} missing in\n{}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);

    // With the right command the same change goes through.
    let right = knotc_reload(&knot, ZONE);
    let run = update(dir.path(), &config(dir.path(), &file, &right, "192.0.2.9"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.9"]);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640, "mode kept");
}

#[test]
fn bad_keys_are_config_errors_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("handler = zonefile\n", "file: missing"),
        (
            "handler = zonefile\nfile = /x.zone\nreloadcommand = knotc 'zone-reload\n",
            "reloadcommand: unbalanced quotes",
        ),
        (
            "handler = zonefile\nfile = /x.zone\nzone = bad..name\n",
            "zone: not a zone name",
        ),
    ];
    for (keys, what) in cases {
        let conf = write_config(
            dir.path(),
            "bad.conf",
            &format!("[domain:www.example.test]\n{keys}ip4 = 192.0.2.1\n"),
        );
        let run = update(dir.path(), &conf);
        assert_eq!(run.code, 2, "{keys}: {}", run.stderr);
        assert!(
            run.stderr.contains("bad.conf:") && run.stderr.contains(what),
            "{keys}: expected {what:?} in\n{}",
            run.stderr
        );
    }
}

/// Through the provider directly: a name outside the file's zone has no zone
/// here, and a file without `$ORIGIN` is read with the configured `zone`.
#[tokio::test]
async fn zone_lookup_and_the_configured_origin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.example");
    std::fs::write(
        &file,
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n  NS ns1\nns1 A 192.0.2.53\n",
    )
    .unwrap();
    let keys = |zone: Option<&str>| {
        let mut keys = KeyValues::from([("file".to_string(), file.display().to_string())]);
        if let Some(zone) = zone {
            keys.insert("zone".into(), zone.into());
        }
        keys
    };
    let without = ZoneFileProvider::from_keys(&keys(None)).unwrap();
    let err = without
        .find_zone(&Name::parse("www.example.org").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "{}:2: relative name \"@\" but no $ORIGIN",
            file.display()
        )),
        "{err}"
    );
    let with = ZoneFileProvider::from_keys(&keys(Some("example.org"))).unwrap();
    let zone = with
        .find_zone(&Name::parse("a.b.example.org").unwrap())
        .await
        .unwrap();
    assert_eq!(zone.as_str(), "example.org");
    let err = with
        .find_zone(&Name::parse("example.com").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the file holds zone example.org"),
        "{err}"
    );
}

/// The zone's nameservers come from the file: in-zone NS names by the file's
/// own addresses, others through the system resolver.
#[tokio::test]
async fn nameservers_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.zone");
    std::fs::write(
        &file,
        "$ORIGIN example.org.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n\
         @ NS ns1\n@ NS localhost.\nns1 A 192.0.2.53\nns1 AAAA 2001:db8::53\n",
    )
    .unwrap();
    let keys = KeyValues::from([("file".to_string(), file.display().to_string())]);
    let provider = ZoneFileProvider::from_keys(&keys).unwrap();
    let servers = cryptdomainmgr::dns::authoritative::zone_nameservers(
        &provider,
        &Name::parse("example.org").unwrap(),
    )
    .await
    .unwrap();
    let addrs: Vec<std::net::SocketAddr> = servers.iter().flat_map(|s| s.addrs.clone()).collect();
    let text: Vec<String> = addrs.iter().map(|s| s.to_string()).collect();
    assert_eq!(servers[0].host.as_str(), "ns1.example.org", "{servers:?}");
    assert!(text.contains(&"192.0.2.53:53".to_string()), "{text:?}");
    assert!(text.contains(&"[2001:db8::53]:53".to_string()), "{text:?}");
    assert!(
        addrs.iter().any(|s| s.ip().is_loopback()),
        "localhost resolved: {text:?}"
    );
}

/// A change Knot refuses to load (a CNAME next to other data at one name)
/// makes `knotc zone-reload` fail: the file is put back and Knot keeps serving
/// the zone as it was.
#[tokio::test]
async fn a_file_the_server_refuses_is_put_back() {
    let Some(knot) = knot() else { return };
    let file = knot.zone_file(ZONE);
    let before = std::fs::read_to_string(&file).unwrap();
    let keys = KeyValues::from([
        ("file".to_string(), file.display().to_string()),
        ("reloadcommand".to_string(), knotc_reload(&knot, ZONE)),
    ]);
    let provider = ZoneFileProvider::from_keys(&keys).unwrap();
    let zone = Name::parse(ZONE).unwrap();
    let cname = Record::new(
        Name::parse("www.example.test").unwrap(),
        300,
        RData::Cname(Name::parse("other.example.net").unwrap()),
    );
    let changes = ChangeSet {
        adds: vec![cname],
        deletes: vec![],
    };
    let err = provider.apply(&zone, &changes).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the file was restored to its previous text"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);
    assert!(knot.dig("www.example.test", "CNAME").is_empty());
}
