//! A real TLS server (`openssl s_server`) on loopback that follows a deployed
//! certificate the way a service reloaded after rollover does, and independent
//! DANE computations with the `openssl` command line.
//!
//! The server watches `DIR/..data` (the symlink rollover swaps) and restarts
//! `s_server` with `DIR/cert.pem`, `DIR/chain.pem` and `DIR/privkey.pem` when it
//! changes. It runs in its own process group and is stopped by its pid.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs `openssl` with `args` in `dir`; `None` when it fails.
fn try_openssl(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The TLSA association data of the first certificate in `pem_file` for
/// `selector` and `matching`, computed by the `openssl` command line (RFC 6698
/// §2.1): selector 0 the DER certificate, 1 its SubjectPublicKeyInfo; matching
/// 0 the data, 1 SHA-256, 2 SHA-512. Scratch files go to `work`.
pub fn openssl_tlsa_data(pem_file: &Path, selector: u8, matching: u8, work: &Path) -> String {
    let pem = pem_file.display().to_string();
    let der = work.join(format!("selected-{selector}.der"));
    let der_s = der.display().to_string();
    match selector {
        0 => {
            super::openssl(
                work,
                &["x509", "-in", &pem, "-outform", "DER", "-out", &der_s],
            );
        }
        1 => {
            let pubkey = work.join("pubkey.pem").display().to_string();
            super::openssl(
                work,
                &["x509", "-in", &pem, "-pubkey", "-noout", "-out", &pubkey],
            );
            super::openssl(
                work,
                &[
                    "pkey", "-pubin", "-in", &pubkey, "-outform", "DER", "-out", &der_s,
                ],
            );
        }
        other => panic!("selector {other}"),
    }
    let digest = |alg: &str| {
        let out = super::openssl(work, &["dgst", alg, "-r", &der_s]);
        out.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    match matching {
        0 => hex(&std::fs::read(&der).expect("read DER")),
        1 => digest("-sha256"),
        2 => digest("-sha512"),
        other => panic!("matching type {other}"),
    }
}

/// The TLSA records `dig` shows, as `(usage, selector, matching, hex data)`
/// (dig splits long data into groups and writes it in upper case).
pub fn parse_tlsa_lines(lines: &[String]) -> Vec<(u8, u8, u8, String)> {
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let mut n = || words.next()?.parse::<u8>().ok();
            let (u, s, m) = (n()?, n()?, n()?);
            let data: String = words.collect::<Vec<_>>().concat().to_lowercase();
            Some((u, s, m, data))
        })
        .collect()
}

/// The certificate `openssl s_client` is shown by the server on `port`, as
/// PEM; `None` when no handshake happened (server down or restarting).
pub fn presented_cert(port: u16) -> Option<String> {
    handshake(port, &[]).map(|(pem, _)| pem)
}

/// A handshake with `openssl s_client`, with `tlsa` (presentation-format
/// RDATA, `3 1 1 ab..`) as the DANE records to verify the server's certificate
/// against (OpenSSL's own DANE verifier, RFC 7671; DANE-EE without name
/// checks, RFC 7672 §3.1.1). Returns the certificate shown (PEM) and whether
/// verification succeeded by a matching TLSA record; `None` when no handshake
/// happened.
pub fn handshake(port: u16, tlsa: &[String]) -> Option<(String, bool)> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "www.example.test",
    ]);
    if !tlsa.is_empty() {
        cmd.args([
            "-dane_tlsa_domain",
            "www.example.test",
            "-dane_ee_no_namechecks",
        ]);
        for rdata in tlsa {
            cmd.args(["-dane_tlsa_rrdata", rdata]);
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text[start..].find("-----END CERTIFICATE-----")? + start;
    let pem = format!("{}-----END CERTIFICATE-----\n", &text[start..end]);
    let verified = !tlsa.is_empty()
        && text.contains("Verification: OK")
        && text
            .lines()
            .any(|l| l.starts_with("DANE TLSA ") && l.contains(" matched "));
    Some((pem, verified))
}

/// The SHA-256 of the SubjectPublicKeyInfo of a PEM certificate (TLSA 3 1 1
/// data), by the `openssl` command line; `None` when it cannot be read.
pub fn spki_sha256(pem: &str, work: &Path) -> Option<String> {
    let cert = work.join("presented.pem");
    std::fs::write(&cert, pem).ok()?;
    let pubkey = work.join("presented-pub.pem").display().to_string();
    let der = work.join("presented-pub.der").display().to_string();
    let cert = cert.display().to_string();
    try_openssl(
        work,
        &["x509", "-in", &cert, "-pubkey", "-noout", "-out", &pubkey],
    )?;
    try_openssl(
        work,
        &[
            "pkey", "-pubin", "-in", &pubkey, "-outform", "DER", "-out", &der,
        ],
    )?;
    let out = try_openssl(work, &["dgst", "-sha256", "-r", &der])?;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// `openssl s_server` following the certificate deployed in a directory.
pub struct TlsServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    starts: Arc<AtomicUsize>,
    watcher: Option<JoinHandle<()>>,
}

impl TlsServer {
    /// Starts a watcher for `dir` (`DESTINATION/<name>`): whenever `dir/..data`
    /// points somewhere new, the server is restarted with the files there.
    pub fn follow(dir: PathBuf, port: u16) -> TlsServer {
        let stop = Arc::new(AtomicBool::new(false));
        let starts = Arc::new(AtomicUsize::new(0));
        let (stopped, started) = (stop.clone(), starts.clone());
        let watcher = std::thread::spawn(move || {
            let mut child: Option<Child> = None;
            let mut serving: Option<PathBuf> = None;
            while !stopped.load(Ordering::SeqCst) {
                let now = std::fs::read_link(dir.join("..data")).ok();
                if now.is_some() && now != serving {
                    if let Some(mut old) = child.take() {
                        stop_child(&mut old);
                    }
                    child = Some(start_s_server(&dir, port));
                    serving = now;
                    started.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(mut old) = child.take() {
                stop_child(&mut old);
            }
        });
        TlsServer {
            port,
            stop,
            starts,
            watcher: Some(watcher),
        }
    }

    /// How often the server was (re)started.
    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    /// Waits until the server presents a certificate whose 3 1 1 data is
    /// `spki`, with a deadline.
    pub fn wait_presenting(&self, spki: &str, work: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if presented_cert(self.port)
                .and_then(|pem| spki_sha256(&pem, work))
                .as_deref()
                == Some(spki)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the TLS server did not present the certificate {spki} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Starts `s_server` on `port` with the files in `dir` and waits until it
/// accepts connections (retrying while the old one's port is released).
fn start_s_server(dir: &Path, port: u16) -> Child {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = |f: &str| dir.join(f).display().to_string();
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                &p("cert.pem"),
                "-cert_chain",
                &p("chain.pem"),
                "-key",
                &p("privkey.pem"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn openssl s_server");
        let up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < up {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop_child(&mut child);
        assert!(
            Instant::now() < deadline,
            "openssl s_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM by pid, wait up to 5 s, then SIGKILL and wait.
fn stop_child(child: &mut Child) {
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

/// One observation of the checker: the certificate shown and whether OpenSSL
/// verified it against the TLSA records served right before the handshake.
#[derive(Clone, Debug)]
pub struct Sample {
    pub spki: String,
    pub matched: bool,
    pub served: Vec<(u8, u8, u8, String)>,
}

/// A thread that, until stopped, reads the TLSA records DNS serves and has
/// OpenSSL verify the certificate the TLS server presents against them, and
/// records each sample.
pub struct DaneChecker {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl DaneChecker {
    /// `tlsa` returns the `dig` lines of the TLSA records at the server's name.
    pub fn start(
        port: u16,
        work: PathBuf,
        tlsa: impl Fn() -> Vec<String> + Send + 'static,
    ) -> DaneChecker {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stopped, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            std::fs::create_dir_all(&work).expect("checker work dir");
            while !stopped.load(Ordering::SeqCst) {
                if let Some(sample) = sample(port, &work, &tlsa) {
                    out.lock().expect("samples").push(sample);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        DaneChecker {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// Waits until a sample shows the certificate with `spki`: every later
    /// handshake starts after it.
    pub fn wait_for(&self, spki: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.samples().iter().any(|s| s.spki == spki) {
            assert!(
                Instant::now() < deadline,
                "the checker never saw the certificate {spki}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the thread and returns every sample.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.samples()
    }
}

impl Drop for DaneChecker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One check: the TLSA records DNS serves, then at once a handshake that
/// OpenSSL verifies against them (only records there before the handshake
/// count). The certificate shown is identified by its 3 1 1 data.
pub fn sample(port: u16, work: &Path, tlsa: &dyn Fn() -> Vec<String>) -> Option<Sample> {
    let lines = tlsa();
    let rdata: Vec<String> = parse_tlsa_lines(&lines)
        .into_iter()
        .map(|(u, s, m, data)| format!("{u} {s} {m} {data}"))
        .collect();
    let (pem, matched) = handshake(port, &rdata)?;
    let spki = spki_sha256(&pem, work)?;
    Some(Sample {
        spki,
        matched,
        served: parse_tlsa_lines(&lines),
    })
}
