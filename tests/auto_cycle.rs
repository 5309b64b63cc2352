//! `--auto` through whole cycles against a real Pebble and a real Knot, with
//! the program's clock moved instead of waiting: each section moves on its
//! own (the DH parameters are deployed at once, the certificate waits for its
//! TLSA records, the DKIM key for its record), every wait says until when,
//! `--auto --dry-run` prints the plan and changes nothing, `--status --json`
//! tells monitoring what comes next, and a run with nothing due asks the CA
//! nothing and changes no zone.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use serde_json::Value;
use support::cycle::CycleEnv;
use support::tls::spki_sha256;

const WWW: &str = "www.example.test";

fn config(env: &CycleEnv) -> String {
    let dir = env.dir.path();
    let script = support::cdm::write_script(
        dir,
        "reload.sh",
        &format!("echo \"$@\" >> {}/reloads.log\n", dir.display()),
    );
    env.config(&format!(
        "\n[cert:web]\n\
         [domain:{WWW}]\ncert = web\nip4 = 192.0.2.1\ndkim = auto:mail\ntlsa.tcp.443 = auto:3:1:1\n\
         [dkim:mail]\nkeytype = ed25519\nkeylocation = {0}/dkim\nsigningconfdestinationfile = {0}/rspamd/dkim_signing.conf\n\
         [dhparam:web]\nhandler = ffdhe\nfilename = {0}/dh.pem\n\
         [service:app]\nhandler = command\ncommand = {1} reload\n",
        dir.display(),
        script.display()
    ))
}

fn reloads(env: &CycleEnv) -> usize {
    std::fs::read_to_string(env.dir.path().join("reloads.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn status(env: &CycleEnv, conf: &str) -> Value {
    let run = env.run_ok(&["--status", "--json", conf]);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn section<'a>(status: &'a Value, key: &str) -> &'a Value {
    status["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["section"] == key)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// The 3 1 1 data of the certificate deployed for `name`.
fn deployed_spki(env: &CycleEnv, name: &str) -> Option<String> {
    let pem = std::fs::read_to_string(env.dest().join(name).join("cert.pem")).ok()?;
    spki_sha256(&pem, env.dir.path())
}

fn served_tlsa(env: &CycleEnv) -> Vec<String> {
    let mut lines: Vec<String> = env
        .knot
        .dig(&format!("_443._tcp.{WWW}"), "TLSA")
        .iter()
        .map(|l| l.split_whitespace().collect::<String>().to_lowercase())
        .collect();
    lines.sort();
    lines
}

fn selector_in_config(env: &CycleEnv) -> Option<String> {
    let text = std::fs::read_to_string(env.dir.path().join("rspamd/dkim_signing.conf")).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("selector"))?;
    Some(line.split('"').nth(1)?.to_string())
}

#[test]
fn each_section_moves_through_its_cycle_when_due_and_safe() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = config(&env);
    env.advance(0);

    // A dry run plans the first steps and changes nothing.
    let dry = env.run_ok(&["--auto", "--dry-run", &conf]);
    assert!(
        dry.stdout
            .contains("cert web: issue a certificate for www.example.test"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("dkim mail: new ed25519 key"),
        "{}",
        dry.stdout
    );
    assert!(
        !env.dir.path().join("state").exists(),
        "a dry run writes no state"
    );
    assert_eq!(env.orders(), 0);

    // First run: everything is made; the DH parameters (no DNS) are deployed
    // and the service reloaded at once; certificate and DKIM key wait.
    let first = env.run_ok(&["--auto", &conf]);
    assert_eq!(env.orders(), 1);
    assert!(
        env.dir.path().join("dh.pem").exists(),
        "DH deployed at once"
    );
    assert_eq!(reloads(&env), 1, "reloaded after the DH parameters");
    assert_eq!(deployed_spki(&env, WWW), None, "the certificate waits");
    assert_eq!(selector_in_config(&env), None, "the DKIM key waits");
    assert_eq!(served_tlsa(&env).len(), 1, "its TLSA record is published");
    assert!(
        first.stderr.contains("[cert:web] rollover at "),
        "the wait says until when: {}",
        first.stderr
    );
    let shown = status(&env, &conf);
    let web = section(&shown, "cert:web");
    assert_eq!(web["state"], "prepared, records served");
    assert_eq!(web["next"]["step"], "rollover");
    assert_eq!(web["next"]["when"], "at");
    assert!(
        web["next"]["reason"]
            .as_str()
            .unwrap()
            .contains("first served")
    );
    assert_eq!(section(&shown, "dhparam:web")["state"], "deployed");
    assert_eq!(shown["last_auto"]["ok"], true);

    // Nothing is due yet: the next run asks the CA nothing and changes no zone.
    let serial = env.knot.serial("example.test");
    env.advance(60);
    env.run_ok(&["--auto", &conf]);
    assert_eq!(env.orders(), 1);
    assert_eq!(env.knot.serial("example.test"), serial, "no UPDATE");
    assert_eq!(deployed_spki(&env, WWW), None, "still waiting");

    // Past twice the TTL: both roll over in one run, the service reloads once.
    env.advance(3600);
    env.run_ok(&["--auto", &conf]);
    let spki = deployed_spki(&env, WWW).expect("deployed");
    assert_eq!(served_tlsa(&env), vec![format!("311{spki}")]);
    let selector = selector_in_config(&env).expect("the DKIM key is installed");
    assert!(
        !env.knot
            .dig(&format!("{selector}._domainkey.{WWW}"), "TXT")
            .is_empty(),
        "the installed selector is served"
    );
    assert_eq!(reloads(&env), 2, "one reload for certificate and DKIM key");
    let shown = status(&env, &conf);
    assert_eq!(section(&shown, "cert:web")["state"], "deployed");
    assert_eq!(section(&shown, "dkim:mail")["state"], "deployed");
    assert!(section(&shown, "cert:web")["days_left"].as_i64().unwrap() > 30);

    // A renewal (forced by hand), then --auto does the rest: the old TLSA
    // record stays until twice its TTL after the rollover, then goes.
    env.advance(60);
    env.run_ok(&["--prepare", "--force", &conf]);
    assert_eq!(env.orders(), 2);
    assert_eq!(served_tlsa(&env).len(), 2, "old and new side by side");
    env.advance(3600);
    env.run_ok(&["--auto", &conf]);
    let renewed = deployed_spki(&env, WWW).unwrap();
    assert_ne!(renewed, spki);
    assert_eq!(served_tlsa(&env).len(), 2, "the old record stays for now");
    env.advance(3600);
    env.run_ok(&["--auto", &conf]);
    assert_eq!(served_tlsa(&env), vec![format!("311{renewed}")]);
    assert_eq!(env.orders(), 2, "no order that was not due");
}

#[test]
fn a_failed_step_fails_the_run_but_not_the_other_sections() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let dir = env.dir.path();
    // A DH section whose file cannot be written: its directory is a file.
    std::fs::write(dir.join("blocker"), "").unwrap();
    let conf = env.config(&format!(
        "\n[cert:web]\n[domain:{WWW}]\ncert = web\nip4 = 192.0.2.1\n\
         [dhparam:web]\nhandler = ffdhe\nfilename = {}/blocker/dh.pem\n",
        dir.display()
    ));
    env.advance(0);
    let run = env.run(&["--auto", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("[dhparam:web] rollover failed"),
        "{}",
        run.stderr
    );
    // The certificate (no TLSA: nothing to wait for) was issued and deployed.
    assert!(deployed_spki(&env, WWW).is_some(), "{}", run.stderr);
    let shown = status(&env, &conf);
    let dh = section(&shown, "dhparam:web");
    assert!(
        dh["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("blocker"),
        "{dh}"
    );
}
