//! Configuration files in the Python original's style (tests/fixtures/original/:
//! split credentials, certificates with TLSA, DKIM, DH parameters, services)
//! through the binary: they work, or each message says exactly what to change.
//! The SOA hostmaster with a dot before the `@` is checked against a real Knot.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::PathBuf;

use support::cdm::{Run, cdm, write_config};
use support::knot::{KnotEnv, minimal_zone};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/original")
        .join(name)
        .display()
        .to_string()
}

fn check(files: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--check".to_string()];
    args.extend(files.iter().map(|f| fixture(f)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cdm(dir.path(), &args)
}

/// A line of the log at `level` holding every one of `parts`.
fn logged(run: &Run, level: &str, parts: &[&str]) -> bool {
    run.stderr
        .lines()
        .any(|l| l.contains(level) && parts.iter().all(|p| l.contains(p)))
}

/// Credentials and domains together are a valid configuration, and `--check`
/// tells what it does in sentences.
#[test]
fn the_originals_split_files_work_together() {
    let run = check(&["credentials.conf", "mydomains.conf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for wanted in [
        "What this configuration does",
        "mail.example.com\n  DNS through inwx",
        "SOA of zone example.com: hostmaster set to first.last@example.com",
        "A at mail.example.com: exactly this host's public IPv4 address, 192.0.2.3",
        "AAAA at mail.example.com: adds 2001:db8::30 (keeps the others)",
        "TLSA at _443._tcp.mail.example.com: 3 1 1 for the certificate(s) maincert",
        "TLSA at _443._tcp.mail.example.com: 2 0 1",
        "TLSA at _25._tcp.mail.example.com: 3 1 1",
        "DKIM at mainkey_<unix time>._domainkey.mail.example.com: the key of [dkim:maindkim]",
        "Certificate [cert:maincert]: mail.example.com from https://acme-staging-v02.api.letsencrypt.org/directory, rsa-4096 key",
        "services reloaded after it: [service:apache2], [service:postfix], [service:dovecot]",
        "DKIM key [dkim:maindkim]: rsa-2048 key, selectors mainkey_<unix time>",
        "DH parameters [dhparam:dh2048]: 2048 bits",
        "Service [service:rspamd]: systemctl reload rspamd, after a rollover of DKIM key maindkim",
        "The configuration as interpreted",
    ] {
        assert!(
            run.stdout.contains(wanted),
            "missing {wanted:?}:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("myPassword1234"), "{}", run.stdout);
    // The original's signingConfTemporaryFile is known and explained.
    assert!(
        logged(&run, "WARNING", &["signingconftemporaryfile is not needed"]),
        "{}",
        run.stderr
    );
}

/// The domains file alone: the missing password names the file read and
/// suggests giving the credentials file after it; a domains file without
/// even the handler says the same of the handler.
#[test]
fn missing_credentials_point_at_a_credentials_file() {
    let run = check(&["mydomains.conf"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let domains = fixture("mydomains.conf");
    assert!(
        logged(
            &run,
            "ERROR",
            &[
                "[domain:mail.example.com] passwd: missing (required by handler inwx)",
                &format!("(read: {domains})"),
                "If passwd is kept in a credentials file, give that file too, after these",
                &format!("cryptdomainmgr {domains} /etc/cryptdomainmgr/credentials.conf"),
            ]
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);

    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "domains.conf",
        "[domain:www.example.com]
ip4 = auto
",
    );
    let run = cdm(dir.path(), &["--check", &conf]);
    assert!(
        logged(
            &run,
            "WARNING",
            &[
                "[domain:www.example.com] has no handler",
                &format!("(read: {conf})"),
                "If handler is kept in a credentials file, give that file too",
            ]
        ),
        "{}",
        run.stderr
    );
}

/// The original's traefik keys: configdir is asked for, from dirext where it
/// names a directory.
#[test]
fn traefik_docker_keys_say_what_to_write() {
    let run = check(&["credentials.conf", "traefik.conf"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        logged(
            &run,
            "ERROR",
            &[
                "traefik.conf:7: [service:traefik] handler traefik needs configdir",
                "the original's container, dirint and dirext (a docker lookup) have no equivalent: write configdir = DIR, e.g. configdir = /srv/traefik/configuration"
            ]
        ),
        "{}",
        run.stderr
    );
    assert!(
        logged(
            &run,
            "ERROR",
            &[
                "traefik.conf:14: [service:mywebproxy] handler traefik needs configdir",
                "the original's dirext names it: write configdir = /srv/traefik/configuration"
            ]
        ),
        "{}",
        run.stderr
    );
}

/// dehydrated's flags: harmless ones are ignored with a note, the others
/// refused naming what to use.
#[test]
fn dehydrated_flags_are_explained() {
    let run = check(&["dehydrated.conf"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        logged(
            &run,
            "ERROR",
            &[
                "dehydrated.conf:7: [cert:algo] extraflags --algo is dehydrated's",
                "write keytype = rsa, ecdsa-p256 or ecdsa-p384"
            ]
        ),
        "{}",
        run.stderr
    );
    assert!(
        logged(
            &run,
            "ERROR",
            &["dehydrated.conf:10: [cert:ocsp] extraflags --ocsp"]
        ),
        "{}",
        run.stderr
    );
    // Without the refused sections the harmless flags only warn.
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        "harmless.conf",
        "[cert:harmless]\nextraflags = --staging, -fc, keep-going\n",
    );
    let run = cdm(dir.path(), &["--check", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for flag in ["-fc is not needed", "--keep-going is not needed"] {
        assert!(
            logged(&run, "WARNING", &[flag, "it is ignored"]),
            "{}",
            run.stderr
        );
    }
}

/// Keys and sections of the original without an equivalent are ignored, each
/// with what to write instead.
#[test]
fn old_keys_and_sections_are_ignored_with_a_hint() {
    let run = check(&["credentials.conf", "oldkeys.conf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (line, parts) in [
        (
            6,
            vec!["unknown key \"depends\" in [cdm]", "the order is fixed"],
        ),
        (
            8,
            vec!["[cdm:test]: [cdm] takes no name", "write them in [cdm]"],
        ),
        (
            11,
            vec![
                "unknown module \"certificate\"",
                "write [cert] and [cert:NAME]",
            ],
        ),
        (
            16,
            vec![
                "unknown key \"source\" in [cert:maincert]",
                "destination/NAME/",
            ],
        ),
        (
            17,
            vec![
                "unknown key \"certname\"",
                "cert.pem, chain.pem, fullchain.pem",
            ],
        ),
        (
            20,
            vec![
                "unknown key \"certificate\" in [domain:www.example.com]",
                "write cert = NAME",
            ],
        ),
    ] {
        let at = format!("oldkeys.conf:{line}:");
        let mut all = vec![at.as_str()];
        all.extend(parts);
        assert!(logged(&run, "WARNING", &all), "{all:?}:\n{}", run.stderr);
    }
}

/// `spf = aaaa` (in the original's examples) would break SPF: refused with
/// the replacement.
#[test]
fn an_aaaa_spf_mechanism_is_refused_with_the_replacement() {
    let run = check(&["credentials.conf", "mistakes.conf"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        logged(
            &run,
            "ERROR",
            &[
                "mistakes.conf:4:",
                "\"aaaa\" is not an SPF mechanism",
                "write a"
            ]
        ),
        "{}",
        run.stderr
    );
}

/// `soa.hostmaster = first.last@example.test` reaches a real Knot as the
/// RNAME `first\.last.example.test.`; `soa =` changes nothing.
#[test]
fn a_hostmaster_with_a_dot_is_escaped_in_the_soa() {
    let Some(knot) = KnotEnv::start("example.test", &minimal_zone("example.test")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut base = format!(
        "[cdm]\nstatedir = {}\n[domain]\n",
        dir.path().join("state").display()
    );
    for (key, value) in knot.provider_keys() {
        base.push_str(&format!("{key} = {value}\n"));
    }
    let nothing = write_config(
        dir.path(),
        "nothing.conf",
        &format!("{base}[domain:example.test]\nsoa =\n"),
    );
    let serial = knot.serial("example.test");
    let run = cdm(dir.path(), &["--update", &nothing]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(knot.serial("example.test"), serial, "soa = changed the SOA");

    let conf = write_config(
        dir.path(),
        "soa.conf",
        &format!("{base}[domain:example.test]\nsoa.hostmaster = First.Last@example.test\n"),
    );
    let run = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let soa = knot.dig("example.test", "SOA");
    assert!(
        soa.iter()
            .any(|s| s.contains(" first\\.last.example.test. ")),
        "{soa:?}\n{}",
        run.stderr
    );
    // Read back from the zone, the RNAME is as configured: nothing to change.
    let serial = knot.serial("example.test");
    let again = cdm(dir.path(), &["--update", &conf]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(knot.serial("example.test"), serial, "{}", again.stderr);
    assert!(
        again.stderr.contains("add (exists) SOA"),
        "{}",
        again.stderr
    );
}
