//! File safety end to end, with the real binary, Knot and Pebble: modes under
//! `umask 000`, planted symlinks at the state directory, lock, state file and
//! destination, and two runs at once. Assertions are on the file system.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::cdm::{cdm, cdm_spawn, cdm_with_umask, write_config};
use support::cycle::CycleEnv;
use support::walk;

const CERTS: &str = "\n[cert:web]\n[domain:www.example.test]\ncert = web\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn lmode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn under_umask_000_secrets_are_0600_in_0700_dirs_and_nothing_is_widened() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let dkim_dir = env.dir.path().join("dkim");
    let conf = env.config(&format!(
        "{CERTS}dkim = auto:mail\n[dkim:mail]\nhandler = file\nkeytype = ed25519\nkeylocation = {}\n",
        dkim_dir.display()
    ));
    // The operator's destination, group-readable only; an old world-readable key.
    let dest = env.dest();
    let site = dest.join("www.example.test");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(site.join("privkey.pem"), "old key").unwrap();
    std::fs::set_permissions(
        site.join("privkey.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    for phase in ["--prepare", "--rollover"] {
        // An hour between the phases: the DNS waits have passed.
        env.advance(3600);
        let run = cdm_with_umask(env.dir.path(), &[phase, &conf], 0, &env.clock_env());
        assert_eq!(run.code, 0, "{phase}: {}", run.stderr);
    }

    let state = env.dir.path().join("state");
    assert_eq!(mode(&state), 0o700, "state directory");
    for path in walk(&state) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            assert_eq!(lmode(&path), 0o700, "{}", path.display());
        } else if meta.is_file() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let secret = text.contains("PRIVATE KEY")
                || path.ends_with("state.json")
                || path.to_string_lossy().contains("account");
            if secret {
                assert_eq!(lmode(&path), 0o600, "{}", path.display());
            }
            assert_eq!(
                lmode(&path) & 0o022,
                0,
                "writable by others: {}",
                path.display()
            );
        }
    }
    assert_eq!(mode(&site.join("privkey.pem")), 0o600, "deployed key");
    let key = std::fs::read_to_string(site.join("privkey.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "the old key file was replaced");
    assert_eq!(mode(&site.join("cert.pem")), 0o644, "certificate");
    let version_dir = std::fs::canonicalize(site.join("privkey.pem"))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(mode(&version_dir), 0o700, "{}", version_dir.display());
    assert_eq!(mode(&dest), 0o750, "the destination's mode was changed");
    assert_eq!(
        mode(&dkim_dir.join("dkim.key")),
        0o600,
        "installed DKIM key"
    );
    assert_eq!(
        mode(&dkim_dir) & 0o077,
        0,
        "DKIM key directory open to others"
    );
    assert_eq!(mode(&site) & 0o022, 0, "site directory writable by others");
}

/// An outside directory with one file, to check it stays untouched.
fn outside() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious");
    std::fs::write(&file, "precious").unwrap();
    (dir, file)
}

fn untouched(dir: &Path, file: &Path) {
    assert_eq!(std::fs::read_to_string(file).unwrap(), "precious");
    let entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert_eq!(
        entries.len(),
        1,
        "something was written outside: {entries:?}"
    );
}

#[test]
fn planted_symlinks_in_the_state_directory_are_refused() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = env.config(CERTS);
    let state = env.dir.path().join("state");
    let (out, precious) = outside();

    // The state directory itself.
    symlink(out.path(), &state).unwrap();
    let run = cdm(env.dir.path(), &["--prepare", &conf]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("symlink"), "{}", run.stderr);
    untouched(out.path(), &precious);
    std::fs::remove_file(&state).unwrap();

    // The lock file and the state file.
    std::fs::create_dir(&state).unwrap();
    for planted in ["lock", "state.json"] {
        let link = state.join(planted);
        symlink(&precious, &link).unwrap();
        let run = cdm(env.dir.path(), &["--prepare", &conf]);
        assert_ne!(run.code, 0, "{planted}");
        assert!(
            run.stderr.contains(link.to_str().unwrap()) && run.stderr.contains("symlink"),
            "{planted}: {}",
            run.stderr
        );
        untouched(out.path(), &precious);
        assert_eq!(env.orders(), 0, "{planted}: an order was made");
        std::fs::remove_file(&link).unwrap();
    }
}

#[test]
fn planted_symlinks_at_the_destination_are_refused_or_replaced_never_followed() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let conf = env.config(CERTS);
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let site = env.dest().join("www.example.test");
    let (out, precious) = outside();

    // The site directory is a link to elsewhere: refused.
    std::fs::create_dir_all(env.dest()).unwrap();
    symlink(out.path(), &site).unwrap();
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("symlink"), "{}", run.stderr);
    untouched(out.path(), &precious);
    std::fs::remove_file(&site).unwrap();

    // The key's name is a link to elsewhere: replaced by our link, the target
    // is never written through.
    std::fs::create_dir(&site).unwrap();
    symlink(&precious, site.join("privkey.pem")).unwrap();
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    untouched(out.path(), &precious);
    let key = std::fs::read_to_string(site.join("privkey.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    assert!(
        std::fs::canonicalize(site.join("privkey.pem"))
            .unwrap()
            .starts_with(std::fs::canonicalize(&site).unwrap())
    );
}

#[test]
fn a_second_run_exits_at_once_naming_the_first_and_changes_nothing() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let statedir = env.dir.path().join("state");
    // A "DNS server" that accepts and never answers keeps the first run busy.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = write_config(
        env.dir.path(),
        "slow.conf",
        &format!(
            "[cdm]\nstatedir = {}\n[domain]\nhandler = rfc2136\nserver = {}\nkeyname = k\nsecret = {}\n[domain:www.example.test]\nip4 = 192.0.2.1\n",
            statedir.display(),
            silent.local_addr().unwrap(),
            env.knot.secret()
        ),
    );
    let conf = env.config("\n[domain:www.example.test]\nip4 = 192.0.2.2\n");
    let serial = env.knot.serial(support::cycle::ZONE);

    let mut first = cdm_spawn(env.dir.path(), &["--update", &slow]);
    let pid = first.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(statedir.join("lock")).unwrap_or_default() != pid {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    let second = cdm(env.dir.path(), &["--update", &conf]);
    let took = started.elapsed();
    let _ = first.kill();
    let _ = first.wait();
    assert_ne!(second.code, 0);
    assert!(
        second.stderr.contains(&format!("pid {pid}")),
        "{}",
        second.stderr
    );
    assert!(
        took < Duration::from_secs(3),
        "the second run waited {took:?}"
    );
    assert_eq!(
        env.knot.serial(support::cycle::ZONE),
        serial,
        "the zone changed"
    );
    assert!(env.knot.dig("www.example.test", "A").is_empty());
}
