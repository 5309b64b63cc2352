//! A real nginx serving TLS on a loopback port for one test, with its own
//! configuration, pid file, logs and temporary directories in a temporary
//! directory. It runs in the foreground as our child, in its own process group,
//! and is stopped (by its pid) when the guard drops.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NginxEnv {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl NginxEnv {
    /// Starts nginx serving `server_name` over TLS with the given certificate
    /// chain, key and DH parameters. `None` when nginx is missing outside CI.
    pub fn start(
        server_name: &str,
        fullchain: &Path,
        key: &Path,
        dhparam: &Path,
    ) -> Option<NginxEnv> {
        if !super::require("nginx") || !super::require("openssl") {
            return None;
        }
        let nginx = super::find_binary("nginx")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let port = super::free_port();
        let temp = |name: &str| d.join("tmp").join(name).display().to_string();
        std::fs::create_dir(d.join("tmp")).expect("tmp dir");
        let config = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {pid};\nerror_log {log} info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {b};\n  proxy_temp_path {p};\n  fastcgi_temp_path {f};\n  uwsgi_temp_path {u};\n  scgi_temp_path {s};\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {server_name};\n    ssl_certificate {chain};\n    ssl_certificate_key {key};\n    ssl_dhparam {dh};\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n",
            pid = d.join("nginx.pid").display(),
            log = d.join("error.log").display(),
            b = temp("body"),
            p = temp("proxy"),
            f = temp("fastcgi"),
            u = temp("uwsgi"),
            s = temp("scgi"),
            chain = fullchain.display(),
            key = key.display(),
            dh = dhparam.display(),
        );
        std::fs::write(d.join("nginx.conf"), config).expect("write nginx.conf");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn nginx");
        let env = NginxEnv { child, dir, port };
        env.wait_ready();
        Some(env)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.error_log_path()).unwrap_or_default()
    }

    /// The certificate nginx serves for `server_name` (PEM), fetched with
    /// `openssl s_client`; `None` when no TLS handshake succeeded.
    pub fn served_certificate(&self, server_name: &str) -> Option<String> {
        let out = Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-servername", server_name])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let begin = text.find("-----BEGIN CERTIFICATE-----")?;
        let end = text.find("-----END CERTIFICATE-----")? + "-----END CERTIFICATE-----".len();
        Some(format!("{}\n", &text[begin..end]))
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.dir.path().join("nginx.pid").exists()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not start:\n{}", self.log());
    }
}

impl Drop for NginxEnv {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        super::sys::signal(pid, libc::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    super::sys::signal(-pid, libc::SIGKILL);
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
