//! A real rspamd (Debian's package) for a test, signing with the DKIM
//! configuration the program writes: rspamd reads the test's `LOCAL_CONFDIR`
//! (where the program writes `local.d/dkim_signing.conf`), its workers listen on
//! free loopback ports (`override.d`), it asks the test's Knot for DNS, and when
//! the tests run as root its workers run as `_rspamd`, as the package runs them.
//! Messages are signed with `rspamc --mime`; `Drop` stops rspamd.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::dkim::test_message;
use super::{free_port, require_all, spawn_until_ready};

/// rspamd compiles its regular expressions and the public suffix list at its
/// first start, which takes half a minute or more on a busy machine.
const READY_DEADLINE: Duration = Duration::from_secs(300);

/// Starts are serialised, so that the compiled expressions (kept in
/// `target/tmp`, [`hs_cache`]) are compiled once and then shared.
static STARTING: Mutex<()> = Mutex::new(());

/// A running rspamd; stopped when dropped.
pub struct Rspamd {
    child: Child,
    port: u16,
    work: PathBuf,
    log: PathBuf,
    sent: AtomicUsize,
}

/// The user rspamd's workers run as: `_rspamd` when the tests run as root (as
/// the package runs them), otherwise the running user.
pub fn worker_user() -> Option<&'static str> {
    super::sys::is_root().then_some("_rspamd")
}

/// Where the compiled expressions are kept between starts (and test runs).
fn hs_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspamd-hs-cache")
}

/// `chown USER:USER path` when `user` is set (a directory rspamd writes to).
fn give_to(user: Option<&str>, path: &Path) {
    if let Some(user) = user {
        let out = Command::new("chown")
            .arg(format!("{user}:{user}"))
            .arg(path)
            .output()
            .expect("run chown");
        assert!(
            out.status.success(),
            "chown {user} {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Rspamd {
    /// Starts rspamd on `local_confdir`, with its database, pid and log files
    /// under `work`; DNS queries go to 127.0.0.1:`dns_port`. `None` when rspamd
    /// is not installed (outside CI).
    ///
    /// # Panics
    /// When rspamd does not start (its log is in the message).
    pub fn start(work: &Path, local_confdir: &Path, dns_port: u16) -> Option<Rspamd> {
        if !require_all(&["rspamd", "rspamc"]) {
            return None;
        }
        let user = worker_user();
        for dir in [work.to_path_buf(), work.join("db"), work.join("run")] {
            std::fs::create_dir_all(&dir).expect("create rspamd directories");
            give_to(user, &dir);
        }
        let cache = hs_cache();
        std::fs::create_dir_all(&cache).expect("create the rspamd cache directory");
        give_to(user, &cache);

        let port = free_port();
        let write = |rel: &str, text: String| {
            let path = local_confdir.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create config dir");
            std::fs::write(&path, text).expect("write rspamd configuration");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        };
        write(
            "override.d/worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{port}\";\ncount = 1;\n"),
        );
        for worker in ["controller", "proxy"] {
            write(
                &format!("override.d/worker-{worker}.inc"),
                format!("bind_socket = \"127.0.0.1:{}\";\n", free_port()),
            );
        }
        write(
            "override.d/logging.inc",
            "type = \"console\";\nlevel = \"info\";\n".into(),
        );
        write(
            "local.d/options.inc",
            format!(
                "dns {{\n  nameserver = [\"127.0.0.1:{dns_port}\"];\n  timeout = 1s;\n  retransmits = 1;\n}}\nhs_cache_dir = \"{}\";\n",
                cache.display()
            ),
        );

        let mut command = Command::new("rspamd");
        command.args(["-f", "-c", "/etc/rspamd/rspamd.conf"]);
        if let Some(user) = user {
            command.args(["-u", user, "-g", user]);
        }
        for (var, value) in [
            ("LOCAL_CONFDIR", local_confdir.to_path_buf()),
            ("DBDIR", work.join("db")),
            ("RUNDIR", work.join("run")),
            ("LOGDIR", work.to_path_buf()),
        ] {
            command
                .arg("--var")
                .arg(format!("{var}={}", value.display()));
        }
        let log = work.join("rspamd.log");
        let probe = work.join("probe.eml");
        std::fs::write(&probe, test_message("example.test", 0)).expect("write probe message");
        let _starting = STARTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let child = spawn_until_ready(
            command,
            "rspamd",
            &log,
            READY_DEADLINE,
            Duration::from_millis(200),
            || rspamc(port, &probe, "sender@example.test", 5).is_ok(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Some(Rspamd {
            child,
            port,
            work: work.to_path_buf(),
            log,
            sent: AtomicUsize::new(0),
        })
    }

    /// A test message from `sender@DOMAIN` as rspamd returns it (`rspamc
    /// --mime`), with the DKIM signature rspamd added, if any.
    pub fn sign(&self, domain: &str) -> Vec<u8> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let file = self.work.join(format!("message-{n}.eml"));
        std::fs::write(&file, test_message(domain, n)).expect("write message");
        rspamc(self.port, &file, &format!("sender@{domain}"), 30)
            .unwrap_or_else(|e| panic!("rspamc failed: {e}\nrspamd log:\n{}", self.log()))
    }

    /// Makes rspamd read its configuration again (SIGHUP, as `systemctl reload
    /// rspamd` does); new workers take over shortly after.
    pub fn reload(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid");

        let rc = super::sys::signal(pid, libc::SIGHUP);
        assert_eq!(rc, 0, "SIGHUP to rspamd");
    }

    /// The main process, which reloads on SIGHUP.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `rspamc --mime` on `file` as mail from `sender` via 127.0.0.1 (a local
/// network, which rspamd signs for): the message as rspamd returns it.
fn rspamc(port: u16, file: &Path, sender: &str, timeout: u32) -> Result<Vec<u8>, String> {
    let out = Command::new("rspamc")
        .args(["-h", &format!("127.0.0.1:{port}")])
        .args([
            "-t",
            &timeout.to_string(),
            "--mime",
            "-i",
            "127.0.0.1",
            "-F",
            sender,
        ])
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && !out.stdout.is_empty() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        super::knot::stop_child(&mut self.child);
        // Workers left behind by a main process that had to be killed: the
        // whole process group started for this rspamd.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            super::sys::signal(-pgid, libc::SIGKILL);
        }
    }
}
