//! A Knot DNS server (`knotd`) for a test: temporary directory, free loopback
//! port, a TSIG key (hmac-sha256, random secret) allowed to update and transfer
//! the zones, optionally a second key allowed to transfer only. Updates stay in
//! the journal (`zonefile-sync: -1`). Readiness is a real SOA query polled with a
//! deadline; `Drop` stops knotd by its pid and waits for it.
//!
//! ```ignore
//! let Some(knot) = KnotEnv::start("example.test", &minimal_zone("example.test")) else { return };
//! assert_eq!(knot.dig("ns1.example.test", "A"), vec!["127.0.0.1"]);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{check_config, find_binary, free_port, random_secret, require_all, spawn_until_ready};

const KEY_NAME: &str = "cdm-test-key";
const READONLY_KEY_NAME: &str = "cdm-readonly-key";
const START_ATTEMPTS: usize = 5;
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// A zone body with SOA (serial 1, minimum 300), NS `ns1` and its address
/// 127.0.0.1, relative to the zone's origin.
pub fn minimal_zone(zone: &str) -> String {
    format!(
        "@ 3600 IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n\
         @ 3600 IN NS ns1.{zone}.\n\
         ns1 3600 IN A 127.0.0.1\n"
    )
}

/// Options for [`KnotEnv`]: several zones, and an optional key without update
/// rights.
#[derive(Default)]
pub struct KnotBuilder {
    zones: Vec<(String, String)>,
    readonly_key: bool,
    dnssec: bool,
}

impl KnotBuilder {
    /// Adds a zone; `body` is zone-file text relative to `$ORIGIN zone.` with a
    /// default `$TTL 300`.
    pub fn zone(mut self, zone: &str, body: &str) -> Self {
        self.zones
            .push((zone.trim_end_matches('.').to_string(), body.to_string()));
        self
    }

    /// Adds a second TSIG key that may transfer the zones but not update them.
    pub fn readonly_key(mut self) -> Self {
        self.readonly_key = true;
        self
    }

    /// Knot signs the zones itself (`dnssec-signing: on`, one ECDSA P-256 key
    /// for both roles, DNSKEY TTL 1 s), as a signing provider does.
    pub fn dnssec(mut self) -> Self {
        self.dnssec = true;
        self
    }

    /// Starts knotd; `None` when knotd is not installed (outside CI).
    ///
    /// # Panics
    /// When knotd does not start (its config check and log are in the message).
    pub fn start(self) -> Option<KnotEnv> {
        if !require_all(&["knotd", "knotc", "dig"]) {
            return None;
        }
        assert!(!self.zones.is_empty(), "KnotEnv needs at least one zone");
        let dir = tempfile::tempdir().expect("temporary directory");
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create knot directories");
        }
        for (zone, body) in &self.zones {
            let text = format!("$ORIGIN {zone}.\n$TTL 300\n{body}");
            std::fs::write(dir.path().join("zones").join(format!("{zone}.zone")), text)
                .expect("write zone file");
        }
        let mut env = KnotEnv {
            dir,
            port: 0,
            child: None,
            secret: random_secret(),
            readonly_secret: self.readonly_key.then(random_secret),
            zones: self.zones.iter().map(|(z, _)| z.clone()).collect(),
            dnssec: self.dnssec,
            signing: self.dnssec,
        };
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
            "knotd did not start after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }
}

/// Message counts from knotd's statistics module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Messages {
    pub operations: BTreeMap<String, u64>,
    pub query_types: BTreeMap<String, u64>,
}

impl Messages {
    /// Messages of operation `name` (`query`, `update`, `axfr`).
    pub fn operation(&self, name: &str) -> u64 {
        self.operations.get(name).copied().unwrap_or(0)
    }

    /// Queries of type `name` (`SOA`, `NS`, `TLSA`).
    pub fn query_type(&self, name: &str) -> u64 {
        self.query_types.get(name).copied().unwrap_or(0)
    }

    /// The counts since `before`.
    pub fn since(&self, before: &Messages) -> Messages {
        let minus = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), v - then.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Messages {
            operations: minus(&self.operations, &before.operations),
            query_types: minus(&self.query_types, &before.query_types),
        }
    }
}

/// A running knotd; stopped when dropped.
pub struct KnotEnv {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    secret: String,
    readonly_secret: Option<String>,
    zones: Vec<String>,
    /// The zones have a DNSSEC policy.
    dnssec: bool,
    /// Knot signs them now (see [`KnotEnv::set_signing`]).
    signing: bool,
}

impl KnotEnv {
    /// Knot serving one zone.
    pub fn start(zone: &str, zone_body: &str) -> Option<KnotEnv> {
        Self::builder().zone(zone, zone_body).start()
    }

    pub fn builder() -> KnotBuilder {
        KnotBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The name of the key allowed to update and transfer.
    pub fn key_name(&self) -> &str {
        KEY_NAME
    }

    /// Its base64 secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The key allowed to transfer only, if the builder asked for it.
    pub fn readonly_key(&self) -> Option<(&str, &str)> {
        self.readonly_secret
            .as_deref()
            .map(|secret| (READONLY_KEY_NAME, secret))
    }

    /// The rfc2136 provider keys for this server and the update key (no `zone`).
    pub fn provider_keys(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("handler".to_string(), "rfc2136".to_string()),
            ("server".to_string(), self.server()),
            ("keyname".to_string(), KEY_NAME.to_string()),
            ("keyalgorithm".to_string(), "hmac-sha256".to_string()),
            ("secret".to_string(), self.secret.clone()),
        ])
    }

    /// The answer lines of `dig +short +norec @127.0.0.1 -p PORT name rtype`: what
    /// the server serves, seen independently of our code.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        dig(self.port, name, rtype)
    }

    /// The zone's SOA serial as served.
    pub fn serial(&self, zone: &str) -> u32 {
        let soa = self.dig(zone, "SOA");
        soa.first()
            .and_then(|line| line.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA served for {zone}: {soa:?}"))
    }

    /// The messages knotd has answered so far, by operation (`query`,
    /// `update`, `axfr`, ...) and by query type (`SOA`, `A`, ...), from its
    /// statistics module: what the server saw, not what the client says.
    pub fn messages(&self) -> Messages {
        let out = Command::new(find_binary("knotc").expect("knotc"))
            .arg("-c")
            .arg(self.conf_path())
            .args(["stats", "mod-stats"])
            .output()
            .expect("run knotc stats");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut messages = Messages::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(" = ") else {
                continue;
            };
            let Ok(count) = value.trim().parse::<u64>() else {
                continue;
            };
            let Some((group, rest)) = key.split_once('[') else {
                continue;
            };
            let name = rest.trim_end_matches(']').to_string();
            match group {
                "mod-stats.server-operation" => messages.operations.insert(name, count),
                "mod-stats.query-type" => messages.query_types.insert(name, count),
                _ => None,
            };
        }
        messages
    }

    /// knotd's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops knotd (the port is then closed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }

    /// Starts knotd again on the same port with the same zones and journal.
    ///
    /// # Panics
    /// When it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.spawn_and_wait() {
            panic!("knotd did not restart: {why}");
        }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("knotd.log")
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let mut keys = format!(
            "  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {}\n",
            self.secret
        );
        let mut acls =
            format!("  - id: acl_update\n    key: {KEY_NAME}\n    action: [update, transfer]\n");
        let mut acl_ids = "acl_update".to_string();
        if let Some(secret) = &self.readonly_secret {
            keys.push_str(&format!(
                "  - id: {READONLY_KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {secret}\n"
            ));
            acls.push_str(&format!(
                "  - id: acl_readonly\n    key: {READONLY_KEY_NAME}\n    action: transfer\n"
            ));
            acl_ids.push_str(", acl_readonly");
        }
        let signing = if self.dnssec {
            format!(
                "    dnssec-policy: fast\n    dnssec-signing: {}\n",
                if self.signing { "on" } else { "off" }
            )
        } else {
            String::new()
        };
        let zones: String = self
            .zones
            .iter()
            .map(|z| format!("  - domain: {z}\n    file: {z}.zone\n{signing}"))
            .collect();
        let policy = if self.dnssec {
            "policy:\n  - id: fast\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n    \
             dnskey-ttl: 1\n    zone-max-ttl: 3600\n    propagation-delay: 0\n    \
             ksk-lifetime: 0\n    zsk-lifetime: 0\n"
        } else {
            ""
        };
        let conf = format!(
            "server:\n  rundir: \"{d}/run\"\n  listen: 127.0.0.1@{port}\n  \
             udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
             control:\n  listen: \"{d}/run/knot.sock\"\n\
             database:\n  storage: \"{d}/db\"\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n{keys}\
             acl:\n{acls}\
             {policy}\
             mod-stats:\n  - id: counts\n    server-operation: on\n    request-protocol: off\n    \
             request-bytes: off\n    response-bytes: off\n    response-code: off\n    \
             reply-nodata: off\n    query-type: on\n\
             template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-sync: -1\n    \
             zonefile-load: whole\n    journal-content: changes\n    acl: [{acl_ids}]\n    \
             global-module: mod-stats/counts\n\
             zone:\n{zones}",
            port = self.port,
        );
        std::fs::write(self.conf_path(), conf).expect("write knot.conf");
    }

    fn conf_check(&self) {
        let mut command = Command::new(find_binary("knotc").expect("knotc"));
        command.arg("-c").arg(self.conf_path()).arg("conf-check");
        check_config(command, &self.conf_path());
    }

    /// Spawns knotd and polls an SOA query until it answers; on failure returns
    /// knotd's log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let knotd = find_binary("knotd").ok_or("knotd not found")?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(self.conf_path());
        let (port, zone) = (self.port, self.zones[0].clone());
        let what = format!("knotd on port {port} (zone {zone})");
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

    /// The file knotd loads `zone` from (zone-file text with `$ORIGIN zone.`).
    pub fn zone_file(&self, zone: &str) -> PathBuf {
        self.dir
            .path()
            .join("zones")
            .join(format!("{}.zone", zone.trim_end_matches('.')))
    }

    /// The argument vector that makes knotd load `zone` from its file again
    /// and waits until it has (`knotc -b zone-reload`).
    pub fn reload_command(&self, zone: &str) -> Vec<String> {
        let knotc = find_binary("knotc").unwrap_or_else(|| PathBuf::from("knotc"));
        vec![
            knotc.display().to_string(),
            "-c".into(),
            self.conf_path().display().to_string(),
            "-b".into(),
            "zone-reload".into(),
            zone.trim_end_matches('.').to_string(),
        ]
    }

    /// Turns Knot's signing of the zones on or off (`knotc reload`): off, it
    /// serves what updates add without signatures, as a provider that signs
    /// later does; on again, it signs what is missing.
    ///
    /// # Panics
    /// When the zones have no DNSSEC policy or knotc fails.
    pub fn set_signing(&mut self, on: bool) {
        assert!(self.dnssec, "set_signing needs KnotBuilder::dnssec");
        self.signing = on;
        self.write_config();
        let knotc = find_binary("knotc").expect("knotc");
        let out = Command::new(knotc)
            .arg("-c")
            .arg(self.conf_path())
            .arg("reload")
            .output()
            .expect("run knotc reload");
        assert!(
            out.status.success(),
            "knotc reload: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The zone's key-signing DNSKEY records as served, as trust-anchor lines
    /// (`zone. IN DNSKEY 257 3 13 ...`), polled until the zone is signed.
    ///
    /// # Panics
    /// When no KSK is served within the deadline.
    pub fn trust_anchor(&self, zone: &str) -> Vec<String> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let keys: Vec<String> = self
                .dig(zone, "DNSKEY")
                .into_iter()
                .filter(|k| k.starts_with("257 "))
                .map(|k| format!("{}. IN DNSKEY {k}", zone.trim_end_matches('.')))
                .collect();
            if !keys.is_empty() {
                return keys;
            }
            assert!(
                Instant::now() < deadline,
                "{zone} is not signed: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The answer lines of `dig +dnssec` (records and their RRSIGs).
    pub fn dig_dnssec(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut command = dig_command(self.port, name, rtype);
        command.arg("+dnssec");
        let out = command.output().expect("run dig");
        answer_lines(&out.stdout)
    }

    /// The temporary directory (config, zones, journal, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KnotEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The answer lines of `dig +short +norec @127.0.0.1 -p port name rtype`.
pub fn dig(port: u16, name: &str, rtype: &str) -> Vec<String> {
    let out = dig_command(port, name, rtype).output().expect("run dig");
    assert!(
        out.status.success(),
        "dig {name} {rtype} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    answer_lines(&out.stdout)
}

/// The answer lines of dig's output: neither empty nor a `;` comment.
pub fn answer_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(String::from)
        .collect()
}

/// `dig +short +norec` for `name rtype` at `127.0.0.1:port`.
pub fn dig_command(port: u16, name: &str, rtype: &str) -> Command {
    let mut cmd = Command::new(find_binary("dig").unwrap_or_else(|| PathBuf::from("dig")));
    cmd.args([
        "+short",
        "+norec",
        "+time=2",
        "+tries=1",
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        name,
        rtype,
    ]);
    cmd
}

/// True when the server on `port` answers an SOA query for `zone`.
pub fn soa_answered(port: u16, zone: &str) -> bool {
    dig_command(port, zone, "SOA")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .count()
                    == 7
        })
}

/// SIGTERM by pid, wait up to 5 s, then SIGKILL and wait.
pub fn stop_child(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        super::sys::signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}
