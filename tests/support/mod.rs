//! Support shared by the integration tests: real servers started on loopback with
//! a temporary directory and a free port, stopped by a `Drop` guard, so tests run
//! in parallel and leave nothing behind.
//!
//! Use from a test file with `mod support;`.

#![allow(dead_code)]

pub mod acme_script;
pub mod bind;
pub mod cdm;
pub mod cycle;
pub mod dkim;
pub mod etcd;
pub mod http;
pub mod inwx;
pub mod knot;
pub mod mini_ca;
pub mod nginx;
pub mod opendkim;
pub mod pdns;
pub mod pebble;
pub mod postfix;
pub mod rspamd;
pub mod sys;
pub mod tls;
pub mod unbound;

use std::path::PathBuf;

/// Directories searched besides `PATH` (server binaries live in `sbin`).
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// The full path of `binary`, searched in `PATH` and the `sbin` directories.
pub fn find_binary(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// True when `binary` is installed. When it is missing: under `CI=true` this
/// panics (CI must not silently skip the real tests); otherwise it prints a loud
/// `SKIPPED` line to stderr and returns false, and the test returns early.
pub fn require(binary: &str) -> bool {
    if find_binary(binary).is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{binary} is not installed, but CI=true requires it: run scripts/test.sh");
    }
    eprintln!("SKIPPED: {binary} not installed, run scripts/test.sh");
    false
}

/// True when the tests run as root (a resolver on port 53, a Postfix in a
/// mount namespace of its own need it); like [`require`] otherwise.
pub fn require_root() -> bool {
    if sys::is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this test needs root (port 53, mount namespaces), but CI=true requires it");
    }
    eprintln!("SKIPPED: this test needs root (port 53, mount namespaces)");
    false
}

/// `require` for several binaries at once.
pub fn require_all(binaries: &[&str]) -> bool {
    binaries.iter().all(|b| require(b))
}

/// A free loopback TCP and UDP port (both are needed by a DNS server). Another
/// process may take it before the server binds it; callers retry on failure.
///
/// A port is handed out at most once per test process: the kernel may offer a
/// released port again before the first server has bound it, and Knot binds
/// with `SO_REUSEPORT`, so two servers of parallel tests would share the port
/// and answer each other's queries.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback TCP port");
        let port = tcp.local_addr().expect("local address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A random base64 secret of 32 bytes (for TSIG keys).
pub fn random_secret() -> String {
    use base64::Engine;
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs `openssl` with `args` in `dir`; panics with its stderr when it fails.
/// Returns its standard output.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every entry under `dir` (files, directories, links; links not followed).
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// The public key in `dir/cert.pem` and the one of `dir/privkey.pem`, computed
/// without the program's code (x509-parser and rcgen); equal for a matching pair.
pub fn deployed_pair(dir: &std::path::Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert_pem = std::fs::read(dir.join("cert.pem")).map_err(|e| format!("cert.pem: {e}"))?;
    let key_pem = std::fs::read_to_string(dir.join("privkey.pem"))
        .map_err(|e| format!("privkey.pem: {e}"))?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&cert_pem).map_err(|e| format!("cert.pem: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| format!("cert.pem: {e}"))?;
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| format!("privkey.pem: {e}"))?;
    Ok((
        cert.public_key().subject_public_key.data.to_vec(),
        key.public_key_raw().to_vec(),
    ))
}

/// Runs a server's own configuration checker (`command`, naming `config`) and
/// panics with its output and the configuration when it refuses it.
pub fn check_config(mut command: std::process::Command, config: &std::path::Path) {
    let out = command.output().expect("run the configuration checker");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}\nconfig:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(config).unwrap_or_default()
    );
}

/// Starts a server (`command`) in its own process group with stdout and stderr
/// going to `log`, and polls `ready` until it says so. When the server exits
/// or `deadline` passes first, it is stopped and the error carries `what` and
/// the server's log.
pub fn spawn_until_ready(
    mut command: std::process::Command,
    what: &str,
    log: &std::path::Path,
    deadline: std::time::Duration,
    poll: std::time::Duration,
    ready: impl Fn() -> bool,
) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let until = std::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited with {status}:\n{}", read_log()));
        }
        if ready() {
            return Ok(child);
        }
        if std::time::Instant::now() > until {
            knot::stop_child(&mut child);
            return Err(format!(
                "{what} did not become ready within {deadline:?}:\n{}",
                read_log()
            ));
        }
        std::thread::sleep(poll);
    }
}
