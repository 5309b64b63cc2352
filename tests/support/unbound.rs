//! A validating `unbound` for a test: it trusts one zone's key (the trust
//! anchor the test gives), sends the zone's questions to the test's Knot (a
//! stub zone) and nothing anywhere else. It listens on port 53 of a loopback
//! address of its own (127.53.x.y), because the system resolver (that Postfix
//! uses) can only be pointed at port 53. `Drop` stops it by its pid.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::knot::stop_child;
use super::{find_binary, require_all, spawn_until_ready};

pub struct UnboundEnv {
    dir: tempfile::TempDir,
    addr: Ipv4Addr,
    child: Option<Child>,
}

impl UnboundEnv {
    /// Starts unbound validating `zone` with `anchors` (trust-anchor lines),
    /// its questions sent to `127.0.0.1@knot_port`. `None` when unbound is not
    /// installed (outside CI).
    ///
    /// # Panics
    /// When it does not start.
    pub fn start(zone: &str, anchors: &[String], knot_port: u16) -> Option<UnboundEnv> {
        if !require_all(&["unbound", "dig"]) || !super::require_root() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut failures = Vec::new();
        for _ in 0..5 {
            let bytes: [u8; 2] = rand_bytes();
            let addr = Ipv4Addr::new(127, 53, bytes[0], bytes[1].max(1));
            let anchors: String = anchors
                .iter()
                .map(|a| format!("  trust-anchor: \"{a}\"\n"))
                .collect();
            let d = dir.path().display();
            let conf = format!(
                "server:\n  interface: {addr}@53\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
                 directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  \
                 verbosity: 1\n  val-log-level: 2\n  access-control: 127.0.0.0/8 allow\n  \
                 do-not-query-localhost: no\n  do-ip6: no\n  module-config: \"validator iterator\"\n  \
                 harden-dnssec-stripped: yes\n  cache-max-negative-ttl: 1\n  prefetch: no\n  \
                 num-threads: 1\n  local-zone: \"test.\" nodefault\n{anchors}\
                 stub-zone:\n  name: \"{zone}\"\n  stub-addr: 127.0.0.1@{knot_port}\n\
                 remote-control:\n  control-enable: no\n"
            );
            let path = dir.path().join("unbound.conf");
            std::fs::write(&path, conf).expect("write unbound.conf");
            let check = Command::new(find_binary("unbound-checkconf").expect("unbound-checkconf"))
                .arg(&path)
                .output()
                .expect("run unbound-checkconf");
            assert!(
                check.status.success(),
                "unbound-checkconf: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            let mut command = Command::new(find_binary("unbound").expect("unbound"));
            command.arg("-d").arg("-c").arg(&path);
            let probe = zone.to_string();
            match spawn_until_ready(
                command,
                &format!("unbound on {addr}:53"),
                &dir.path().join("unbound.log"),
                Duration::from_secs(15),
                Duration::from_millis(50),
                || answers(addr, &probe),
            ) {
                Ok(child) => {
                    return Some(UnboundEnv {
                        dir,
                        addr,
                        child: Some(child),
                    });
                }
                Err(why) => failures.push(why),
            }
        }
        panic!("unbound did not start:\n{}", failures.join("\n---\n"));
    }

    /// The address it listens on (port 53).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// A `resolv.conf` that points at it and lets the resolver library pass
    /// on its AD bit (glibc drops it without `trust-ad`).
    pub fn resolv_conf(&self) -> PathBuf {
        let path = self.dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            format!(
                "nameserver {}\noptions trust-ad edns0 attempts:1 timeout:2\n",
                self.addr
            ),
        )
        .expect("write resolv.conf");
        path
    }

    /// `dig +dnssec` through it: the answer's flags line and records.
    pub fn dig(&self, name: &str, rtype: &str) -> String {
        let out = Command::new(find_binary("dig").expect("dig"))
            .args(["+dnssec", "+time=2", "+tries=1"])
            .arg(format!("@{}", self.addr))
            .args([name, rtype])
            .stderr(Stdio::null())
            .output()
            .expect("run dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// unbound's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for UnboundEnv {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

/// True when unbound at `addr` answers a question about `zone` validated.
fn answers(addr: Ipv4Addr, zone: &str) -> bool {
    Command::new(find_binary("dig").unwrap_or_else(|| PathBuf::from("dig")))
        .args(["+dnssec", "+time=1", "+tries=1"])
        .arg(format!("@{addr}"))
        .args([zone, "SOA"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            let text = String::from_utf8_lossy(&out.stdout);
            text.contains("NOERROR") && text.contains(" ad")
        })
}

/// Two random bytes (an address of its own for each unbound).
fn rand_bytes() -> [u8; 2] {
    let mut bytes = [0u8; 2];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes
}
