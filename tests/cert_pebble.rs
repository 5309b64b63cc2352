//! Certificates end to end: the binary against a real Pebble (Let's Encrypt's
//! test CA) that validates DNS-01 against a real Knot, both started by the test.
//! Assertions are on what lands on disk (checked with openssl), what Knot
//! serves, and what Pebble saw (its request log), not on our own log.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::cdm::{cdm, write_config};
use support::cycle::CycleEnv as Env;

fn openssl(args: &[&str]) -> String {
    support::openssl(Path::new("."), args)
}

/// Checks the deployed files of `name`: chain verifies against Pebble's root,
/// SANs, key matches certificate, key mode 0600. Returns the serial.
async fn check_deployed(env: &Env, name: &str, sans: &[&str]) -> String {
    let dir = env.dest().join(name);
    let root = env.dir.path().join("root.pem");
    std::fs::write(&root, env.pebble.root_pem().await).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let verify = openssl(&[
        "verify",
        "-CAfile",
        &root.display().to_string(),
        "-untrusted",
        &p("chain.pem"),
        &p("cert.pem"),
    ]);
    assert!(verify.contains(": OK"), "{verify}");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("fullchain.pem"), read("cert.pem") + &read("chain.pem"));
    let ext = openssl(&[
        "x509",
        "-in",
        &p("cert.pem"),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    for san in sans {
        assert!(
            ext.contains(&format!("DNS:{san}")),
            "{san} missing in {ext}"
        );
    }
    let cert_key = openssl(&["x509", "-in", &p("cert.pem"), "-noout", "-pubkey"]);
    let key = openssl(&["pkey", "-in", &p("privkey.pem"), "-pubout"]);
    assert_eq!(cert_key, key, "the key does not match the certificate");
    let mode = std::fs::metadata(dir.join("privkey.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "privkey.pem mode");
    openssl(&["x509", "-in", &p("cert.pem"), "-noout", "-serial"])
        .trim()
        .to_string()
}

fn no_challenges_left(env: &Env, names: &[&str]) {
    for name in names {
        assert!(
            env.knot
                .dig(&format!("_acme-challenge.{name}"), "TXT")
                .is_empty(),
            "challenge record left at {name}"
        );
    }
}

#[tokio::test]
async fn full_cycle_for_two_certificates() {
    let Some(env) = Env::start(&[]) else { return };
    let conf = env.config(
        "\n[cert:web]\n[cert:api]\n\
         [domain:www.example.test]\ncert = web\n\
         [domain:mail.example.test]\ncert = web\n\
         [domain:api.example.test]\ncert = api\n",
    );

    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.orders(), 2);
    let status = env.run(&["--status", &conf]);
    assert!(
        status
            .stdout
            .contains("certificate [cert:web] for www.example.test, mail.example.test"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("  current: none"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("  prepared: serial "),
        "{}",
        status.stdout
    );
    no_challenges_left(
        &env,
        &["www.example.test", "mail.example.test", "api.example.test"],
    );
    assert!(!env.dest().exists(), "prepare deploys nothing");

    // A second prepare keeps the fresh certificates: no new order.
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.orders(), 2);

    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = check_deployed(
        &env,
        "www.example.test",
        &["www.example.test", "mail.example.test"],
    )
    .await;
    assert_eq!(
        check_deployed(
            &env,
            "mail.example.test",
            &["www.example.test", "mail.example.test"]
        )
        .await,
        first
    );
    check_deployed(&env, "api.example.test", &["api.example.test"]).await;

    // Forced renewal, rollover to the new certificate, cleanup of the old one.
    let run = env.run(&["--prepare", "--force", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.orders(), 4);
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let second = check_deployed(
        &env,
        "www.example.test",
        &["www.example.test", "mail.example.test"],
    )
    .await;
    assert_ne!(first, second, "rollover deployed the new certificate");
    let versions = |name: &str| {
        std::fs::read_dir(env.dest().join(name))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with("..") && e.file_name() != "..data"
            })
            .count()
    };
    assert_eq!(
        versions("www.example.test"),
        2,
        "old version kept until cleanup"
    );
    let issued_dirs = |section: &str| {
        std::fs::read_dir(env.dir.path().join("state/certs").join(section))
            .unwrap()
            .count()
    };
    assert_eq!(issued_dirs("web"), 2);

    let run = env.run(&["--cleanup", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(versions("www.example.test"), 1);
    assert_eq!(
        issued_dirs("web"),
        1,
        "only the current certificate is kept"
    );
    assert_eq!(
        check_deployed(&env, "www.example.test", &["www.example.test"]).await,
        second
    );
    no_challenges_left(
        &env,
        &["www.example.test", "mail.example.test", "api.example.test"],
    );

    // Changed names: a new certificate even though the current one is fresh.
    let conf = env.config(
        "\n[cert:web]\n[cert:api]\n\
         [domain:www.example.test]\ncert = web\n\
         [domain:api.example.test]\ncert = api\n",
    );
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.orders(), 5, "only the certificate whose names changed");
}

#[tokio::test]
async fn issuance_survives_rejected_nonces() {
    let Some(env) = Env::start(&[("PEBBLE_WFE_NONCEREJECT", "50")]) else {
        return;
    };
    let conf = env.config("\n[cert:web]\n[domain:www.example.test]\ncert = web\n");
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    check_deployed(&env, "www.example.test", &["www.example.test"]).await;
}

#[tokio::test]
async fn failures_leave_the_current_certificate_untouched() {
    let Some(mut env) = Env::start(&[]) else {
        return;
    };
    let conf = env.config("\n[cert:web]\n[domain:www.example.test]\ncert = web\n");
    assert_eq!(env.run(&["--prepare", &conf]).code, 0);
    assert_eq!(env.run(&["--rollover", &conf]).code, 0);
    let serial = check_deployed(&env, "www.example.test", &["www.example.test"]).await;
    let snapshot =
        |env: &Env| std::fs::read(env.dest().join("www.example.test/fullchain.pem")).unwrap();
    let deployed = snapshot(&env);

    // A wrong TSIG secret: the challenge cannot be published.
    let wrong = env
        .base()
        .replace(env.knot.secret(), "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCE=");
    let bad = write_config(
        env.dir.path(),
        "bad.conf",
        &format!("{wrong}\n[cert:web]\n[domain:www.example.test]\ncert = web\n"),
    );
    let run = env.run(&["--prepare", "--force", &bad]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("TSIG"), "{}", run.stderr);
    assert!(!run.stderr.contains("d3Jvbmcgc2VjcmV0"), "secret logged");

    // The CA unreachable.
    let unreachable = env.base().replace(
        &env.pebble.directory_url(),
        &format!("https://127.0.0.1:{}/dir", support::free_port()),
    );
    let bad = write_config(
        env.dir.path(),
        "bad.conf",
        &format!("{unreachable}\n[cert:web]\n[domain:www.example.test]\ncert = web\n"),
    );
    let run = env.run(&["--prepare", "--force", &bad]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);

    // The DNS server stopped.
    env.knot.stop();
    let run = env.run(&["--prepare", "--force", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    // Nothing was prepared, nothing at the destination changed.
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(snapshot(&env), deployed);
    assert_eq!(
        check_deployed(&env, "www.example.test", &["www.example.test"]).await,
        serial
    );
}

#[tokio::test]
async fn caa_auto_publishes_the_ca_of_the_certificate() {
    let Some(env) = Env::start(&[]) else { return };
    // Pebble's directory names no caaIdentities: a clear error, no CAA record.
    let conf = env.config(
        "\n[cert:web]\n[domain:www.example.test]\ncert = web\ncaa = auto\nip4 = 192.0.2.1\n",
    );
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("caaIdentities"), "{}", run.stderr);
    assert!(env.knot.dig("www.example.test", "CAA").is_empty());
    assert_eq!(
        env.knot.dig("www.example.test", "A"),
        vec!["192.0.2.1"],
        "other keys applied"
    );
    // A Let's Encrypt certificate: letsencrypt.org, known without asking the CA.
    let conf = env.config(
        "\n[cert:web]\nca = letsencrypt-staging\n[domain:www.example.test]\ncert = web\ncaa = auto, 0 iodef mailto:sec@example.test\n",
    );
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut caa = env.knot.dig("www.example.test", "CAA");
    caa.sort();
    assert_eq!(
        caa,
        vec![
            "0 iodef \"mailto:sec@example.test\"",
            "0 issue \"letsencrypt.org\""
        ]
    );
}

#[test]
fn a_cert_no_domain_lists_warns_and_unknown_cert_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[cdm]\nstatedir = {}\n[cert:lonely]\nkeytype = ecdsa-p256\n",
        dir.path().display()
    );
    let run = cdm(
        Path::new(dir.path()),
        &["--check", "--config-content", &base],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("[cert:lonely] is not listed"),
        "{}",
        run.stderr
    );
    let conf = write_config(
        dir.path(),
        "c.conf",
        &format!(
            "{base}[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = nosuch\n"
        ),
    );
    let run = cdm(dir.path(), &["--check", &conf]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("c.conf:10: ") && run.stderr.contains("no [cert:nosuch]"),
        "{}",
        run.stderr
    );
}
