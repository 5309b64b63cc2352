//! Running the `cryptdomainmgr` binary in tests, and a tiny HTTP server that plays
//! the public-IP lookup service (`ip4lookup`) on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs the binary with `args` in `cwd`.
pub fn cdm(cwd: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run cryptdomainmgr");
    Run::from(output)
}

/// The environment variable that starts the program's clock at another time
/// (builds with test hooks only).
pub const CLOCK: &str = "CRYPTDOMAINMGR_TEST_NOW";

/// The time `seconds` from now, as [`CLOCK`] takes it.
pub fn time_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// Runs the binary with `args` in `cwd` and the extra environment `env`.
pub fn cdm_env(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"));
    command.args(args).current_dir(cwd);
    for (key, value) in env {
        command.env(key, value);
    }
    Run::from(command.output().expect("run cryptdomainmgr"))
}

/// Runs the binary with `args` in `cwd`, with `PATH` starting with `path_first`
/// (where a test puts stand-ins for programs such as `systemctl`).
pub fn cdm_with_path(cwd: &Path, path_first: &Path, args: &[&str]) -> Run {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(path_first.to_path_buf()).chain(std::env::split_paths(&path));
    let output = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
        .args(args)
        .current_dir(cwd)
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .output()
        .expect("run cryptdomainmgr");
    Run::from(output)
}

/// Writes an executable shell script `dir/name` (a stand-in for a program).
pub fn write_script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// An HTTP server on loopback answering every request with `status` and `body`,
/// until dropped.
pub struct HttpAnswer {
    pub url: String,
    stop: Arc<AtomicBool>,
}

impl HttpAnswer {
    pub fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/ip", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let body = body.to_string();
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpAnswer { url, stop }
    }
}

impl Drop for HttpAnswer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = std::net::TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .trim_end_matches("/ip"),
        );
    }
}

/// Runs the binary with `args` in `cwd` under `umask`.
pub fn cdm_with_umask(cwd: &Path, args: &[&str], umask: u32, env: &[(&str, String)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"));
    command.args(args).current_dir(cwd);
    for (key, value) in env {
        command.env(key, value);
    }
    super::sys::umask_in_child(&mut command, umask);
    Run::from(command.output().expect("run cryptdomainmgr"))
}

/// Starts the binary with `args` in `cwd` without waiting for it.
pub fn cdm_spawn(cwd: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start cryptdomainmgr")
}
