//! Postfix instances for a test, each with its own configuration, queue and
//! log in a temporary directory (`postfix -c DIR`), on loopback ports: a
//! receiving server whose STARTTLS certificate is the deployed one, and a
//! sending one whose SMTP client insists on DANE (`smtp_tls_security_level =
//! dane`, `smtp_dns_support_level = dnssec`) and resolves through a resolver
//! the test gives it. The sender runs in a mount namespace of its own in which
//! `/etc/resolv.conf` is that resolver's (the machine's stays as it is).
//! `Drop` stops each instance (`postfix stop`, then its master by pid).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{find_binary, free_port, require_all};

/// The services both instances run (no chroot: the sender must read the
/// namespace's resolv.conf; no pickup of local mail, no local delivery).
const MASTER_CF: &str = "\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
";

pub struct Postfix {
    dir: tempfile::TempDir,
    /// The port its SMTP server listens on (127.0.0.1).
    pub port: u16,
    running: bool,
}

impl Postfix {
    /// A receiving server for `domain` on a free port, offering STARTTLS with
    /// `cert_dir/fullchain.pem` and `cert_dir/privkey.pem`, discarding what it
    /// accepts. `None` when Postfix is not installed (outside CI).
    pub fn receiver(domain: &str, cert_dir: &Path) -> Option<Postfix> {
        Self::receiver_on(domain, cert_dir, free_port())
    }

    /// [`Postfix::receiver`] on `port`.
    pub fn receiver_on(domain: &str, cert_dir: &Path, port: u16) -> Option<Postfix> {
        let mut postfix = Self::prepare()?;
        postfix.port = port;
        let main = format!(
            "myhostname = mail.{domain}\nmydestination = {domain}\nlocal_recipient_maps =\n\
             local_transport = discard:\nsmtpd_tls_security_level = may\n\
             smtpd_tls_cert_file = {c}/fullchain.pem\nsmtpd_tls_key_file = {c}/privkey.pem\n\
             smtpd_tls_loglevel = 1\n",
            c = cert_dir.display()
        );
        postfix.configure(&main);
        postfix.start(None);
        Some(postfix)
    }

    /// A sending server that relays everything from loopback to
    /// `[relay]:relay_port` with DANE, resolving through `resolv_conf`.
    pub fn dane_sender(relay: &str, relay_port: u16, resolv_conf: &Path) -> Option<Postfix> {
        let mut postfix = Self::prepare()?;
        let main = format!(
            "myhostname = send.example.test\nmydestination =\n\
             relayhost = [{relay}]:{relay_port}\n\
             smtp_tls_security_level = dane\nsmtp_dns_support_level = dnssec\n\
             smtp_host_lookup = dns\nsmtp_tls_loglevel = 1\n\
             smtp_connection_cache_on_demand = no\nsmtp_tls_session_cache_database =\n\
             queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
             smtp_connect_timeout = 5s\n"
        );
        postfix.configure(&main);
        postfix.start(Some(resolv_conf));
        Some(postfix)
    }

    fn prepare() -> Option<Postfix> {
        if !require_all(&["postfix", "postconf"]) || !super::require_root() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        // Postfix's daemons run as the postfix user and must reach the queue.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create postfix directories");
        }
        let chown = Command::new("chown")
            .arg("postfix")
            .arg(dir.path().join("data"))
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown postfix data directory");
        Some(Postfix {
            dir,
            port: free_port(),
            running: false,
        })
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    fn configure(&self, specific: &str) {
        let d = self.dir.path().display();
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
             maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n\
             smtputf8_enable = no\nbiff = no\nsmtpd_peername_lookup = no\n{specific}"
        );
        std::fs::write(self.conf_dir().join("main.cf"), main).expect("write main.cf");
        let master = format!("127.0.0.1:{} inet n - n - - smtpd\n{MASTER_CF}", self.port);
        std::fs::write(self.conf_dir().join("master.cf"), master).expect("write master.cf");
    }

    /// `postfix -c DIR start`, in a new mount namespace with `resolv` over
    /// `/etc/resolv.conf` when given; waits until its SMTP server answers.
    fn start(&mut self, resolv: Option<&Path>) {
        let mut command = Command::new(find_binary("postfix").expect("postfix"));
        command.arg("-c").arg(self.conf_dir()).arg("start");
        if let Some(resolv) = resolv {
            super::sys::bind_mount_in_child(&mut command, resolv, "/etc/resolv.conf");
        }
        let out = command.output().expect("run postfix start");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The argument vector that makes it take up new certificates
    /// (`postfix -c DIR reload`), for a `[service]` command.
    pub fn reload_command(&self) -> Vec<String> {
        let postfix = find_binary("postfix").unwrap_or_else(|| PathBuf::from("postfix"));
        vec![
            postfix.display().to_string(),
            "-c".into(),
            self.conf_dir().display().to_string(),
            "reload".into(),
        ]
    }

    /// Its mail log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Hands one message to its SMTP server; see [`submit`].
    ///
    /// # Errors
    /// As [`submit`].
    pub fn submit(&self, from: &str, to: &str, subject: &str) -> Result<(), String> {
        submit(self.port, from, to, subject)
    }

    /// Stops it (`postfix stop`, then its master by pid if still there).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pid_file = self.dir.path().join("queue/pid/master.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(postfix) = find_binary("postfix") {
            let _ = Command::new(postfix)
                .arg("-c")
                .arg(self.conf_dir())
                .arg("stop")
                .output();
        }
        if let Some(pid) = pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while super::sys::signal(pid, 0) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            // The master this instance started, only while it is still there.
            if super::sys::signal(pid, 0) == 0 {
                super::sys::signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Hands one message to the SMTP server on `127.0.0.1:port` (plain SMTP).
///
/// # Errors
/// The conversation, when a reply is not the expected one.
pub fn submit(port: u16, from: &str, to: &str, subject: &str) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut transcript = String::new();
    let mut expect = |reader: &mut BufReader<TcpStream>, code: &str| -> Result<(), String> {
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("{e} after: {transcript}"))?;
            transcript.push_str(&line);
            if line.len() < 4 || !line.starts_with(code) {
                return Err(format!("expected {code}: {transcript}"));
            }
            if line.as_bytes()[3] == b' ' {
                return Ok(());
            }
        }
    };
    expect(&mut reader, "220")?;
    for (command, code) in [
        ("EHLO test.example.test".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
        (
            format!("Subject: {subject}\r\nFrom: <{from}>\r\nTo: <{to}>\r\n\r\n{subject}\r\n."),
            "250",
        ),
        ("QUIT".to_string(), "221"),
    ] {
        write!(writer, "{command}\r\n").map_err(|e| e.to_string())?;
        expect(&mut reader, code)?;
    }
    Ok(())
}
