//! The update phase end to end: the binary against a real Knot DNS started by
//! the test. Assertions are on what Knot serves (`dig`), not on our log, except
//! where the log's words are the contract (the original's `add (new)` lines).

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use support::cdm::{HttpAnswer, cdm, write_config};
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.de";
const NAME: &str = "test1234.example.de";

fn knot(extra: &str) -> Option<KnotEnv> {
    KnotEnv::start(ZONE, &format!("{}{extra}", minimal_zone(ZONE)))
}

/// `[cdm]` and `[domain]` sections for this Knot.
fn base_config(knot: &KnotEnv, statedir: &std::path::Path) -> String {
    let mut text = format!("[cdm]\nstatedir = {}\n\n[domain]\n", statedir.display());
    for (key, value) in knot.provider_keys() {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn tutorial_set_add_and_none() {
    let Some(knot) = knot("test1234 A 1.2.3.4\ntest1234 A 6.7.8.9\ntest1234 AAAA 2001:db8::1\n")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ip = HttpAnswer::start(200, "92.60.36.246\n");
    let creds = write_config(
        dir.path(),
        "credentials.conf",
        &base_config(&knot, &dir.path().join("state")),
    );
    let conf = |text: &str| format!("[domain:{NAME}]\nip4lookup = {}\n{text}", ip.url);

    // ip4 = 1.2.3.4,5.6.7.8,auto: exactly these three afterwards.
    let run = cdm(
        dir.path(),
        &[
            "--update",
            &creds,
            "--config-content",
            &conf("ip4 = 1.2.3.4,5.6.7.8,auto"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sorted(knot.dig(NAME, "A")),
        vec!["1.2.3.4", "5.6.7.8", "92.60.36.246"]
    );
    assert_eq!(
        knot.dig(NAME, "AAAA"),
        vec!["2001:db8::1"],
        "other types untouched"
    );
    for line in [
        "INFO      add (exists) A for test1234.example.de : 1.2.3.4",
        "INFO      add (new) A for test1234.example.de : 5.6.7.8",
        "INFO      add (new) A for test1234.example.de : 92.60.36.246",
        "INFO      delete A for test1234.example.de : 6.7.8.9",
    ] {
        assert!(
            run.stderr.contains(line),
            "missing {line:?} in\n{}",
            run.stderr
        );
    }

    // ip4 += 6.5.4.3 deletes nothing.
    let run = cdm(
        dir.path(),
        &[
            "--update",
            &creds,
            "--config-content",
            &conf("ip4 += 6.5.4.3"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sorted(knot.dig(NAME, "A")),
        vec!["1.2.3.4", "5.6.7.8", "6.5.4.3", "92.60.36.246"]
    );

    // ip4 -= removes one.
    let run = cdm(
        dir.path(),
        &[
            "--update",
            &creds,
            "--config-content",
            &conf("ip4 -= 5.6.7.8"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sorted(knot.dig(NAME, "A")),
        vec!["1.2.3.4", "6.5.4.3", "92.60.36.246"]
    );

    // ip4 = none: no A record left, AAAA still there.
    let run = cdm(
        dir.path(),
        &["--update", &creds, "--config-content", &conf("ip4 = none")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(knot.dig(NAME, "A").is_empty());
    assert_eq!(knot.dig(NAME, "AAAA"), vec!["2001:db8::1"]);
}

#[test]
fn a_second_identical_run_changes_nothing() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!(
            "{}\n[domain:www.example.de]\nip4 = 192.0.2.1\nip6 = 2001:db8::1\nmx = mail.example.de\nmx.30 = backup.example.de\n\
             srv.imap.tcp.143 = mail.example.de:11:19\ncaa = 0 issue letsencrypt.org\nspf = +mx, -all\n\
             dmarc.p = reject\ndmarc.rua = mailto:dmarc@example.de\nadsp = all\n",
            base_config(&knot, &dir.path().join("state"))
        ),
    );
    let first = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(knot.dig("www.example.de", "A"), vec!["192.0.2.1"]);
    assert_eq!(knot.dig("www.example.de", "AAAA"), vec!["2001:db8::1"]);
    assert_eq!(
        sorted(knot.dig("www.example.de", "MX")),
        vec!["10 mail.example.de.", "30 backup.example.de."]
    );
    assert_eq!(
        knot.dig("_imap._tcp.www.example.de", "SRV"),
        vec!["11 19 143 mail.example.de."]
    );
    assert_eq!(
        knot.dig("www.example.de", "CAA"),
        vec!["0 issue \"letsencrypt.org\""]
    );
    assert_eq!(
        knot.dig("www.example.de", "TXT"),
        vec!["\"v=spf1 +mx -all\""]
    );
    assert_eq!(
        knot.dig("_dmarc.www.example.de", "TXT"),
        vec!["\"v=DMARC1; p=reject; rua=mailto:dmarc@example.de\""]
    );
    assert_eq!(
        knot.dig("_adsp._domainkey.www.example.de", "TXT"),
        vec!["\"dkim=all\""]
    );

    // Knot raises the serial with every UPDATE it applies: an unchanged serial
    // shows that the second run sent none.
    let serial = knot.serial(ZONE);
    let second = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(knot.serial(ZONE), serial, "the no-op run changed the zone");
    assert!(!second.stderr.contains("add (new)"), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("add (exists) SPF for www.example.de : v=spf1 +mx -all")
    );

    // The state directory and file are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("state"), 0o700);
    assert_eq!(mode("state/state.json"), 0o600);
}

#[test]
fn defaults_inherited_later_files_win_old_style_sections() {
    let Some(knot) = knot("") else { return };
    let dir = tempfile::tempdir().unwrap();
    let first = write_config(
        dir.path(),
        "10-base.conf",
        &format!(
            "{}ip4 = 192.0.2.1\nmx = mail.example.de\n\n[a.example.de]\nip4 += 192.0.2.2\n\n[domain:b.example.de]\nip4 = 192.0.2.9\n",
            base_config(&knot, &dir.path().join("state"))
        ),
    );
    let second = write_config(
        dir.path(),
        "20-override.conf",
        "[domain:b.example.de]\nip4 = 192.0.2.3\n",
    );
    let run = cdm(dir.path(), &["--update", &first, &second]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // a: inherited ip4 and its own ip4 += (different keys), inherited mx.
    assert_eq!(
        sorted(knot.dig("a.example.de", "A")),
        vec!["192.0.2.1", "192.0.2.2"]
    );
    assert_eq!(knot.dig("a.example.de", "MX"), vec!["10 mail.example.de."]);
    // b: the later file's ip4 replaces the earlier one, which replaced the default.
    assert_eq!(knot.dig("b.example.de", "A"), vec!["192.0.2.3"]);
}

#[test]
fn dry_run_prints_and_changes_nothing() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!(
            "{}\n[domain:www.example.de]\nip4 = 192.0.2.1\n",
            base_config(&knot, &dir.path().join("state"))
        ),
    );
    let serial = knot.serial(ZONE);
    let run = cdm(dir.path(), &["--update", "--dry-run", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("add www.example.de 300 A 192.0.2.1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("delete www.example.de 300 A 198.51.100.7"),
        "{}",
        run.stdout
    );
    assert_eq!(knot.dig("www.example.de", "A"), vec!["198.51.100.7"]);
    assert_eq!(knot.serial(ZONE), serial);
    assert!(
        !dir.path().join("state").exists(),
        "a dry run creates no state"
    );
}

#[test]
fn bad_config_exits_2_naming_file_and_line_and_changes_nothing() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(&knot, &dir.path().join("state"));
    let cases = [
        (
            "[domain:www.example.de]\nip4 = 1.2.3.4 # old\n",
            ":2:",
            "not an IP address",
        ),
        (
            "[domain:www.example.de]\nip4 1.2.3.4\n",
            ":2:",
            "key = value",
        ),
        (
            "[domain:www.example.de]\nhandler = nosuch\nip4 = 1.2.3.4\n",
            ":2:",
            "unknown DNS handler",
        ),
        (
            "[domain:www.example.de]\nmx = a:20:30\n",
            ":2:",
            "more fields",
        ),
        (
            "[domain:www.example.de]\nip4 = 1.2.3.4\nip4 = 1.2.3.5\n",
            ":3:",
            "set twice",
        ),
    ];
    let serial = knot.serial(ZONE);
    for (text, line, what) in cases {
        let conf = write_config(dir.path(), "bad.conf", &format!("{base}\n{text}"));
        let offset = base.lines().count() + 1;
        let line_no: usize = line.trim_matches(':').parse::<usize>().unwrap() + offset;
        let run = cdm(dir.path(), &["--update", &conf]);
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("bad.conf:{line_no}: ")) && run.stderr.contains(what),
            "{text}: expected bad.conf:{line_no} and {what:?} in\n{}",
            run.stderr
        );
    }
    assert_eq!(knot.dig("www.example.de", "A"), vec!["198.51.100.7"]);
    assert_eq!(knot.serial(ZONE), serial);
}

#[test]
fn failing_ip_lookup_keeps_the_a_records_and_applies_the_rest() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for answer in [
        HttpAnswer::start(500, "oops"),
        HttpAnswer::start(200, "<html>not an address</html>"),
    ] {
        let conf = write_config(
            dir.path(),
            "c.conf",
            &format!(
                "{}ip4lookup = {}\n\n[domain:www.example.de]\nip4 = auto\nmx = mail.example.de\n",
                base_config(&knot, &dir.path().join("state")),
                answer.url
            ),
        );
        let run = cdm(dir.path(), &["--update", &conf]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("lookup failed"), "{}", run.stderr);
        assert_eq!(
            knot.dig("www.example.de", "A"),
            vec!["198.51.100.7"],
            "A record kept"
        );
        assert_eq!(
            knot.dig("www.example.de", "MX"),
            vec!["10 mail.example.de."],
            "other keys applied"
        );
    }
}

#[test]
fn wrong_tsig_secret_or_dead_server_fail_clearly_and_change_nothing() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(&knot, &dir.path().join("state"));
    let wrong = base.replace(knot.secret(), "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCE=");
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!("{wrong}\n[domain:www.example.de]\nip4 = 192.0.2.1\n"),
    );
    let serial = knot.serial(ZONE);
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("TSIG"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("d3Jvbmcgc2VjcmV0"),
        "the secret must not be logged"
    );
    assert_eq!(knot.dig("www.example.de", "A"), vec!["198.51.100.7"]);
    assert_eq!(knot.serial(ZONE), serial);

    let closed = support::free_port();
    let dead = base.replace(&knot.server(), &format!("127.0.0.1:{closed}"));
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!("{dead}\n[domain:www.example.de]\nip4 = 192.0.2.1\n"),
    );
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{closed}")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_concurrent_run_is_refused() {
    let Some(knot) = knot("www A 198.51.100.7\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let statedir = dir.path().join("state");
    std::fs::create_dir(&statedir).unwrap();
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!(
            "{}\n[domain:www.example.de]\nip4 = 192.0.2.1\n",
            base_config(&knot, &statedir)
        ),
    );
    // Hold the lock as a running cryptdomainmgr would.
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(statedir.join("lock"))
        .unwrap();
    held.try_lock().unwrap();
    std::fs::write(statedir.join("lock"), "4242").unwrap();
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pid 4242"), "{}", run.stderr);
    assert_eq!(knot.dig("www.example.de", "A"), vec!["198.51.100.7"]);
}

#[test]
fn soa_fields_are_set_and_the_serial_increases() {
    let Some(knot) = knot("") else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!(
            "{}\n[domain:example.de]\nsoa.refresh = 7200\nsoa.hostmaster = admin@example.de\nsoa.ncttl = 120\n",
            base_config(&knot, &dir.path().join("state"))
        ),
    );
    let before = knot.serial(ZONE);
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let soa: Vec<String> = knot.dig(ZONE, "SOA")[0]
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(soa[1], "admin.example.de.");
    assert!(soa[2].parse::<u32>().unwrap() > before);
    assert_eq!((soa[3].as_str(), soa[6].as_str()), ("7200", "120"));
}

#[test]
fn next_cycles_the_phases() {
    let dir = tempfile::tempdir().unwrap();
    let content = format!("[cdm]  statedir = {}", dir.path().join("state").display());
    for expected in ["prepare", "rollover", "cleanup", "prepare"] {
        let run = cdm(dir.path(), &["--config-content", &content]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("Running phase: {expected}")),
            "{}",
            run.stderr
        );
    }
    let status = cdm(dir.path(), &["--status", "--config-content", &content]);
    assert!(
        status.stdout.contains("last phase: prepare"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("next phase: rollover"),
        "{}",
        status.stdout
    );
}

/// Regression: zones were looked up once per name (100 names, 100 SOA queries at
/// once overflowed the server's TCP backlog). Now one lookup per zone, and a
/// name below a delegation still lands in its own zone.
#[test]
fn one_zone_lookup_per_zone_and_delegations_respected() {
    let child = "sub.example.de";
    let Some(knot) = KnotEnv::builder()
        .zone(
            ZONE,
            &format!("{}sub NS ns1.example.de.\n", minimal_zone(ZONE)),
        )
        .zone(child, &minimal_zone(child))
        .start()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut text = base_config(&knot, &dir.path().join("state"));
    for name in ["a", "b", "c", "d"] {
        text.push_str(&format!("\n[domain:{name}.example.de]\nip4 = 192.0.2.1\n"));
    }
    text.push_str("\n[domain:x.sub.example.de]\nip4 = 192.0.2.2\n");
    let conf = write_config(dir.path(), "c.conf", &text);
    let child_serial = knot.serial(child);
    let run = cdm(dir.path(), &["--update", "-v", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in ["a", "b", "c", "d"] {
        assert_eq!(
            knot.dig(&format!("{name}.example.de"), "A"),
            vec!["192.0.2.1"]
        );
    }
    assert_eq!(knot.dig("x.sub.example.de", "A"), vec!["192.0.2.2"]);
    assert!(
        knot.serial(child) > child_serial,
        "the child zone was updated"
    );
    let soa_queries = run.stderr.matches("sent QUERY SOA").count();
    assert_eq!(soa_queries, 2, "one SOA lookup per zone:\n{}", run.stderr);
}
