//! The setting of the DKIM tests ([`DkimEnv`]: Knot, the program's configuration
//! and state) and independent DKIM checks: a message signed with a key file by
//! dkimpy (Debian's `python3-dkim`), or by a real signer, verified by dkimpy
//! against what the test's DNS server serves (`dig`), through `dkim_check.py`
//! beside this file.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::cell::Cell;

use super::cdm::{CLOCK, Run, cdm_env, time_in, write_config};
use super::knot::{KnotEnv, minimal_zone};

/// The zone the DKIM tests sign for.
pub const ZONE: &str = "example.test";

/// The system Python that has Debian's `python3-dkim` (a `python3` earlier in
/// `PATH` may be another installation).
const PYTHON: &str = "/usr/bin/python3";

/// True when dkimpy and its helpers are installed (see [`super::require`]).
pub fn available() -> bool {
    let python = Path::new(PYTHON).is_file();
    if python
        && Command::new(PYTHON)
            .args(["-c", "import dkim, nacl, cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python3-dkim is not installed, but CI=true requires it: run scripts/test.sh");
    }
    eprintln!("SKIPPED: python3-dkim not installed, run scripts/test.sh");
    false
}

/// Signs a message for `domain` with `selector` and the key in `key_file`, and
/// verifies it with the record the DNS server on `port` serves. `Err` holds
/// dkimpy's output when the signature does not verify.
pub fn sign_and_verify(
    port: u16,
    domain: &str,
    selector: &str,
    key_file: &Path,
) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_check.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .args([&port.to_string(), domain, selector])
        .arg(key_file)
        .output()
        .expect("run dkim_check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.lines().any(|l| l.starts_with("verified")) {
        Ok(())
    } else {
        Err(format!(
            "selector {selector}, key {}: {stdout}\n{}",
            key_file.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What dkimpy says of the signature of a message a real signer made.
#[derive(Debug)]
pub struct Checked {
    /// The selector the signature names (`s=`), if it has one.
    pub selector: Option<String>,
    pub verified: bool,
    /// dkimpy's output and log, to show when a check fails.
    pub output: String,
}

/// Verifies the first DKIM signature of `message` with dkimpy against the
/// records the DNS server on `port` serves.
pub fn verify_message(port: u16, message: &[u8]) -> Checked {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_check.py");
    let mut child = Command::new(PYTHON)
        .arg(script)
        .args(["--verify", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dkim_check.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write the message to dkim_check.py");
    let out = child.wait_with_output().expect("run dkim_check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout.lines().find(|l| l.contains("verified"));
    Checked {
        selector: verdict
            .and_then(|l| l.split(" s=").nth(1))
            .map(|s| s.trim().to_string()),
        verified: out.status.success() && verdict.is_some_and(|l| l.starts_with("verified")),
        output: format!(
            "{stdout}\n{}\nmessage:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(message)
        ),
    }
}

/// A Knot serving [`ZONE`] and a temporary directory for the program's
/// configuration, state and installed keys: the setting of the DKIM tests.
pub struct DkimEnv {
    pub knot: KnotEnv,
    pub dir: tempfile::TempDir,
    /// Seconds the program's clock runs ahead: every run comes an hour after
    /// the one before, so the DNS waits between the phases have passed.
    clock: Cell<i64>,
}

impl DkimEnv {
    /// `None` (the test returns) when Knot, dig or dkimpy is missing outside CI.
    pub fn start() -> Option<DkimEnv> {
        if !super::require("dig") || !available() {
            return None;
        }
        let knot = KnotEnv::start(ZONE, &minimal_zone(ZONE))?;
        // Signers running as their own user (rspamd's workers, OpenDKIM) reach
        // the installed keys through this directory; OpenDKIM also refuses keys
        // below a directory others may write to, such as /tmp.
        let dir = tempfile::Builder::new()
            .prefix("dkim-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod the test directory");
        Some(DkimEnv {
            knot,
            dir,
            clock: Cell::new(0),
        })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn keys(&self) -> PathBuf {
        self.path("keys")
    }

    /// `keylocation/keyname`: the link to the current key.
    pub fn installed_key(&self) -> PathBuf {
        self.keys().join("dkim.key")
    }

    /// The file a selector's key is installed as.
    pub fn selector_key(&self, selector: &str) -> PathBuf {
        self.keys().join(format!("{selector}.key"))
    }

    /// rspamd's local configuration directory (`LOCAL_CONFDIR`).
    pub fn rspamd_dir(&self) -> PathBuf {
        self.path("rspamd")
    }

    pub fn signing_conf(&self) -> PathBuf {
        self.rspamd_dir().join("local.d/dkim_signing.conf")
    }

    /// Writes the configuration: this Knot, `example.test` with `dkim = auto:mail`,
    /// and `[dkim:mail]` with `dkim` keys appended.
    pub fn config(&self, dkim: &str) -> String {
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\n",
            self.path("state").display()
        );
        for (key, value) in self.knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!("nameservers = {}\n", self.knot.server()));
        text.push_str(&format!(
            "\n[domain:{ZONE}]\ndkim = auto:mail\n\n[dkim:mail]\n"
        ));
        if !dkim.contains("keylocation") {
            text.push_str(&format!("keylocation = {}\n", self.keys().display()));
        }
        if !dkim.contains("signingconfdestinationfile") {
            text.push_str(&format!(
                "signingConfDestinationFile = {}\n",
                self.signing_conf().display()
            ));
        }
        text.push_str(dkim);
        write_config(self.dir.path(), "cdm.conf", &text)
    }

    /// The line of the configuration file where `text` starts a line.
    pub fn line_of(&self, text: &str) -> usize {
        let config = std::fs::read_to_string(self.path("cdm.conf")).unwrap();
        1 + config
            .lines()
            .position(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("{text} not in {config}"))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.clock.set(self.clock.get() + 3600);
        cdm_env(self.dir.path(), args, &[(CLOCK, time_in(self.clock.get()))])
    }

    /// The program's time as of the last run (the real time plus the hours
    /// the runs moved it).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.clock.get())
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?} failed:\n{}", run.stderr);
        run
    }

    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("state/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The selector and key file of the current or prepared key in state.json.
    pub fn key(&self, which: &str) -> Option<(String, PathBuf)> {
        let state = self.state();
        let key = &state["dkim"]["mail"][which];
        Some((
            key["selector"].as_str()?.to_string(),
            PathBuf::from(key["key_file"].as_str()?),
        ))
    }

    /// The TXT data Knot serves for a selector (strings joined), if any.
    pub fn served(&self, selector: &str) -> Vec<String> {
        self.knot
            .dig(&format!("{selector}._domainkey.{ZONE}"), "TXT")
            .iter()
            .map(|line| txt_strings(line).concat())
            .collect()
    }

    pub fn verifies(&self, selector: &str, key: &Path) {
        if let Err(e) = sign_and_verify(self.knot.port(), ZONE, selector, key) {
            panic!("DKIM signature does not verify: {e}");
        }
    }

    pub fn does_not_verify(&self, selector: &str, key: &Path) {
        assert!(
            sign_and_verify(self.knot.port(), ZONE, selector, key).is_err(),
            "selector {selector} still verifies"
        );
    }
}

/// The character-strings of one `dig +short` TXT line.
pub fn txt_strings(line: &str) -> Vec<String> {
    line.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Test message number `n` from `sender@DOMAIN`, with CRLF line ends as on
/// the wire, for a real signer to sign.
pub fn test_message(domain: &str, n: usize) -> String {
    format!(
        "From: Sender <sender@{domain}>\r\n\
         To: someone@example.org\r\n\
         Subject: DKIM rollover test {n}\r\n\
         Message-ID: <test-{n}@{domain}>\r\n\
         Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\
         \r\n\
         Message {n}.\r\n"
    )
}
