//! Service reloads through the binary, with real programs: a stand-in
//! `systemctl` placed first on `PATH` (systemd cannot run here) records every
//! argument vector it gets; reload commands are real scripts. The material
//! that triggers the reloads is an RFC 7919 DH group (instant to prepare).

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::{Path, PathBuf};

use support::cdm::{Run, cdm_with_path, write_config, write_script};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(env.bin()).unwrap();
        // Records its arguments, one bracketed word each, a line per call;
        // the unit "stopped" is not running.
        write_script(
            &env.bin(),
            "systemctl",
            &format!(
                "for a in \"$@\"; do printf '[%s]' \"$a\"; done >> {log}\necho >> {log}\n\
                 if [ \"$1\" = is-active ]; then\n  if [ \"$2\" = stopped ]; then echo inactive; exit 3; fi\n  echo active\nfi\n",
                log = env.log("systemctl").display()
            ),
        );
        // Records its arguments like systemctl, to the log named by $1.
        write_script(
            &env.bin(),
            "record",
            &format!(
                "log={}/$1.log; shift\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done >> $log\necho >> $log\n",
                env.dir.path().display()
            ),
        );
        write_script(
            &env.bin(),
            "refuse",
            "echo 'reload refused: broken config' >&2\necho 'partial output'\nexit 1\n",
        );
        env
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.log(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn config(&self, services: &str) -> String {
        write_config(
            self.dir.path(),
            "cdm.conf",
            &format!(
                "[cdm]\nstatedir = {}\n[dhparam:dh]\nhandler = ffdhe\nfilename = {}\n{services}",
                self.dir.path().join("state").display(),
                self.dh_file().display()
            ),
        )
    }

    fn dh_file(&self) -> PathBuf {
        self.dir.path().join("dh.pem")
    }

    fn run(&self, args: &[&str]) -> Run {
        cdm_with_path(self.dir.path(), &self.bin(), args)
    }
}

fn words(calls: &[&str]) -> Vec<String> {
    calls.iter().map(|s| s.to_string()).collect()
}

#[test]
fn systemd_handlers_reload_running_units_and_start_stopped_ones() {
    let env = Env::new();
    let conf = env.config(
        "[service:apache2]\n[service:nginx]\n[service:postfix]\n[service:dovecot]\n[service:rspamd]\n\
         [service:app]\nhandler = systemd\nunit = stopped\n\
         [service:idle]\nhandler = systemd\nunit = idle.service\ndhparam = none\n",
    );
    let run = env.run(&["--prepare", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.calls("systemctl").is_empty(), "prepare reloads nothing");

    // A dry run says what it would run and runs nothing.
    let run = env.run(&["--rollover", "--dry-run", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("service nginx: systemctl reload nginx (after [dhparam:dh]); systemctl start nginx if it is not running"),
        "{}",
        run.stdout
    );
    assert!(env.calls("systemctl").is_empty());
    assert!(!env.dh_file().exists());

    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.dh_file().exists());
    let mut expected = Vec::new();
    for unit in ["apache2", "nginx", "postfix", "dovecot", "rspamd"] {
        expected.push(format!("[is-active][{unit}]"));
        expected.push(format!("[reload][{unit}]"));
    }
    expected.extend(words(&["[is-active][stopped]", "[start][stopped]"]));
    assert_eq!(env.calls("systemctl"), expected);

    // Nothing new rolled over: nothing is reloaded.
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.calls("systemctl"), expected);
}

#[test]
fn a_failing_reload_is_logged_and_the_others_still_reload() {
    let env = Env::new();
    let conf = env.config(
        "[service]\nhandler = command\n\
         [service:first]\ncommand = record first \"two words\" 'x y' plain\\ word $HOME\n\
         [service:bad]\ncommand = refuse\n\
         [service:good]\ncommand = record good ok\n\
         [service:unrelated]\ncommand = record unrelated\ndhparam =\n",
    );
    assert_eq!(env.run(&["--prepare", &conf]).code, 0);
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Split like a shell would, but nothing expanded: no shell ran it.
    assert_eq!(env.calls("first"), ["[two words][x y][plain word][$HOME]"]);
    assert_eq!(env.calls("good"), ["[ok]"]);
    assert!(env.calls("unrelated").is_empty());
    assert!(
        run.stderr.contains("[service:bad] reload failed: refuse failed (exit status 1): reload refused: broken config"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("partial output"), "{}", run.stderr);
    // The material stays deployed; the failed phase is run again by --next.
    assert!(env.dh_file().exists());
    let status = env.run(&["--status", &conf]);
    assert!(
        status.stdout.contains("next phase: rollover"),
        "{}",
        status.stdout
    );
    // Once the service can reload, the next rollover reloads it, and only it,
    // though nothing new is deployed.
    write_script(&env.bin(), "refuse", "record bad now\n");
    let run = env.run(&["--next", &conf]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.calls("bad"), ["[now]"]);
    assert_eq!(env.calls("good"), ["[ok]"]);
    assert_eq!(env.calls("first").len(), 1);
}

#[test]
fn a_missing_reload_program_fails_the_phase() {
    let env = Env::new();
    let conf = env.config("[service:x]\nhandler = command\ncommand = /nonexistent/reload\n");
    assert_eq!(env.run(&["--prepare", &conf]).code, 0);
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot run /nonexistent/reload"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_section_names_are_config_errors() {
    let env = Env::new();
    let conf = env.config("[service:nginx]\ndhparam = dh, other\n");
    let run = env.run(&["--rollover", &conf]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let at = format!("{}:7: ", Path::new(&conf).display());
    assert!(
        run.stderr.contains(&format!(
            "{at}[service:nginx] dhparam = other: there is no [dhparam:other] section"
        )),
        "{}",
        run.stderr
    );
}
