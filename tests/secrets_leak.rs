//! Secrets never leak: sentinel secrets (TSIG secret, PowerDNS API key, INWX
//! password and TOTP secret, ACME EAB key) go through successful runs and every
//! failure path at the highest verbosity, against real servers (Knot, Pebble,
//! PowerDNS) or emulations of documented APIs (INWX, a CA rejecting the
//! account). Then stdout, stderr, `state.json` and every file the program wrote
//! are searched for each sentinel, and for "PRIVATE KEY" outside key files.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::acme_script::{directory, nonce, serve};
use support::cdm::{Run, cdm};
use support::cycle::CycleEnv;
use support::inwx::InwxEmulation;
use support::pdns::PdnsEnv;
use support::{random_secret, walk};

/// Fails when a sentinel appears in the run's output or in any file under
/// `dir` other than the configuration files, or when a private key appears
/// outside a 0600 key file.
fn assert_no_leak(run: &Run, dir: &Path, sentinels: &[&str]) {
    for sentinel in sentinels {
        assert!(
            !run.stdout.contains(sentinel),
            "stdout shows {sentinel}:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(sentinel),
            "stderr shows {sentinel}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));
    for path in walk(dir) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || path.extension().is_some_and(|e| e == "conf") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for sentinel in sentinels {
            assert!(
                !text.contains(sentinel),
                "{} holds {sentinel}",
                path.display()
            );
        }
        if text.contains("PRIVATE KEY") {
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(
                (name.ends_with(".pem") || name.ends_with(".key"))
                    && meta.permissions().mode() & 0o777 == 0o600,
                "a private key in {}",
                path.display()
            );
        }
    }
}

/// Runs `--update` (which must succeed exactly when `ok`) and `--check` at
/// `-vv` with `conf`, and checks neither leaks a sentinel.
fn update_and_check(dir: &Path, conf: &str, ok: bool, sentinels: &[&str]) {
    for phase in ["--update", "--check"] {
        let run = cdm(dir, &[phase, "-vv", conf]);
        assert_eq!(
            run.code == 0,
            ok || phase == "--check",
            "{phase}: {}",
            run.stderr
        );
        assert_no_leak(&run, dir, sentinels);
    }
}

fn write_private(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[test]
fn tsig_secret_through_a_full_cycle_and_a_rejected_key() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let secret = env.knot.secret().to_string();
    let conf = env.config(
        "\n[cert:web]\n[domain:www.example.test]\ncert = web\nip4 = 192.0.2.1\ntlsa.tcp.443 = auto:3:1:1\n",
    );
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    for phase in [
        "--update",
        "--prepare",
        "--rollover",
        "--cleanup",
        "--status",
        "--check",
    ] {
        let run = cdm(env.dir.path(), &[phase, "--force", "-vv", &conf]);
        assert_no_leak(&run, env.dir.path(), &[&secret]);
    }
    assert_eq!(env.knot.dig("www.example.test", "A"), vec!["192.0.2.1"]);

    // A key the server does not know: BADSIG on every path.
    let wrong = random_secret();
    let bad = write_private(
        env.dir.path(),
        "bad.conf",
        &std::fs::read_to_string(&conf)
            .unwrap()
            .replace(&secret, &wrong),
    );
    for phase in ["--update", "--prepare", "--rollover", "--cleanup"] {
        let run = cdm(env.dir.path(), &[phase, "--force", "-vv", &bad]);
        if phase == "--update" || phase == "--prepare" {
            assert_ne!(run.code, 0, "{phase} with a wrong key succeeded");
        }
        assert_no_leak(&run, env.dir.path(), &[&secret, &wrong]);
    }
}

#[test]
fn powerdns_api_key_good_and_rejected() {
    let Some(pdns) = PdnsEnv::start("example.de", &support::knot::minimal_zone("example.de"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = pdns.api_key().to_string();
    let wrong = format!("sentinel-{}", random_secret());
    for (api_key, ok) in [(key.as_str(), true), (wrong.as_str(), false)] {
        let conf = write_private(
            dir.path(),
            "pdns.conf",
            &format!(
                "[cdm]\nstatedir = {}\n[domain]\nhandler = powerdns\napiurl = {}\napikey = {api_key}\n[domain:www.example.de]\nip4 = 192.0.2.7\n",
                dir.path().join("state").display(),
                pdns.api_url()
            ),
        );
        update_and_check(dir.path(), &conf, ok, &[&key, &wrong]);
    }
    assert_eq!(pdns.dig("www.example.de", "A"), vec!["192.0.2.7"]);
}

#[test]
fn inwx_password_and_totp_secret_good_and_rejected() {
    const PASS: &str = "sentinel-pass-5be1c0";
    const TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const WRONG_TOTP: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";
    let inwx = InwxEmulation::start("cdm-user", PASS, Some(TOTP));
    inwx.add_domain("example.de");
    let dir = tempfile::tempdir().unwrap();
    for (pass, totp, ok) in [
        (PASS, TOTP, true),
        ("sentinel-wrong-pass-77", TOTP, false),
        (PASS, WRONG_TOTP, false),
    ] {
        let conf = write_private(
            dir.path(),
            "inwx.conf",
            &format!(
                "[cdm]\nstatedir = {}\n[domain]\nhandler = inwx\nuser = cdm-user\npasswd = {pass}\nsharedsecret = {totp}\napiurl = {}\n[domain:www.example.de]\nip4 = 192.0.2.9\n",
                dir.path().join("state").display(),
                inwx.url()
            ),
        );
        update_and_check(
            dir.path(),
            &conf,
            ok,
            &[PASS, TOTP, WRONG_TOTP, "sentinel-wrong-pass-77"],
        );
    }
    assert_eq!(inwx.contents("www.example.de", "A"), vec!["192.0.2.9"]);
}

#[test]
fn eab_key_when_the_ca_rejects_the_account() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let (base, _) = serve(|method, path, _, base| {
        match (method, path) {
        ("GET", "/dir") => directory(base),
        (_, "/nonce") => nonce(),
        _ => (
            400,
            vec![
                ("Content-Type".into(), "application/problem+json".into()),
                ("Replay-Nonce".into(), "n2".into()),
            ],
            br#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"external account binding is invalid","status":400}"#.to_vec(),
        ),
    }
    });
    // base64url, as CAs hand out EAB keys.
    let hmac = "c2VudGluZWwtZWFiLWhtYWMta2V5LWZvci10ZXN0cw";
    let mut text = std::fs::read_to_string(env.config("")).unwrap();
    text = text.replace(&env.pebble.directory_url(), &format!("{base}/dir"));
    text.push_str(&format!(
        "\n[cert:web]\neabkid = kid-1\neabhmackey = {hmac}\n[domain:www.example.test]\ncert = web\n"
    ));
    let conf = write_private(env.dir.path(), "eab.conf", &text);
    for phase in ["--prepare", "--check", "--status"] {
        let run = cdm(env.dir.path(), &[phase, "-vv", &conf]);
        if phase == "--prepare" {
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(
                run.stderr.contains("external account binding"),
                "{}",
                run.stderr
            );
        }
        assert_no_leak(&run, env.dir.path(), &[hmac, env.knot.secret()]);
    }
}

#[test]
fn a_readable_config_with_a_secret_is_named_in_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.conf");
    std::fs::write(
        &path,
        "[domain]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0c2VjcmV0\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = cdm(dir.path(), &["--check", path.to_str().unwrap()]);
    assert!(
        run.stderr.contains(path.to_str().unwrap()) && run.stderr.contains("readable by others"),
        "{}",
        run.stderr
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = cdm(dir.path(), &["--check", path.to_str().unwrap()]);
    assert!(!run.stderr.contains("readable by others"), "{}", run.stderr);
}
