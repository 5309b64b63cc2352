//! DKIM key rotation end to end: the binary against a real Knot. What is
//! checked comes from outside our code: records as `dig` sees them, signatures
//! made and verified by dkimpy (Debian's `python3-dkim`) with those records,
//! files on disk, and rspamd's own parser for the written `dkim_signing.conf`.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::dkim::{DkimEnv as Env, ZONE, sign_and_verify, txt_strings};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The `selector` the written rspamd configuration names, as rspamd itself
/// reads it (`rspamadm configdump` of the real rspamd configuration with our
/// file as its `local.d/dkim_signing.conf`); `None` when rspamd is missing.
fn rspamd_reads(env: &Env) -> Option<(String, String)> {
    if !support::require("rspamadm") {
        return None;
    }
    let var = format!("--var=LOCAL_CONFDIR={}", env.rspamd_dir().display());
    let test = Command::new("rspamadm")
        .args([&var, "configtest", "-c", "/etc/rspamd/rspamd.conf"])
        .current_dir(env.dir.path())
        .output()
        .expect("run rspamadm");
    let said = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success() && said.contains("syntax OK"),
        "rspamd rejects the configuration: {said}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let dump = Command::new("rspamadm")
        .args([
            &var,
            "configdump",
            "-c",
            "/etc/rspamd/rspamd.conf",
            "dkim_signing",
        ])
        .current_dir(env.dir.path())
        .output()
        .expect("run rspamadm");
    let dump = String::from_utf8_lossy(&dump.stdout);
    let value = |key: &str| {
        dump.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix("\";"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {key} in rspamd's dkim_signing: {dump}"))
    };
    Some((value("path"), value("selector")))
}

/// prepare → rollover → prepare → rollover → cleanup, checking at each step
/// what DNS serves, that signatures verify, and what is installed.
fn full_cycle(keytype: &str) {
    let Some(env) = Env::start() else { return };
    let config = env.config(&format!("keytype = {keytype}\ndkimdrain = 0\n"));

    // First key: published, not yet installed.
    env.ok(&["--prepare", &config]);
    let (s1, k1) = env.key("prepared").expect("a prepared key");
    assert!(s1.starts_with("mail_"), "{s1}");
    assert_eq!(mode(&k1), 0o600);
    let served = env.served(&s1);
    assert_eq!(served.len(), 1, "{served:?}");
    assert!(
        served[0].starts_with(&format!("v=DKIM1; k={keytype}; p=")),
        "{served:?}"
    );
    env.verifies(&s1, &k1);
    assert!(!env.installed_key().exists());
    let status = env.ok(&["--status", &config]).stdout;
    assert!(
        status.contains(&format!("prepared: selector {s1}")),
        "{status}"
    );

    env.ok(&["--rollover", &config]);
    assert_eq!(
        std::fs::read(env.selector_key(&s1)).unwrap(),
        std::fs::read(&k1).unwrap()
    );
    assert_eq!(mode(&env.selector_key(&s1)), 0o600);
    assert_eq!(
        std::fs::read_link(env.installed_key()).unwrap(),
        PathBuf::from(format!("{s1}.key"))
    );
    if let Some((path, selector)) = rspamd_reads(&env) {
        assert_eq!(path, env.selector_key(&s1).display().to_string());
        assert_eq!(selector, s1);
    }
    env.verifies(&s1, &env.installed_key());

    // Second key: both selectors are served, both keys sign verifiably.
    env.ok(&["--prepare", "--force", &config]);
    let (s2, k2) = env.key("prepared").expect("a second prepared key");
    assert_ne!(s1, s2);
    assert_eq!(env.served(&s1).len(), 1);
    assert_eq!(env.served(&s2).len(), 1);
    env.verifies(&s1, &env.installed_key());
    env.verifies(&s2, &k2);
    let status = env.ok(&["--status", &config]).stdout;
    assert!(
        status.contains(&format!("current: selector {s1}"))
            && status.contains(&format!("prepared: selector {s2}"))
            && status.contains("0 days old"),
        "{status}"
    );

    env.ok(&["--rollover", &config]);
    assert_eq!(
        std::fs::read(env.installed_key()).unwrap(),
        std::fs::read(&k2).unwrap()
    );
    let conf = std::fs::read_to_string(env.signing_conf()).unwrap();
    assert!(conf.contains(&format!("selector = \"{s2}\";")), "{conf}");
    if let Some((path, selector)) = rspamd_reads(&env) {
        assert_eq!(path, env.selector_key(&s2).display().to_string());
        assert_eq!(selector, s2);
    }
    // Mail signed just before the rollover still verifies: the old record
    // stays, and so does the old key's file for a signer not yet reloaded.
    env.verifies(&s1, &k1);
    env.verifies(&s1, &env.selector_key(&s1));

    // dkimdrain = 0: cleanup removes the old selector and its key at once.
    env.ok(&["--cleanup", &config]);
    assert!(env.served(&s1).is_empty(), "{s1} still served");
    env.does_not_verify(&s1, &k2);
    assert_eq!(env.served(&s2).len(), 1);
    env.verifies(&s2, &env.installed_key());
    assert!(!k1.exists(), "old key file kept");
    assert!(!env.selector_key(&s1).exists(), "old installed key kept");
    assert!(k2.exists());
    assert!(env.selector_key(&s2).exists());
}

#[test]
fn full_cycle_rsa() {
    full_cycle("rsa");
}

#[test]
fn full_cycle_ed25519() {
    full_cycle("ed25519");
}

#[test]
fn the_default_drain_keeps_the_old_selector_and_says_until_when() {
    let Some(env) = Env::start() else { return };
    let config = env.config("keytype = ed25519\n");
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (s1, k1) = env.key("current").unwrap();
    env.ok(&["--prepare", "--force", &config]);
    env.ok(&["--rollover", &config]);
    let rolled_over = env.now();
    let (s2, _) = env.key("current").unwrap();

    let run = env.ok(&["--cleanup", &config]);
    assert_eq!(env.served(&s1).len(), 1, "the old selector must stay");
    assert_eq!(env.served(&s2).len(), 1);
    assert!(k1.exists());
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&format!("keeping old selector {s1} published until ")))
        .unwrap_or_else(|| panic!("no drain message:\n{}", run.stderr));
    let until = line.split(" until ").nth(1).unwrap();
    let until = chrono::NaiveDateTime::parse_from_str(&until[..19], "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc();
    let expected = rolled_over + chrono::Duration::days(7);
    assert!(
        (until - expected).num_seconds().abs() < 120,
        "kept until {until}, expected about {expected}"
    );
}

#[test]
fn a_4096_bit_key_is_published_as_several_strings_and_verifies() {
    let Some(env) = Env::start() else { return };
    let config = env.config("keysize = 4096\n");
    env.ok(&["--prepare", &config]);
    let (selector, key) = env.key("prepared").unwrap();
    let lines = env
        .knot
        .dig(&format!("{selector}._domainkey.{ZONE}"), "TXT");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let strings = txt_strings(&lines[0]);
    assert!(strings.len() >= 3, "{strings:?}");
    assert!(strings.iter().all(|s| s.len() <= 255), "{strings:?}");
    env.verifies(&selector, &key);
}

#[test]
fn a_crash_after_the_journal_finishes_the_same_selector() {
    let Some(env) = Env::start() else { return };
    let config = env.config("keytype = ed25519\n");
    for crash_at in ["dkim:journaled", "dkim:key-written"] {
        let crashed = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
            .args(["--prepare", "--force", &config])
            .env("CRYPTDOMAINMGR_CRASH_AT", crash_at)
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(!crashed.status.success(), "{crash_at}: no crash");
        let (selector, key) = env.key("prepared").unwrap();
        assert!(env.served(&selector).is_empty(), "{crash_at}: published");

        let run = env.ok(&["--prepare", &config]);
        assert_eq!(env.key("prepared").unwrap().0, selector, "{crash_at}");
        assert_eq!(env.served(&selector).len(), 1, "{crash_at}: {}", run.stderr);
        env.verifies(&selector, &key);
    }
    // The first crash's key was replaced by the forced second prepare and is
    // retired; no other key files were made.
    let files = std::fs::read_dir(env.path("state/dkim/mail"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
}

#[test]
fn rollover_waits_until_every_nameserver_serves_the_record() {
    let Some(env) = Env::start() else { return };
    let silent = support::free_port();
    let config = env.config("keytype = ed25519\n");
    env.ok(&["--prepare", &config]);
    let (selector, _) = env.key("prepared").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("nameservers = {}", env.knot.server()),
        &format!("nameservers = {}, 127.0.0.1:{silent}", env.knot.server()),
    );
    std::fs::write(&config, text).unwrap();

    let run = env.run(&["--rollover", &config]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{silent}")) && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert!(!env.installed_key().exists());
    assert!(!env.signing_conf().exists());
    assert_eq!(env.key("prepared").unwrap().0, selector);

    env.ok(&["--rollover", "--force", &config]);
    assert_eq!(env.key("current").unwrap().0, selector);
    assert!(env.installed_key().exists());
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let Some(env) = Env::start() else { return };
    for (dkim, what) in [
        ("keytype = dsa\n", "unknown DKIM keytype \"dsa\""),
        ("keysize = 512\n", "1024 to 4096"),
    ] {
        let config = env.config(dkim);
        let line = env.line_of(dkim.trim());
        let run = env.run(&["--prepare", &config]);
        assert_eq!(run.code, 2, "{dkim}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("cdm.conf:{line}: ")) && run.stderr.contains(what),
            "{dkim}: {}",
            run.stderr
        );
        assert!(!env.path("state/state.json").exists());
    }

    // A working key and configuration.
    let config = env.config("keytype = ed25519\n");
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (s1, _) = env.key("current").unwrap();
    let key_before = std::fs::read(env.installed_key()).unwrap();
    let conf_before = std::fs::read(env.signing_conf()).unwrap();
    env.ok(&["--prepare", "--force", &config]);
    let (s2, _) = env.key("prepared").unwrap();

    // An unwritable keylocation (below a file; root may write anywhere else).
    std::fs::write(env.path("blocker"), b"").unwrap();
    let bad = env.config(&format!(
        "keytype = ed25519\nkeylocation = {}\n",
        env.path("blocker/keys").display()
    ));
    let run = env.run(&["--rollover", &bad]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("blocker/keys"), "{}", run.stderr);

    // A signing configuration that cannot be written: the key written before it
    // is put back.
    let bad = env.config(&format!(
        "keytype = ed25519\nsigningconfdestinationfile = {}\n",
        env.path("blocker/dkim_signing.conf").display()
    ));
    let run = env.run(&["--rollover", &bad]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("blocker"), "{}", run.stderr);

    assert_eq!(std::fs::read(env.installed_key()).unwrap(), key_before);
    assert_eq!(std::fs::read(env.signing_conf()).unwrap(), conf_before);
    assert!(
        !env.selector_key(&s2).exists(),
        "the new key file was not taken back"
    );
    assert_eq!(env.key("current").unwrap().0, s1);
    assert_eq!(env.key("prepared").unwrap().0, s2);
    env.verifies(&s1, &env.installed_key());
}

/// `id ARGS` (user and group ids as the system resolves them).
fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("run id");
    assert!(out.status.success(), "id {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_installed_key_belongs_to_keyowner_and_keygroup() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = Env::start() else { return };
    // Root can give the key away (as to rspamd's _rspamd); others only to themselves.
    let (owner, group) = if id(&["-u"]) == "0" {
        ("nobody".to_string(), id(&["-gn", "nobody"]))
    } else {
        (id(&["-un"]), id(&["-gn"]))
    };
    let config = env.config(&format!(
        "keytype = ed25519\nkeyowner = {owner}\nkeygroup = {group}\n"
    ));
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let uid: u32 = id(&["-u", &owner]).parse().unwrap();
    let gid: u32 = id(&["-g", &owner]).parse().unwrap();
    for path in [env.installed_key(), env.keys()] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", path.display());
    }
    assert_eq!(mode(&env.installed_key()), 0o600);

    let config = env.config("keyowner = no-such-user-here\n");
    let run = env.run(&["--rollover", &config]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("there is no user \"no-such-user-here\""),
        "{}",
        run.stderr
    );
}

/// OpenDKIM's tables (the `file:` data sets of opendkim.conf(5)) name every
/// domain of the section with the new selector and the installed key, which
/// signs verifiably for each of them.
#[test]
fn opendkim_tables_name_every_domain_with_the_new_selector() {
    let Some(env) = Env::start() else { return };
    let tables = env.path("opendkim");
    let config = env.config(&format!(
        "handler = opendkim\nkeytable = {0}/KeyTable\nsigningtable = {0}/SigningTable\n\n[domain:sub.{ZONE}]\ndkim = auto:mail\n",
        tables.display()
    ));
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (selector, _) = env.key("current").unwrap();
    let key_table = std::fs::read_to_string(tables.join("KeyTable")).unwrap();
    let signing_table = std::fs::read_to_string(tables.join("SigningTable")).unwrap();
    for domain in [ZONE.to_string(), format!("sub.{ZONE}")] {
        assert!(
            key_table.contains(&format!(
                "{selector}._domainkey.{domain} {domain}:{selector}:{}\n",
                env.selector_key(&selector).display()
            )),
            "{key_table}"
        );
        assert!(
            signing_table.contains(&format!("\n{domain} {selector}._domainkey.{domain}\n")),
            "{signing_table}"
        );
        if let Err(e) = sign_and_verify(
            env.knot.port(),
            &domain,
            &selector,
            &env.selector_key(&selector),
        ) {
            panic!("{domain}: {e}");
        }
    }
    assert!(
        !env.signing_conf().exists(),
        "an rspamd configuration was written"
    );
}

/// With `handler = rspamd` and no `keyowner`/`keygroup`, the key goes to
/// `_rspamd` where it exists (and this runs as root), and `--check` says so.
#[test]
fn the_key_goes_to_the_signers_user_by_default_and_check_says_so() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = Env::start() else { return };
    let config = env.config("keytype = ed25519\n");
    let check = env.ok(&["--check", &config]).stdout;
    let rspamd_uid = Command::new("id")
        .args(["-u", "_rspamd"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let handed = match &rspamd_uid {
        Some(uid) if id(&["-u"]) == "0" => {
            assert!(
                check.contains(&format!(
                    "keyowner = _rspamd ({uid})    # default: the user the signer runs as"
                )),
                "{check}"
            );
            Some(uid.parse::<u32>().unwrap())
        }
        _ => {
            assert!(
                check.contains("keyowner = (not set: the key stays with the user running"),
                "{check}"
            );
            None
        }
    };
    assert!(
        check.contains(&format!(
            "installed as = {}/SELECTOR.key, one file per selector; {} links to the current one",
            env.keys().display(),
            env.installed_key().display()
        )),
        "{check}"
    );
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let (selector, _) = env.key("current").unwrap();
    let meta = std::fs::metadata(env.selector_key(&selector)).unwrap();
    let expected = handed.unwrap_or_else(|| id(&["-u"]).parse().unwrap());
    assert_eq!(meta.uid(), expected);
    assert_eq!(mode(&env.selector_key(&selector)), 0o600);
}

/// `handler = file`: a consumer resolves `keylocation/keyname` once and takes
/// the selector from the name of the file it links to; that file and its
/// record stay until the selector is drained, whatever rollover does meanwhile.
#[test]
fn a_file_consumer_takes_key_and_selector_together_from_the_link() {
    let Some(env) = Env::start() else { return };
    let config = env.config("handler = file\nkeytype = ed25519\ndkimdrain = 0\n");
    env.ok(&["--prepare", &config]);
    env.ok(&["--rollover", &config]);
    let resolve = || {
        let target = std::fs::read_link(env.installed_key()).unwrap();
        let selector = target
            .to_str()
            .and_then(|t| t.strip_suffix(".key"))
            .unwrap()
            .to_string();
        (selector, env.keys().join(target))
    };
    let (s1, k1) = resolve();
    assert_eq!(env.key("current").unwrap().0, s1);
    env.verifies(&s1, &k1);

    env.ok(&["--prepare", "--force", &config]);
    env.ok(&["--rollover", &config]);
    let (s2, k2) = resolve();
    assert_ne!(s1, s2);
    env.verifies(&s2, &k2);
    // A consumer that resolved the link before the rollover still signs verifiably.
    env.verifies(&s1, &k1);
    assert!(
        !env.signing_conf().exists(),
        "handler = file wrote a signing configuration"
    );

    env.ok(&["--cleanup", &config]);
    assert!(!k1.exists());
    env.does_not_verify(&s1, &k2);
    env.verifies(&s2, &k2);
}
