//! A real OpenDKIM (Debian's `opendkim`) for a test, signing as a milter with
//! the KeyTable and SigningTable the program writes. It listens on a free
//! loopback port and, when the tests run as root, runs as `opendkim` as the
//! package runs it, so it reads only keys it may read. Messages are given to it
//! by `miltertest` (`opendkim_sign.lua` beside this file); `Drop` stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::dkim::test_message;
use super::{find_binary, free_port, require_all, spawn_until_ready};

const READY_DEADLINE: Duration = Duration::from_secs(30);

/// A running OpenDKIM; stopped when dropped.
pub struct OpenDkim {
    child: Child,
    socket: String,
    work: PathBuf,
    log: PathBuf,
    sent: AtomicUsize,
}

/// The user OpenDKIM runs as: `opendkim` when the tests run as root (as the
/// package runs it), otherwise the running user.
pub fn filter_user() -> Option<&'static str> {
    super::sys::is_root().then_some("opendkim")
}

impl OpenDkim {
    /// Starts OpenDKIM signing with `key_table` and `signing_table`, its
    /// configuration and log under `work`. `None` when OpenDKIM or miltertest
    /// is not installed (outside CI).
    ///
    /// # Panics
    /// When OpenDKIM does not start (its output is in the message).
    pub fn start(work: &Path, key_table: &Path, signing_table: &Path) -> Option<OpenDkim> {
        if !require_all(&["opendkim", "miltertest"]) {
            return None;
        }
        std::fs::create_dir_all(work).expect("create the OpenDKIM directory");
        let port = free_port();
        let socket = format!("inet:{port}@127.0.0.1");
        let mut conf = format!(
            "Syslog no\nMode s\nSocket {socket}\nKeyTable file:{}\nSigningTable file:{}\nInternalHosts 127.0.0.1\n",
            key_table.display(),
            signing_table.display()
        );
        if let Some(user) = filter_user() {
            conf.push_str(&format!("UserID {user}\n"));
        }
        if let Some(open) = world_writable_ancestor(key_table) {
            // OpenDKIM's check of key files (RequireSafeKeys) is about where
            // this test runs, not about the program's files.
            eprintln!(
                "note: {} may be written by others; OpenDKIM's RequireSafeKeys is off for this test",
                open.display()
            );
            conf.push_str("RequireSafeKeys false\n");
        }
        let conf_file = work.join("opendkim.conf");
        std::fs::write(&conf_file, conf).expect("write opendkim.conf");
        let binary = find_binary("opendkim").expect("opendkim");
        let mut command = Command::new(binary);
        command.arg("-f").arg("-x").arg(&conf_file);
        let log = work.join("opendkim.log");
        let child = spawn_until_ready(
            command,
            "opendkim",
            &log,
            READY_DEADLINE,
            Duration::from_millis(50),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Some(OpenDkim {
            child,
            socket,
            work: work.to_path_buf(),
            log,
            sent: AtomicUsize::new(0),
        })
    }

    /// A test message from `sender@DOMAIN` with the DKIM signature OpenDKIM
    /// added in front. Panics when OpenDKIM signs nothing.
    pub fn sign(&self, domain: &str) -> Vec<u8> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let file = self.work.join(format!("message-{n}.eml"));
        std::fs::write(&file, test_message(domain, n)).expect("write message");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/opendkim_sign.lua");
        let out = Command::new(find_binary("miltertest").expect("miltertest"))
            .arg("-D")
            .arg(format!("socket={}", self.socket))
            .arg("-D")
            .arg(format!("message={}", file.display()))
            .arg("-D")
            .arg(format!("sender=sender@{domain}"))
            .arg("-s")
            .arg(script)
            .output()
            .expect("run miltertest");
        assert!(
            out.status.success() && out.stdout.starts_with(b"DKIM-Signature:"),
            "OpenDKIM did not sign: {}{}\nOpenDKIM output:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        out.stdout
    }

    /// Makes OpenDKIM read its configuration and tables again (SIGUSR1, see
    /// opendkim(8)).
    pub fn reload(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid");

        let rc = super::sys::signal(pid, libc::SIGUSR1);
        assert_eq!(rc, 0, "SIGUSR1 to opendkim");
    }
}

/// The first directory above `path` that others may write to (like /tmp), if any.
fn world_writable_ancestor(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .skip(1)
        .find(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o002 != 0))
        .map(Path::to_path_buf)
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        super::knot::stop_child(&mut self.child);
    }
}
