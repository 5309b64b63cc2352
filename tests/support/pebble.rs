//! A real Pebble (Let's Encrypt's ACME test CA) on loopback for one test.
//!
//! Debian's pebble ships neither its TLS certificate nor the minica root, so a
//! throw-away CA and a `localhost`/`127.0.0.1` server certificate are made with
//! `openssl` in a temporary directory. Pebble runs in its own process group and
//! is killed (by its pid) and reaped when the guard drops.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cryptdomainmgr::acme::http::AcmeHttp;

/// Environment for a fast, deterministic baseline; override per test.
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("PEBBLE_VA_NOSLEEP", "1"),
    ("PEBBLE_WFE_NONCEREJECT", "0"),
    ("PEBBLE_AUTHZREUSE", "0"),
];

pub struct PebbleEnv {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    management_port: u16,
}

impl PebbleEnv {
    /// Starts Pebble validating DNS-01 against `dns_server` (when given), with
    /// [`DEFAULT_ENV`]. `None` when pebble or openssl is missing outside CI.
    pub fn start(dns_server: Option<SocketAddr>) -> Option<PebbleEnv> {
        Self::start_with_env(dns_server, &[])
    }

    /// Like [`PebbleEnv::start`], with `env` overriding [`DEFAULT_ENV`] (e.g.
    /// `("PEBBLE_WFE_NONCEREJECT", "50")`).
    pub fn start_with_env(
        dns_server: Option<SocketAddr>,
        env: &[(&str, &str)],
    ) -> Option<PebbleEnv> {
        if !super::require("pebble") || !super::require("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        make_tls_certs(dir.path());
        let port = super::free_port();
        let management_port = super::free_port();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": dir.path().join("server.pem"),
                "privateKey": dir.path().join("server.key"),
                "httpPort": super::free_port(),
                "tlsPort": super::free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("pebble log");
        let mut cmd = Command::new("pebble");
        cmd.arg("-config").arg(&config_path);
        if let Some(dns) = dns_server {
            cmd.arg("-dnsserver").arg(dns.to_string());
        }
        for (k, v) in DEFAULT_ENV.iter().chain(env) {
            cmd.env(k, v);
        }
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn pebble");
        let env = PebbleEnv {
            child,
            dir,
            port,
            management_port,
        };
        env.wait_ready();
        Some(env)
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root of Pebble's own TLS certificate: pass it as `cacert`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A scratch directory that lives as long as Pebble.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The root that issues the test certificates (new at every start).
    pub async fn root_pem(&self) -> String {
        self.management_get("/roots/0").await
    }

    /// The intermediate between the root and the issued leaves.
    pub async fn intermediate_pem(&self) -> String {
        self.management_get("/intermediates/0").await
    }

    async fn management_get(&self, path: &str) -> String {
        let url = format!("https://127.0.0.1:{}{path}", self.management_port);
        let http = AcmeHttp::new(Some(&self.ca_cert_path())).expect("https client");
        let (status, body) = http.get(&url).await.expect("pebble management interface");
        assert_eq!(status, 200, "GET {url}");
        String::from_utf8(body.to_vec()).expect("PEM is text")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Polls the directory over HTTPS until it answers 200, with a deadline.
    fn wait_ready(&self) {
        let url = self.directory_url();
        let ca = self.ca_cert_path();
        // A thread with its own runtime: the caller may already be inside one.
        let ready = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let http = AcmeHttp::new(Some(&ca)).expect("https client");
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if let Ok((200, _)) = http.get(&url).await {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                false
            })
        })
        .join()
        .expect("readiness thread");
        assert!(ready, "pebble did not become ready:\n{}", self.log());
    }
}

impl Drop for PebbleEnv {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        super::sys::signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A throw-away CA (`ca.pem`) and a server certificate for localhost and
/// 127.0.0.1 (`server.pem`, `server.key`) in `dir`.
pub fn make_tls_certs(dir: &Path) {
    let run = |args: &[&str]| {
        super::openssl(dir, args);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA for pebble",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}
