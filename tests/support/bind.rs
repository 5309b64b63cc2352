//! A BIND 9 server (`named`) for a test: temporary directory, free loopback
//! port, run in the foreground as the current user, one dynamic zone whose TSIG
//! key (hmac-sha256, random secret) may update any name in it
//! (`update-policy { grant KEY zonesub ANY; }`) and transfer it. Readiness is a
//! real SOA query polled with a deadline; `Drop` stops named by its pid.
//!
//! ```ignore
//! let Some(bind) = BindEnv::start("example.test", &minimal_zone("example.test")) else { return };
//! assert_eq!(bind.dig("ns1.example.test", "A"), vec!["127.0.0.1"]);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::knot::{dig, soa_answered, stop_child};
use super::{check_config, find_binary, free_port, random_secret, require_all, spawn_until_ready};

const KEY_NAME: &str = "cdm-test-key";
const START_ATTEMPTS: usize = 5;
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// A running named; stopped when dropped.
pub struct BindEnv {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    secret: String,
    zone: String,
}

impl BindEnv {
    /// Starts named serving `zone` with `body` (zone-file text relative to
    /// `$ORIGIN zone.`, default `$TTL 300`); `None` when named is not installed
    /// (outside CI).
    ///
    /// # Panics
    /// When named does not start (its config check and log are in the message).
    pub fn start(zone: &str, body: &str) -> Option<BindEnv> {
        if !require_all(&["named", "named-checkconf", "dig"]) {
            return None;
        }
        let zone = zone.trim_end_matches('.').to_string();
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut env = BindEnv {
            dir,
            port: 0,
            child: None,
            secret: random_secret(),
            zone,
        };
        std::fs::write(
            env.zone_file(),
            format!("$ORIGIN {}.\n$TTL 300\n{body}", env.zone),
        )
        .expect("write zone file");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            env.port = free_port();
            env.write_config();
            env.conf_check();
            match env.spawn_and_wait() {
                Ok(()) => return Some(env),
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "named did not start after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn key_name(&self) -> &str {
        KEY_NAME
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The rfc2136 provider keys for this server and its key (no `zone`).
    pub fn provider_keys(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("handler".to_string(), "rfc2136".to_string()),
            ("server".to_string(), self.server()),
            ("keyname".to_string(), KEY_NAME.to_string()),
            ("keyalgorithm".to_string(), "hmac-sha256".to_string()),
            ("secret".to_string(), self.secret.clone()),
        ])
    }

    /// The answer lines of `dig +short +norec` for `name rtype` at this server.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        dig(self.port, name, rtype)
    }

    /// named's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The temporary directory (config, zone, journal, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn zone_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}.zone", self.zone))
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("named.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("named.log")
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
             session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
             listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             recursion no;\n  notify no;\n  dnssec-validation no;\n}};\n\
             controls {{ }};\n\
             key \"{KEY_NAME}\" {{\n  algorithm hmac-sha256;\n  secret \"{secret}\";\n}};\n\
             zone \"{zone}\" {{\n  type primary;\n  file \"{file}\";\n  \
             update-policy {{ grant {KEY_NAME} zonesub ANY; }};\n  \
             allow-transfer {{ key {KEY_NAME}; }};\n}};\n",
            port = self.port,
            secret = self.secret,
            zone = self.zone,
            file = self.zone_file().display(),
        );
        std::fs::write(self.conf_path(), conf).expect("write named.conf");
    }

    fn conf_check(&self) {
        let mut command = Command::new(find_binary("named-checkconf").expect("named-checkconf"));
        command.arg("-z").arg(self.conf_path());
        check_config(command, &self.conf_path());
    }

    /// Spawns named in the foreground (`-g`, one worker thread) and polls an
    /// SOA query until it answers; on failure returns named's log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let named = find_binary("named").ok_or("named not found")?;
        let mut command = Command::new(named);
        command
            .arg("-g")
            .args(["-n", "1"])
            .arg("-c")
            .arg(self.conf_path());
        let (port, zone) = (self.port, self.zone.clone());
        let what = format!("named on port {port} (zone {zone})");
        let child = spawn_until_ready(
            command,
            &what,
            &self.log_path(),
            READY_DEADLINE,
            Duration::from_millis(25),
            || soa_answered(port, &zone),
        )?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for BindEnv {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}
