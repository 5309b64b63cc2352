//! Mail policy end to end against a real Knot: MTA-STS (RFC 8461), TLS-RPT
//! (RFC 8460) and CAA bound to the ACME account (RFC 8657). Assertions are on
//! what Knot serves (`dig`) and what lands on disk.
//!
//! The MTA-STS policy and its TXT record are validated by an independent
//! implementation: the resolver of Debian's `postfix-mta-sts-resolver`
//! (`STSResolver.resolve`, `tests/support/mtasts_check.py`), fed with the TXT
//! answer `dig` got from Knot and the policy file on disk as its HTTPS body;
//! its transports are replaced, its parsing and validation are its own.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cdm::{Run, cdm, cdm_env, write_config};
use support::cycle::CycleEnv;
use support::knot::{KnotEnv, minimal_zone};

const ZONE: &str = "example.de";
const PYTHON: &str = "/usr/bin/python3";

struct Env {
    knot: KnotEnv,
    dir: tempfile::TempDir,
}

impl Env {
    fn start(zone_body: &str) -> Option<Env> {
        let knot = KnotEnv::start(ZONE, &format!("{}{zone_body}", minimal_zone(ZONE)))?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("www/.well-known")).unwrap();
        Some(Env { knot, dir })
    }

    fn policy_path(&self) -> PathBuf {
        self.dir.path().join("www/.well-known/mta-sts.txt")
    }

    fn policy(&self) -> Option<String> {
        std::fs::read_to_string(self.policy_path()).ok()
    }

    /// A config file with `[cdm]`, `[domain]` for this Knot and `extra`.
    fn config(&self, extra: &str) -> String {
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\n",
            self.dir.path().join("state").display()
        );
        for (key, value) in self.knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(extra);
        write_config(self.dir.path(), "cdm.conf", &text)
    }

    fn run(&self, args: &[&str]) -> Run {
        cdm(self.dir.path(), args)
    }

    fn txt(&self, name: &str) -> Vec<String> {
        self.knot
            .dig(name, "TXT")
            .iter()
            .map(|t| t.trim_matches('"').to_string())
            .collect()
    }

    /// The MX hosts served, without the trailing dot.
    fn mx(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .knot
            .dig(ZONE, "MX")
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|h| h.trim_end_matches('.').to_string())
            .collect();
        hosts.sort();
        hosts
    }

    /// The policy's `mx:` lines as the independent resolver reads them, after
    /// it accepted the policy and the TXT record Knot serves.
    fn validated(&self) -> (String, Vec<String>, serde_json::Value) {
        let out = Command::new(PYTHON)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mtasts_check.py"))
            .arg(ZONE)
            .arg(serde_json::to_string(&self.txt(&format!("_mta-sts.{ZONE}"))).unwrap())
            .arg(self.policy_path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["result"], "VALID", "the resolver refused: {v}");
        assert_eq!(
            v["url"],
            format!("https://mta-sts.{ZONE}/.well-known/mta-sts.txt")
        );
        let mx = v["policy"]["mx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        (
            v["id"].as_str().unwrap().to_string(),
            mx,
            v["policy"].clone(),
        )
    }

    /// The TXT id served, if any.
    fn served_id(&self) -> Option<String> {
        let txts = self.txt(&format!("_mta-sts.{ZONE}"));
        assert!(txts.len() <= 1, "{txts:?}");
        txts.first().map(|t| {
            t.strip_prefix("v=STSv1; id=")
                .unwrap_or_else(|| panic!("not an MTA-STS record: {t}"))
                .to_string()
        })
    }

    /// Every MX that DNS serves is named by the policy on disk.
    fn policy_covers_served_mx(&self) {
        let policy = self.policy().expect("a policy file");
        for host in self.mx() {
            assert!(
                policy.contains(&format!("mx: {host}\r\n")),
                "MX {host} is served but not in the policy:\n{policy}"
            );
        }
    }
}

fn available() -> bool {
    support::require_all(&["knotd", "dig", "mta-sts-query"])
}

#[test]
fn mtasts_and_tlsrpt_are_published_changed_and_removed() {
    if !available() {
        return;
    }
    let Some(env) = Env::start("") else { return };
    let keys = |extra: &str| {
        format!(
            "[domain:{ZONE}]\nmtastsfile = {}\n{extra}",
            env.policy_path().display()
        )
    };
    let conf = env.config(&keys(
        "mx = mx1.example.de\nmtasts = enforce\nmtasts.maxage = 86400\ntlsrpt = mailto:tls@example.de, https://reports.example.de/v1\n",
    ));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("stopping after"), "{}", run.stderr);

    // The file, byte for byte (RFC 8461 §3.2: CRLF line ends).
    assert_eq!(
        env.policy().unwrap(),
        "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.de\r\nmax_age: 86400\r\n"
    );
    let mode = std::fs::metadata(env.policy_path()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o644
    );
    assert_eq!(env.mx(), vec!["mx1.example.de"]);
    let (id1, mx, policy) = env.validated();
    assert_eq!(Some(id1.clone()), env.served_id());
    assert_eq!(mx, vec!["mx1.example.de"]);
    assert_eq!(policy["mode"], "enforce");
    assert_eq!(policy["max_age"], 86400);
    assert_eq!(
        env.txt(&format!("_smtp._tls.{ZONE}")),
        vec!["v=TLSRPTv1; rua=mailto:tls@example.de,https://reports.example.de/v1"]
    );

    // A second run changes nothing: the same id.
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.served_id(), Some(id1.clone()));

    // --status shows the records as the zone holds them and the file.
    let status = env.run(&["--status", &conf]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    for expected in [
        format!("mail policy of {ZONE}"),
        format!("  MTA-STS TXT at _mta-sts.{ZONE}: v=STSv1; id={id1}"),
        "  MTA-STS mode: enforce, max_age 86400".to_string(),
        format!(
            "  policy file {}: mx mx1.example.de; the TXT id names it",
            env.policy_path().display()
        ),
        "  MX: mx1.example.de".to_string(),
        format!(
            "  TLS-RPT TXT at _smtp._tls.{ZONE}: v=TLSRPTv1; rua=mailto:tls@example.de,https://reports.example.de/v1"
        ),
    ] {
        assert!(
            status.stdout.contains(&expected),
            "missing {expected:?} in\n{}",
            status.stdout
        );
    }
    let status = env.run(&["--status", "--json", &conf]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let domain = doc["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["section"] == format!("domain:{ZONE}"))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(domain["state"], "policy in place, named by its TXT record");
    assert_eq!(domain["mail"]["mtasts"]["mode"], "enforce");
    assert_eq!(
        domain["mail"]["mtasts"]["file_mx"],
        serde_json::json!(["mx1.example.de"])
    );
    assert_eq!(domain["mail"]["mtasts"]["id_names_file"], true);
    assert_eq!(
        domain["mail"]["tlsrpt"],
        serde_json::json!(["v=TLSRPTv1; rua=mailto:tls@example.de,https://reports.example.de/v1"])
    );
    // --check shows the keys as read.
    let check = env.run(&["--check", &conf]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let shown = format!("{}{}", check.stdout, check.stderr);
    assert!(
        shown.contains(&format!(
            "mtasts = enforce (max_age 86400, mx from the MX records, file {})",
            env.policy_path().display()
        )),
        "{shown}"
    );
    assert!(shown.contains("tlsrpt -> Set TlsRpt"), "{shown}");

    // The mode changes: a new policy and a new id; TLS-RPT changes its URIs.
    let conf = env.config(&keys(
        "mx = mx1.example.de\nmtasts = testing\nmtasts.maxage = 86400\ntlsrpt = mailto:other@example.de\n",
    ));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (id2, _, policy) = env.validated();
    assert_eq!(policy["mode"], "testing");
    assert_ne!(id2, id1);
    assert_eq!(env.served_id(), Some(id2));
    assert_eq!(
        env.txt(&format!("_smtp._tls.{ZONE}")),
        vec!["v=TLSRPTv1; rua=mailto:other@example.de"]
    );

    // none removes the TXT records and the policy; the MX stays.
    let conf = env.config(&keys("mtasts = none\ntlsrpt = none\n"));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.txt(&format!("_mta-sts.{ZONE}")).is_empty());
    assert!(env.txt(&format!("_smtp._tls.{ZONE}")).is_empty());
    assert_eq!(env.policy(), None);
    assert_eq!(env.mx(), vec!["mx1.example.de"]);
}

/// An MX change through two runs, the first stopped right after it wrote the
/// policy: the policy names every MX that DNS serves at every point, and the
/// TXT id never names a policy that is not on disk.
#[test]
fn an_mx_change_keeps_the_policy_ahead_of_dns() {
    if !available() {
        return;
    }
    let Some(env) = Env::start("@ MX 10 old.example.de.\n") else {
        return;
    };
    let keys = |mx: &str| {
        format!(
            "[domain:{ZONE}]\nmtastsfile = {}\nmtasts = enforce\nmx = {mx}\n",
            env.policy_path().display()
        )
    };
    let conf = env.config(&keys("old.example.de"));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (old_id, mx, _) = env.validated();
    assert_eq!(mx, vec!["old.example.de"]);

    let conf = env.config(&keys("new.example.de"));
    // --dry-run says what comes first and changes nothing.
    let before = env.policy();
    let dry = env.run(&["--update", "--dry-run", &conf]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let shown = format!("{}{}", dry.stdout, dry.stderr);
    assert!(
        shown.contains(&format!(
            "domain {ZONE}: write the MTA-STS policy {}",
            env.policy_path().display()
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "the MX records of {ZONE} change once the MTA-STS policy names new.example.de"
        )),
        "{shown}"
    );
    assert!(!shown.contains(&format!("zone {ZONE}: add")), "{shown}");
    assert_eq!(env.policy(), before);
    assert_eq!(env.mx(), vec!["old.example.de"]);
    let crash = |conf: &str| {
        cdm_env(
            env.dir.path(),
            &["--update", conf],
            &[("CRYPTDOMAINMGR_CRASH_AT", "mtasts:written".to_string())],
        )
    };
    // Run 1 stops after the first write: both MX in the policy, DNS still has
    // the old MX and the old id.
    let run = crash(&conf);
    assert_eq!(
        run.code, -1,
        "the crash point was not reached: {}",
        run.stderr
    );
    assert_eq!(env.mx(), vec!["old.example.de"]);
    env.policy_covers_served_mx();
    assert!(env.policy().unwrap().contains("mx: new.example.de\r\n"));
    assert_eq!(env.served_id(), Some(old_id.clone()));

    // Run 2 resumes: the new id, the MX change, then the old MX leaves the
    // policy — stopped after that second write.
    let run = crash(&conf);
    assert_eq!(
        run.code, -1,
        "the crash point was not reached: {}",
        run.stderr
    );
    assert_eq!(env.mx(), vec!["new.example.de"]);
    env.policy_covers_served_mx();
    let between = env.served_id().unwrap();
    assert_ne!(between, old_id);

    // Run 3 publishes the id of the final policy.
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.policy_covers_served_mx();
    let (id, mx, _) = env.validated();
    assert_eq!(mx, vec!["new.example.de"]);
    assert_eq!(env.served_id(), Some(id.clone()));
    assert_ne!(id, between);

    // Without a crash the whole change is one run.
    let conf = env.config(&keys("third.example.de"));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.mx(), vec!["third.example.de"]);
    let (id, mx, _) = env.validated();
    assert_eq!(mx, vec!["third.example.de"]);
    assert_eq!(env.served_id(), Some(id));
}

#[test]
fn bad_mail_policy_input_is_refused() {
    if !support::require_all(&["knotd", "dig"]) {
        return;
    }
    let Some(env) = Env::start("@ MX 10 mx.example.de.\n") else {
        return;
    };
    let file = env.policy_path();
    let file = file.display();
    let cases = [
        (
            format!("mtasts = strict\nmtastsfile = {file}\n"),
            ":2: [domain:example.de] mtasts \"strict\" is not a mode",
        ),
        (
            format!("mtasts = enforce\nmtasts.maxage = 31557601\nmtastsfile = {file}\n"),
            ":3: [domain:example.de] mtasts.maxage \"31557601\"",
        ),
        (
            "mtasts = enforce\n".to_string(),
            ":2: [domain:example.de] mtasts = enforce needs mtastsfile",
        ),
        (
            "tlsrpt = http://reports.example.de/\n".to_string(),
            ":2: tlsrpt: TLS-RPT report URI \"http://reports.example.de/\" is not a mailto: or https:// URI",
        ),
        (
            "caa.accounturi = sometimes\n".to_string(),
            ":2: [domain:example.de] caa.accounturi \"sometimes\" is neither yes nor no",
        ),
    ];
    for (keys, expected) in cases {
        let conf = env.config("");
        let run = env.run(&[
            "--update",
            &conf,
            "--config-content",
            &format!("[domain:{ZONE}]\n{keys}"),
        ]);
        assert_eq!(run.code, 2, "{keys}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("--config-content{expected}")),
            "{keys}: {}",
            run.stderr
        );
    }

    // A policy path that cannot be written (its directory is a file): a clear
    // error naming it; no TXT record, the MX records as they were.
    std::fs::write(env.dir.path().join("notadir"), "x").unwrap();
    let conf = env.config(&format!(
        "[domain:{ZONE}]\nmx = other.example.de\nmtasts = enforce\nmtastsfile = {}\n",
        env.dir.path().join("notadir/mta-sts.txt").display()
    ));
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("notadir/mta-sts.txt"), "{}", run.stderr);
    assert!(env.txt(&format!("_mta-sts.{ZONE}")).is_empty());
    assert_eq!(env.mx(), vec!["mx.example.de"]);
}

/// `caa.accounturi = yes`: before the account exists the CAA names the CA;
/// once `--auto` registered it with Pebble, the CAA names that account.
#[test]
fn caa_names_the_account_pebble_returned() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = env.config(
        "\n[cert:web]\ncaaidentity = pebble.example\n[domain:www.example.test]\ncert = web\ncaa = auto\ncaa.accounturi = yes\n",
    );
    let run = env.run(&["--update", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        env.knot.dig("www.example.test", "CAA"),
        vec!["0 issue \"pebble.example\""]
    );

    let run = env.run(&["--auto", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The account URL as Pebble returned it (the Location of newAccount),
    // kept in the account file.
    let accounts = env.dir.path().join("state/accounts");
    let file = std::fs::read_dir(&accounts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let url = stored["credentials"]["id"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!(
            "https://{}",
            env.pebble.directory_url().split('/').nth(2).unwrap()
        )),
        "{url}"
    );
    assert!(
        run.stderr.contains(&format!("created ACME account {url}")),
        "{}",
        run.stderr
    );
    let bound = |url: &str| {
        vec![format!(
            "0 issue \"pebble.example; accounturi={url}; validationmethods=dns-01\""
        )]
    };
    assert_eq!(env.knot.dig("www.example.test", "CAA"), bound(&url));
    assert!(!run.stderr.contains("stopping after"), "{}", run.stderr);
    let status = env.run_ok(&["--status", &conf]);
    assert!(
        status.stdout.contains(&format!(
            "  CAA: 0 issue \"pebble.example; accounturi={url}; validationmethods=dns-01\""
        )),
        "{}",
        status.stdout
    );

    // A new account (the old one's file is gone): the next update names it.
    std::fs::remove_dir_all(&accounts).unwrap();
    env.run_ok(&["--prepare", "--force", &conf]);
    let file = std::fs::read_dir(&accounts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let new_url = stored["credentials"]["id"].as_str().unwrap().to_string();
    assert_ne!(new_url, url);
    env.run_ok(&["--update", &conf]);
    assert_eq!(env.knot.dig("www.example.test", "CAA"), bound(&new_url));
}
