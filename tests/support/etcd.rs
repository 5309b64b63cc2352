//! A real etcd cluster (Debian's `etcd-server`) of N members on loopback, each
//! with its own data directory; members can be killed one by one, and
//! `etcdctl` reads what the program stored.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::knot::stop_child;

pub struct Member {
    pub name: String,
    pub client_port: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    /// With TLS: the CA that signed the members' certificate.
    pub ca: Option<std::path::PathBuf>,
    keep: Option<tempfile::TempDir>,
    /// After [`EtcdCluster::enable_auth`]: what etcdctl logs in with.
    login: Option<(String, String)>,
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster answers. `None` when
    /// etcd or etcdctl is missing outside CI.
    pub fn start(n: usize) -> Option<EtcdCluster> {
        Self::start_with(n, &[])
    }

    /// One member serving its clients over TLS (a certificate for
    /// 127.0.0.1 from a test CA, `ca`).
    pub fn start_tls() -> Option<EtcdCluster> {
        if !super::require("openssl") {
            return None;
        }
        let certs = tempfile::tempdir().expect("temp dir");
        super::pebble::make_tls_certs(certs.path());
        let flags = [
            format!("--cert-file={}", certs.path().join("server.pem").display()),
            format!("--key-file={}", certs.path().join("server.key").display()),
        ];
        let mut cluster = Self::start_inner(1, &flags, Some(certs.path().join("ca.pem")))?;
        cluster.keep = Some(certs);
        Some(cluster)
    }

    /// Like [`EtcdCluster::start`], with extra flags for every member.
    pub fn start_with(n: usize, extra: &[String]) -> Option<EtcdCluster> {
        Self::start_inner(n, extra, None)
    }

    fn start_inner(
        n: usize,
        extra: &[String],
        ca: Option<std::path::PathBuf>,
    ) -> Option<EtcdCluster> {
        if !super::require("etcd") || !super::require("etcdctl") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| (super::free_port(), super::free_port()))
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let scheme = if ca.is_some() { "https" } else { "http" };
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("log");
            let mut cmd = Command::new(super::find_binary("etcd").expect("etcd"));
            cmd.arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(dir.path().join(&name))
                .arg("--listen-client-urls")
                .arg(format!("{scheme}://127.0.0.1:{client}"))
                .arg("--advertise-client-urls")
                .arg(format!("{scheme}://127.0.0.1:{client}"))
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-cluster")
                .arg(initial.join(","))
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg(format!("cdm-test-{}", ports[0].0))
                .arg("--heartbeat-interval")
                .arg("50")
                .arg("--election-timeout")
                .arg("500")
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log);
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            let child = cmd.spawn().expect("spawn etcd");
            members.push(Member {
                name,
                client_port: *client,
                child: Some(child),
            });
        }
        let cluster = EtcdCluster {
            dir,
            members,
            ca,
            keep: None,
            login: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.healthy() {
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy:\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cluster)
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every member's client URL, comma-separated (`storeendpoints`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let scheme = if self.ca.is_some() { "https" } else { "http" };
                format!("{scheme}://127.0.0.1:{}", m.client_port)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcdctl` against every member.
    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(super::find_binary("etcdctl").expect("etcdctl"));
        command
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoints())
            .arg("--command-timeout=3s");
        if let Some(ca) = &self.ca {
            command.arg(format!("--cacert={}", ca.display()));
        }
        if let Some((user, password)) = &self.login {
            command.arg(format!("--user={user}:{password}"));
        }
        command.args(args).output().expect("run etcdctl")
    }

    /// Turns authentication on with user `root` and `password`.
    pub fn enable_auth(&mut self, password: &str) {
        for args in [
            vec!["user", "add", "root", "--new-user-password", password],
            vec!["auth", "enable"],
        ] {
            let out = self.etcdctl(&args);
            assert!(
                out.status.success(),
                "etcdctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.login = Some(("root".into(), password.into()));
    }

    fn healthy(&self) -> bool {
        self.etcdctl(&["put", "/health-check", "ok"])
            .status
            .success()
    }

    /// Every key and value, as `etcdctl get --prefix ""` prints them.
    pub fn dump(&self) -> String {
        let out = self.etcdctl(&["get", "--prefix", ""]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The raw value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(&["get", "--print-value-only", key]);
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(child) = member.child.as_mut() {
                stop_child(child);
            }
        }
    }
}

/// Writes a `storesecretfile` (32 random bytes, base64) to `dir/name`.
pub fn secret_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, super::random_secret()).expect("write secret");
    path
}
