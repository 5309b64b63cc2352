//! A PowerDNS Authoritative server (`pdns_server`) for a test: the sqlite3
//! backend in a temporary directory, DNS and the HTTP API on free loopback ports,
//! run as the current user, zones loaded with `pdnsutil load-zone`. Readiness is
//! a real SOA query and an API request polled with a deadline; `Drop` stops the
//! server by its pid.
//!
//! ```ignore
//! let Some(pdns) = PdnsEnv::start("example.test", &minimal_zone("example.test")) else { return };
//! assert_eq!(pdns.dig("ns1.example.test", "A"), vec!["127.0.0.1"]);
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::knot::{dig, soa_answered, stop_child};
use super::{find_binary, free_port, require_all, spawn_until_ready};

const START_ATTEMPTS: usize = 5;
const READY_DEADLINE: Duration = Duration::from_secs(20);
/// Where Debian's `pdns-backend-sqlite3` keeps the schema.
const SCHEMAS: &[&str] = &[
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
];

/// A running pdns_server; stopped when dropped.
pub struct PdnsEnv {
    dir: tempfile::TempDir,
    dns_port: u16,
    api_port: u16,
    api_key: String,
    child: Option<Child>,
}

impl PdnsEnv {
    /// A server with one zone; `body` is zone-file text relative to
    /// `$ORIGIN zone.` with a default `$TTL 300`. `None` when PowerDNS is not
    /// installed (outside CI).
    pub fn start(zone: &str, body: &str) -> Option<PdnsEnv> {
        Self::start_zones(&[(zone, body)])
    }

    /// A server with several zones.
    ///
    /// # Panics
    /// When the server does not start (its log is in the message).
    pub fn start_zones(zones: &[(&str, &str)]) -> Option<PdnsEnv> {
        if !require_all(&["pdns_server", "pdnsutil", "sqlite3", "dig"]) {
            return None;
        }
        let schema = SCHEMAS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("the sqlite3 schema of pdns-backend-sqlite3 (install pdns-backend-sqlite3)");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut env = PdnsEnv {
            dir,
            dns_port: 0,
            api_port: 0,
            api_key: format!("pdns-test-key-{}", std::process::id()),
            child: None,
        };
        let out = Command::new(find_binary("sqlite3").expect("sqlite3"))
            .arg(env.db_path())
            .arg(format!(".read {}", schema.display()))
            .output()
            .expect("run sqlite3");
        assert!(
            out.status.success(),
            "creating the PowerDNS database failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut failures = Vec::new();
        for attempt in 0..START_ATTEMPTS {
            env.dns_port = free_port();
            env.api_port = free_port();
            env.write_config();
            if attempt == 0 {
                for (zone, body) in zones {
                    env.load_zone(zone, body);
                }
            }
            match env.spawn_and_wait(zones[0].0) {
                Ok(()) => return Some(env),
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "pdns_server did not start after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    /// `http://127.0.0.1:PORT`, the `apiurl` of the powerdns provider.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn dns_port(&self) -> u16 {
        self.dns_port
    }

    /// `127.0.0.1:PORT` of the DNS listener.
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// The powerdns provider keys for this server.
    pub fn provider_keys(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("handler".to_string(), "powerdns".to_string()),
            ("apiurl".to_string(), self.api_url()),
            ("apikey".to_string(), self.api_key.clone()),
        ])
    }

    /// What the server serves for `name rtype` (`dig +short`).
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        dig(self.dns_port, name, rtype)
    }

    /// Adds a zone while the server runs (`pdnsutil load-zone`).
    pub fn load_zone(&self, zone: &str, body: &str) {
        let zone = zone.trim_end_matches('.');
        let file = self.dir.path().join(format!("{zone}.zone"));
        std::fs::write(&file, format!("$ORIGIN {zone}.\n$TTL 300\n{body}"))
            .expect("write zone file");
        let out = Command::new(find_binary("pdnsutil").expect("pdnsutil"))
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .args(["load-zone", zone])
            .arg(&file)
            .output()
            .expect("run pdnsutil");
        assert!(
            out.status.success(),
            "pdnsutil load-zone {zone} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The contents of `name rtype` as the server holds them (`pdnsutil
    /// list-zone`), sorted: also where `dig` would follow a CNAME instead.
    pub fn stored(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let out = self.pdnsutil(&["list-zone", zone.trim_end_matches('.')]);
        let name = name.trim_end_matches('.');
        let mut found: Vec<String> = out
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() > 4 && fields[0].trim_end_matches('.') == name && fields[3] == rtype)
                    .then(|| fields[4..].join(" "))
            })
            .collect();
        found.sort();
        found
    }

    /// Deletes the RRset `name rtype` (`pdnsutil delete-rrset`, which takes
    /// the name relative to the zone), as an administrator would.
    pub fn delete_rrset(&self, zone: &str, name: &str, rtype: &str) {
        let (zone, name) = (zone.trim_end_matches('.'), name.trim_end_matches('.'));
        let relative = match name.strip_suffix(zone) {
            Some("") => "@",
            Some(rest) => rest.trim_end_matches('.'),
            None => panic!("{name} is not in zone {zone}"),
        };
        self.pdnsutil(&["delete-rrset", zone, relative, rtype]);
    }

    /// Runs `pdnsutil` on this server's configuration; its standard output.
    fn pdnsutil(&self, args: &[&str]) -> String {
        let out = Command::new(find_binary("pdnsutil").expect("pdnsutil"))
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .args(args)
            .output()
            .expect("run pdnsutil");
        assert!(
            out.status.success(),
            "pdnsutil {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// pdns_server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("pdns.sqlite3")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pdns.log")
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        // No security poll (no network here); no caches, so answers follow the API at once.
        let conf = format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             local-address=127.0.0.1\n\
             local-port={dns}\n\
             api=yes\n\
             api-key={key}\n\
             webserver=yes\n\
             webserver-address=127.0.0.1\n\
             webserver-port={api}\n\
             webserver-allow-from=127.0.0.0/8\n\
             socket-dir={d}\n\
             guardian=no\n\
             daemon=no\n\
             disable-syslog=yes\n\
             security-poll-suffix=\n\
             cache-ttl=0\n\
             query-cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             zone-cache-refresh-interval=0\n\
             loglevel=4\n",
            db = self.db_path().display(),
            dns = self.dns_port,
            api = self.api_port,
            key = self.api_key,
        );
        std::fs::write(self.dir.path().join("pdns.conf"), conf).expect("write pdns.conf");
    }

    /// Spawns pdns_server and polls its API and an SOA query until both
    /// answer; on failure returns its log.
    fn spawn_and_wait(&mut self, zone: &str) -> Result<(), String> {
        let binary = find_binary("pdns_server").ok_or("pdns_server not found")?;
        let mut command = Command::new(binary);
        command.arg(format!("--config-dir={}", self.dir.path().display()));
        let what = format!(
            "pdns_server (DNS port {}, API port {})",
            self.dns_port, self.api_port
        );
        let child = spawn_until_ready(
            command,
            &what,
            &self.log_path(),
            READY_DEADLINE,
            Duration::from_millis(50),
            || self.api_answers() && soa_answered(self.dns_port, zone),
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// True when `GET /api/v1/servers/localhost` answers 200 with our key.
    fn api_answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.api_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /api/v1/servers/localhost HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n",
            self.api_key
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    }
}

impl Drop for PdnsEnv {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}
