//! `--adopt` through the binary: certificates and keys made by `openssl`, by a
//! real certbot and a real lego run against Pebble, and a DKIM key published
//! in a real Knot become the current material; the next `--auto` renews only
//! when due. Unreadable, expired, mismatched or foreign material is refused
//! with a clear message, and then nothing at all is changed.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::cycle::{CycleEnv, ZONE};
use support::knot::minimal_zone;

const WWW: &str = "www.example.test";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a test key is written.
#[derive(Clone, Copy)]
enum KeyForm {
    /// `openssl ecparam -genkey`: an `EC PARAMETERS` block, then SEC1.
    EcSec1,
    /// `openssl genrsa -traditional`: PKCS#1.
    RsaPkcs1,
}

/// Makes `name`.key in `dir` in `form`.
fn make_key(dir: &Path, name: &str, form: KeyForm) -> PathBuf {
    let file = format!("{name}.key");
    match form {
        KeyForm::EcSec1 => openssl(
            dir,
            &["ecparam", "-name", "prime256v1", "-genkey", "-out", &file],
        ),
        KeyForm::RsaPkcs1 => openssl(dir, &["genrsa", "-traditional", "-out", &file, "2048"]),
    }
    dir.join(file)
}

/// A throw-away CA in `dir` and a certificate for `names`, valid `days`,
/// signed by it for the key `key`: (leaf PEM, CA PEM).
fn make_cert(dir: &Path, key: &Path, names: &[&str], days: u32) -> (String, String) {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "400",
                "-subj",
                "/CN=Adoption Test CA",
            ],
        );
    }
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={}\n", sans.join(",")),
    )
    .unwrap();
    let key = key.display().to_string();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={}", names[0]),
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.pem",
        ],
    );
    (
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap(),
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
    )
}

/// Puts a certificate at `DEST/NAME/` as certbot and the original do: the
/// leaf, the chain and the key (and `fullchain.pem` when `fullchain`).
fn deploy(dest: &Path, name: &str, leaf: &str, ca: &str, key: &Path, fullchain: bool) {
    let dir = dest.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf).unwrap();
    std::fs::write(dir.join("chain.pem"), ca).unwrap();
    if fullchain {
        std::fs::write(dir.join("fullchain.pem"), format!("{leaf}{ca}")).unwrap();
    }
    std::fs::copy(key, dir.join("privkey.pem")).unwrap();
}

fn state(env: &CycleEnv) -> serde_json::Value {
    let text = std::fs::read_to_string(env.dir.path().join("state/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// SHA-256 of a PEM certificate as `openssl x509 -fingerprint` prints it,
/// lower-case without colons (as the state keeps it).
fn fingerprint(dir: &Path, pem: &str) -> String {
    std::fs::write(dir.join("fp.pem"), pem).unwrap();
    openssl_out(
        dir,
        &["x509", "-in", "fp.pem", "-noout", "-fingerprint", "-sha256"],
    )
    .trim()
    .rsplit('=')
    .next()
    .unwrap()
    .replace(':', "")
    .to_ascii_lowercase()
}

/// The public key of a key file, as `openssl pkey` prints it.
fn public_of_key(dir: &Path, key: &Path) -> String {
    openssl_out(dir, &["pkey", "-in", &key.display().to_string(), "-pubout"])
}

fn public_of_cert(dir: &Path, pem: &str) -> String {
    std::fs::write(dir.join("pub.pem"), pem).unwrap();
    openssl_out(dir, &["x509", "-in", "pub.pem", "-noout", "-pubkey"])
}

fn cert_config(env: &CycleEnv) -> String {
    env.config(&format!("\n[cert:web]\n[domain:{WWW}]\ncert = web\n"))
}

/// A certificate and SEC1 key made by openssl (certbot's split layout, no
/// fullchain.pem) become the current material: the state names the
/// certificate, the key in the state directory is the certificate's and
/// 0600, `--auto` orders nothing while it is not due, and orders once it is.
#[test]
fn openssl_material_is_adopted_and_renewed_only_when_due() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let work = env.dir.path().join("openssl");
    std::fs::create_dir_all(&work).unwrap();
    let key = make_key(&work, "leaf", KeyForm::EcSec1);
    let (leaf, ca) = make_cert(&work, &key, &[WWW], 90);
    deploy(&env.dest(), WWW, &leaf, &ca, &key, false);
    let conf = cert_config(&env);

    let dry = env.run(&["--adopt", "--dry-run", &conf]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains("[cert:web] would adopt the certificate at"),
        "{}",
        dry.stderr
    );
    assert!(!env.dir.path().join("state/state.json").exists());

    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "[cert:web] adopted the certificate at {}",
            env.dest().join(WWW).display()
        )) && run.stderr.contains("renewal is due"),
        "{}",
        run.stderr
    );
    let current = &state(&env)["certs"]["web"]["current"];
    assert_eq!(current["fingerprint"], fingerprint(&work, &leaf).as_str());
    let dir = PathBuf::from(current["dir"].as_str().unwrap());
    let kept_key = dir.join("privkey.pem");
    assert_eq!(
        std::fs::metadata(&kept_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&kept_key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(
        public_of_key(&work, &kept_key),
        public_of_cert(&work, &leaf),
        "the kept key is not the certificate's"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("fullchain.pem")).unwrap(),
        format!("{leaf}{ca}")
    );

    // A second --adopt of the same certificate changes nothing.
    let again = env.run(&["--adopt", &conf]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("is already the current one"),
        "{}",
        again.stderr
    );

    let auto = env.run(&["--auto", &conf]);
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert_eq!(env.orders(), 0, "renewed although not due: {}", auto.stderr);

    // 70 of its 90 days later fewer than renewdays (30) are left.
    env.advance(70 * 86_400);
    let due = env.run(&["--auto", &conf]);
    assert_eq!(env.orders(), 1, "{}", due.stderr);
    assert!(due.stderr.contains("it expires in"), "{}", due.stderr);
}

/// The original's layout with an RSA PKCS#1 key and fullchain.pem is adopted
/// with its key converted to PKCS#8.
#[test]
fn rsa_pkcs1_key_in_the_originals_layout_is_adopted() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let work = env.dir.path().join("openssl");
    std::fs::create_dir_all(&work).unwrap();
    let key = make_key(&work, "leaf", KeyForm::RsaPkcs1);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let (leaf, ca) = make_cert(&work, &key, &[WWW], 90);
    deploy(&env.dest(), WWW, &leaf, &ca, &key, true);
    let conf = env.config(&format!(
        "\n[cert:web]\nkeytype = rsa\nkeysize = 2048\n[domain:{WWW}]\ncert = web\n"
    ));
    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let current = &state(&env)["certs"]["web"]["current"];
    assert_eq!(current["key_type"], "rsa-2048");
    let kept = PathBuf::from(current["dir"].as_str().unwrap()).join("privkey.pem");
    assert_eq!(public_of_key(&work, &kept), public_of_cert(&work, &leaf));
    // No key-type note: the configured type is the adopted one.
    assert!(!run.stderr.contains("renews it at once"), "{}", run.stderr);
}

/// Everything that cannot be adopted is refused with a message naming the
/// place and the problem, and nothing is changed: no state, no copied key,
/// the files at the destination as they were.
#[test]
fn bad_material_is_refused_and_nothing_changes() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let work = env.dir.path().join("openssl");
    std::fs::create_dir_all(&work).unwrap();
    let key = make_key(&work, "leaf", KeyForm::EcSec1);
    let other = make_key(&work, "other", KeyForm::EcSec1);
    let (leaf, ca) = make_cert(&work, &key, &[WWW], 90);
    let site = env.dest().join(WWW);
    let conf = cert_config(&env);
    let refused = |what: &str, expected: &str, clock: Option<i64>| {
        let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&site)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
            .collect();
        let mut env_vars = Vec::new();
        if let Some(seconds) = clock {
            env_vars.push((support::cdm::CLOCK, support::cdm::time_in(seconds)));
        }
        let run = support::cdm::cdm_env(env.dir.path(), &["--adopt", &conf], &env_vars);
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected) && run.stderr.contains("nothing was adopted"),
            "{what}: {}",
            run.stderr
        );
        assert!(
            !env.dir.path().join("state/state.json").exists()
                && !env.dir.path().join("state/certs").exists(),
            "{what}: the state changed"
        );
        for (path, bytes) in before {
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{what}: {path:?}");
        }
    };

    deploy(&env.dest(), WWW, &leaf, &ca, &other, true);
    refused(
        "a key of another certificate",
        "the private key does not belong to the certificate",
        None,
    );

    deploy(&env.dest(), WWW, &leaf, &ca, &key, true);
    refused("expired", "expired on", Some(91 * 86_400));

    std::fs::write(site.join("privkey.pem"), "not a key\n").unwrap();
    refused("not a key", "no PEM private key", None);

    std::fs::remove_file(site.join("privkey.pem")).unwrap();
    std::fs::create_dir(site.join("privkey.pem")).unwrap();
    refused("unreadable", "cannot read", None);
    std::fs::remove_dir(site.join("privkey.pem")).unwrap();

    let (foreign, _) = make_cert(&work, &key, &["other.example.test"], 90);
    deploy(&env.dest(), WWW, &foreign, &ca, &key, true);
    refused(
        "for other names",
        "the certificate is for other.example.test, not for www.example.test",
        None,
    );

    // One good section and one bad: the good one is not adopted either.
    deploy(&env.dest(), WWW, &leaf, &ca, &key, true);
    let mail = "mail.example.test";
    let mail_key = make_key(&work, "mail", KeyForm::EcSec1);
    let (mail_leaf, _) = make_cert(&work, &mail_key, &[mail], 90);
    deploy(&env.dest(), mail, &mail_leaf, &ca, &key, true);
    let both = env.config_as(
        "both.conf",
        &format!(
            "\n[cert:web]\n[cert:mail]\n[domain:{WWW}]\ncert = web\n[domain:{mail}]\ncert = mail\n"
        ),
    );
    let run = env.run(&["--adopt", &both]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("[cert:mail]") && run.stderr.contains("does not belong"),
        "{}",
        run.stderr
    );
    assert!(!env.dir.path().join("state/state.json").exists());
}

/// A certificate certbot got from Pebble (certbot's own `live/` layout of
/// links into `archive/`) is adopted, and the next `--auto` orders nothing.
#[test]
fn certbot_certificate_is_adopted() {
    if !support::require("certbot") {
        return;
    }
    let Some(env) = CycleEnv::start(&[("PEBBLE_VA_ALWAYS_VALID", "1")]) else {
        return;
    };
    let base = env.dir.path().join("letsencrypt");
    let out = Command::new("certbot")
        .args(["certonly", "--non-interactive", "--agree-tos"])
        .args(["--register-unsafely-without-email", "--server"])
        .arg(env.pebble.directory_url())
        .arg("--config-dir")
        .arg(base.join("etc"))
        .arg("--work-dir")
        .arg(base.join("work"))
        .arg("--logs-dir")
        .arg(base.join("logs"))
        .args(["--manual", "--preferred-challenges", "dns"])
        .args([
            "--manual-auth-hook",
            "/bin/true",
            "--manual-cleanup-hook",
            "/bin/true",
        ])
        .args(["--key-type", "ecdsa", "-d", WWW])
        .env("REQUESTS_CA_BUNDLE", env.pebble.ca_cert_path())
        .output()
        .expect("run certbot");
    assert!(
        out.status.success(),
        "certbot: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let live = base.join("etc/live");
    let conf = env.config(&format!(
        "\n[cert:web]\ndestination = {}\n[domain:{WWW}]\ncert = web\n",
        live.display()
    ));
    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let leaf = std::fs::read_to_string(live.join(WWW).join("cert.pem")).unwrap();
    let current = &state(&env)["certs"]["web"]["current"];
    assert_eq!(
        current["fingerprint"],
        fingerprint(env.dir.path(), &leaf).as_str()
    );
    let orders = env.orders();
    let auto = env.run(&["--auto", &conf]);
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert_eq!(env.orders(), orders, "renewed at once: {}", auto.stderr);
}

/// A certificate lego got from Pebble (`certificates/NAME.crt` and a SEC1
/// `NAME.key`) is adopted.
#[test]
fn lego_certificate_is_adopted() {
    if !support::require("lego") {
        return;
    }
    let Some(env) = CycleEnv::start(&[("PEBBLE_VA_ALWAYS_VALID", "1")]) else {
        return;
    };
    let path = env.dir.path().join("lego");
    let out = Command::new("lego")
        .arg("--server")
        .arg(env.pebble.directory_url())
        .args(["--email", "admin@example.test", "--accept-tos"])
        .arg("--path")
        .arg(&path)
        .args(["--domains", WWW, "--http", "--http.port"])
        .arg(format!("127.0.0.1:{}", support::free_port()))
        .arg("run")
        .env("LEGO_CA_CERTIFICATES", env.pebble.ca_cert_path())
        .output()
        .expect("run lego");
    assert!(
        out.status.success(),
        "lego: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = path.join("certificates");
    // lego writes its EC keys as SEC1, which the program converts.
    assert!(
        std::fs::read_to_string(certs.join(format!("{WWW}.key")))
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let conf = env.config(&format!(
        "\n[cert:web]\ndestination = {}\n[domain:{WWW}]\ncert = web\n",
        certs.display()
    ));
    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let crt = std::fs::read_to_string(certs.join(format!("{WWW}.crt"))).unwrap();
    let current = &state(&env)["certs"]["web"]["current"];
    assert_eq!(
        current["fingerprint"],
        fingerprint(env.dir.path(), &crt).as_str()
    );
    let kept = PathBuf::from(current["dir"].as_str().unwrap()).join("privkey.pem");
    assert_eq!(
        public_of_key(env.dir.path(), &kept),
        public_of_key(env.dir.path(), &certs.join(format!("{WWW}.key")))
    );
}

/// The DKIM record of `key` (an RSA key file), as zone-file text at `owner`
/// split into strings of at most 255 characters.
fn dkim_record(dir: &Path, key: &Path, owner: &str) -> (String, String) {
    let der = Command::new("openssl")
        .args(["rsa", "-in"])
        .arg(key)
        .args(["-pubout", "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(dir.join("pub.der"), &der).unwrap();
    let b64 = openssl_out(dir, &["base64", "-A", "-in", "pub.der"]);
    let text = format!("v=DKIM1; k=rsa; p={}", b64.trim());
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    (
        text.clone(),
        format!("{owner} 300 IN TXT {}\n", strings.join(" ")),
    )
}

/// The original's DKIM layout: an RSA key (PKCS#1) at `keylocation/keyname`,
/// rspamd's signing configuration naming its selector, the record in the
/// zone. It is adopted with its creation time from the selector; the next
/// `--auto` makes no new key and publishes no second record.
#[test]
fn dkim_key_of_the_original_is_adopted() {
    if !support::require("openssl") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let key = make_key(scratch.path(), "dkim", KeyForm::RsaPkcs1);
    let made = chrono::Utc::now().timestamp() - 10 * 86_400;
    let selector = format!("mainkey_{made}");
    let owner = format!("{selector}._domainkey.{WWW}.");
    let (text, record) = dkim_record(scratch.path(), &key, &owner);
    let Some(env) = CycleEnv::start_with_zone(&format!("{}{record}", minimal_zone(ZONE)), &[])
    else {
        return;
    };
    let keys = env.dir.path().join("rspamd-dkim");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(&key, keys.join("dkim.key")).unwrap();
    let signing = env.dir.path().join("dkim_signing.conf");
    std::fs::write(
        &signing,
        format!(
            "path = \"{}/dkim.key\";\nselector = \"{selector}\";\n",
            keys.display()
        ),
    )
    .unwrap();
    let conf = env.config(&format!(
        "\n[dkim:maindkim]\nkeybasename = mainkey\nkeylocation = {}\nsigningconfdestinationfile = {}\n[domain:{WWW}]\ndkim = auto:maindkim\n",
        keys.display(),
        signing.display()
    ));
    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "adopted the rsa-2048 key at {}",
            keys.join("dkim.key").display()
        )) && run.stderr.contains(&format!("as selector {selector}")),
        "{}",
        run.stderr
    );
    let current = &state(&env)["dkim"]["maindkim"]["current"];
    assert_eq!(current["selector"], selector.as_str());
    assert_eq!(current["txt"], text.as_str());
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(current["created"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        made
    );
    let kept = PathBuf::from(current["key_file"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        public_of_key(env.dir.path(), &kept),
        public_of_key(env.dir.path(), &key)
    );

    let auto = env.run(&["--auto", &conf]);
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert!(
        state(&env)["dkim"]["maindkim"]["prepared"].is_null(),
        "a new key was made: {}",
        auto.stderr
    );
    assert_eq!(
        env.knot.dig(&owner, "TXT").len(),
        1,
        "the record is published once"
    );
}

/// A DKIM key whose selector's record publishes another key is refused.
#[test]
fn dkim_key_that_dns_does_not_publish_is_refused() {
    if !support::require("openssl") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let key = make_key(scratch.path(), "dkim", KeyForm::RsaPkcs1);
    let published = make_key(scratch.path(), "published", KeyForm::RsaPkcs1);
    let owner = format!("mk._domainkey.{WWW}.");
    let (_, record) = dkim_record(scratch.path(), &published, &owner);
    let Some(env) = CycleEnv::start_with_zone(&format!("{}{record}", minimal_zone(ZONE)), &[])
    else {
        return;
    };
    let keys = env.dir.path().join("dkim");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(&key, keys.join("dkim.key")).unwrap();
    let signing = env.dir.path().join("dkim_signing.conf");
    std::fs::write(&signing, "selector = \"mk\";\n").unwrap();
    let conf = env.config(&format!(
        "\n[dkim:mail]\nkeylocation = {}\nsigningconfdestinationfile = {}\n[domain:{WWW}]\ndkim = auto:mail\n",
        keys.display(),
        signing.display()
    ));
    let run = env.run(&["--adopt", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "mk._domainkey.{WWW} publishes another key than this one"
        )),
        "{}",
        run.stderr
    );
    assert!(!env.dir.path().join("state/state.json").exists());
}

/// The Python original's `state.json` in the state directory is not read as
/// ours: every action stops with what to do, and the file is kept as it is.
#[test]
fn the_originals_state_file_is_named_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let statedir = dir.path().join("state");
    std::fs::create_dir_all(&statedir).unwrap();
    let original = r#"{"opstate": "done", "result": {}, "config": {}, "substate": {"cert": {}}}"#;
    std::fs::write(statedir.join("state.json"), original).unwrap();
    let conf = support::cdm::write_config(
        dir.path(),
        "cdm.conf",
        &format!("[cdm]\nstatedir = {}\n", statedir.display()),
    );
    for action in ["--adopt", "--prepare", "--status"] {
        let run = support::cdm::cdm(dir.path(), &[action, &conf]);
        assert_eq!(run.code, 1, "{action}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("is the state of the Python cryptdomainmgr")
                && run.stderr.contains("state.json.python) and run --adopt"),
            "{action}: {}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(statedir.join("state.json")).unwrap(),
        original
    );
}
