//! ACME Renewal Information (RFC 9773) end to end: the binary against a small
//! scripted ACME CA (support/mini_ca.rs; Debian's Pebble has no renewalInfo),
//! with the DNS-01 records going through a real Knot. Assertions are on what
//! the CA saw (each newOrder payload, each renewalInfo request), what was
//! deployed (read with openssl) and what `--status` shows; the program's clock
//! is moved with CRYPTDOMAINMGR_TEST_NOW instead of waiting.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use support::cdm::{CLOCK, Run, cdm_env, time_in, write_config};
use support::knot::{KnotEnv, minimal_zone};
use support::mini_ca::{MiniCa, cert_id_by_openssl, problem, status, window};

const ZONE: &str = "example.test";
const NAME: &str = "a.example.test";
const DAY: i64 = 86_400;
/// What the CA's certificates are valid for, on the program's clock.
const VALIDITY_DAYS: i64 = 90;
/// The warning the first failed renewalInfo request gives.
const NO_ARI: &str = "no renewal information from the CA";

struct Env {
    knot: KnotEnv,
    ca: MiniCa,
    dir: tempfile::TempDir,
    /// Seconds the program's clock runs ahead of the real one.
    clock: Cell<i64>,
}

impl Env {
    fn start() -> Option<Env> {
        let knot = KnotEnv::start(ZONE, &minimal_zone(ZONE))?;
        let ca = MiniCa::start()?;
        Some(Env {
            knot,
            ca,
            dir: tempfile::tempdir().unwrap(),
            clock: Cell::new(0),
        })
    }

    /// Writes `cdm.conf`: one certificate for [`NAME`], `extra` in its section.
    fn config(&self, extra: &str) {
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\nnameservers = {}\n",
            self.dir.path().join("state").display(),
            self.knot.server()
        );
        for (key, value) in self.knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!(
            "\n[cert:web]\nca = {}\nkeytype = ecdsa-p256\ndestination = {}\nrenewdays = 30\n{extra}\n[domain:{NAME}]\ncert = web\n",
            self.ca.directory_url(),
            self.dir.path().join("dest").display()
        ));
        let path = write_config(self.dir.path(), "cdm.conf", &text);
        // It holds the TSIG secret.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Moves the program's clock `seconds` ahead for the following runs; the
    /// CA's certificates stay valid for [`VALIDITY_DAYS`] on that clock.
    fn advance(&self, seconds: i64) {
        self.clock.set(self.clock.get() + seconds);
        self.ca
            .validity_days(VALIDITY_DAYS + self.clock.get().div_euclid(DAY));
    }

    /// The program's time now.
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.clock.get())
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.push("cdm.conf");
        cdm_env(self.dir.path(), &all, &[(CLOCK, time_in(self.clock.get()))])
    }

    fn run_ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        run
    }

    /// The deployed certificate.
    fn deployed(&self) -> PathBuf {
        self.dir.path().join("dest").join(NAME).join("cert.pem")
    }

    fn deployed_serial(&self) -> String {
        support::openssl(
            self.dir.path(),
            &[
                "x509",
                "-in",
                &self.deployed().display().to_string(),
                "-noout",
                "-serial",
            ],
        )
        .trim()
        .to_string()
    }

    fn orders(&self) -> usize {
        self.ca.order_requests().len()
    }

    fn renewal_requests(&self) -> usize {
        self.ca.renewal_requests().len()
    }
}

/// A window `from`..`to` days ahead of `now`, whole seconds.
fn days(now: DateTime<Utc>, from: i64, to: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = now.trunc_subsecs(0);
    (now + Duration::days(from), now + Duration::days(to))
}

/// Issues and deploys the first certificate while the CA's window is weeks
/// ahead (`Retry-After: 60`). Returns its identifier, computed with openssl.
fn first_certificate(env: &Env) -> String {
    let (start, end) = days(env.now(), 40, 42);
    env.ca.renewal_info(move |_| window(start, end, Some(60)));
    env.run_ok(&["--auto"]);
    assert_eq!(env.orders(), 1);
    assert_eq!(
        env.ca.order_requests()[0].replaces,
        None,
        "nothing to replace"
    );
    let id = cert_id_by_openssl(&env.deployed());
    assert_eq!(
        env.ca.renewal_requests(),
        vec![id.clone()],
        "the deployed certificate's renewal information was asked"
    );
    id
}

#[test]
fn a_window_in_the_past_renews_with_replaces_naming_the_current_certificate() {
    let Some(env) = Env::start() else { return };
    env.config("");
    let first = first_certificate(&env);
    let first_serial = env.deployed_serial();

    // The CA now wants the current certificate replaced; later ones not yet.
    let (past_start, past_end) = days(env.now(), -2, -1);
    let (start, end) = days(env.now(), 40, 42);
    let current = first.clone();
    env.ca.renewal_info(move |id| {
        if id == current {
            window(past_start, past_end, Some(60))
        } else {
            window(start, end, Some(60))
        }
    });
    env.advance(120);
    env.run_ok(&["--auto"]);

    let orders = env.ca.order_requests();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(orders[1].names, vec![NAME.to_string()]);
    assert_eq!(orders[1].replaces.as_deref(), Some(first.as_str()));
    assert_ne!(
        env.deployed_serial(),
        first_serial,
        "the renewal was deployed"
    );
    // The new certificate's window (ahead) was asked and renews nothing more.
    let asked = env.ca.renewal_requests();
    assert_eq!(asked.last(), Some(&cert_id_by_openssl(&env.deployed())));
}

/// The `renew from` time in `--status`, after checking the window is shown.
fn shown_renewal_time(env: &Env, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let out = env.run_ok(&["--status"]).stdout;
    let prefix = format!(
        "renewal information (ARI): window {} to {}, renew from ",
        when(start),
        when(end)
    );
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{out}"));
    let at = DateTime::parse_from_str(&line.replace(" UTC", " +0000"), "%Y-%m-%d %H:%M:%S %z")
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .with_timezone(&Utc);
    assert!(start <= at && at <= end, "{at} outside {start}..{end}");
    let next = format!("next: prepare at {} (renewal due)", when(at));
    assert!(out.contains(&next), "no {next:?} in\n{out}");
    when(at)
}

#[test]
fn a_window_in_the_future_orders_nothing_and_the_chosen_time_is_kept() {
    let Some(env) = Env::start() else { return };
    env.config("");
    let (start, end) = days(env.now(), 40, 42);
    first_certificate(&env);
    let chosen = shown_renewal_time(&env, start, end);

    // Asked again after Retry-After: the same window, the same time (it is
    // stored, not drawn again), and nothing ordered.
    for run in 1..=2 {
        env.advance(120);
        env.run_ok(&["--prepare"]);
        assert_eq!(env.renewal_requests(), 1 + run, "asked again");
        assert_eq!(env.orders(), 1, "nothing ordered");
        assert_eq!(shown_renewal_time(&env, start, end), chosen);
    }
}

#[test]
fn no_renewal_information_is_asked_before_retry_after_has_passed() {
    let Some(env) = Env::start() else { return };
    env.config("");
    let (start, end) = days(env.now(), 40, 42);
    env.ca.renewal_info(move |_| window(start, end, Some(3600)));
    env.run_ok(&["--auto"]);
    assert_eq!(env.renewal_requests(), 1);
    for (ahead, asked) in [(1800, 1), (1700, 1), (200, 2), (60, 2)] {
        env.advance(ahead);
        env.run_ok(&["--auto"]);
        assert_eq!(
            env.renewal_requests(),
            asked,
            "{} s after the first answer",
            env.clock.get()
        );
    }
    assert_eq!(env.orders(), 1);
}

/// renewalInfo answers HTTP `code`: renewdays decides, and the log says so once.
fn falls_back_to_renewdays(code: u16) {
    let Some(env) = Env::start() else { return };
    env.config("");
    env.ca.renewal_info(move |_| status(code));
    let run = env.run_ok(&["--auto"]);
    assert_eq!(env.renewal_requests(), 1);
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains(NO_ARI)).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("renewdays = 30"), "{}", warnings[0]);
    let first_serial = env.deployed_serial();

    // 7 h on (asked again after the default 6 h), then 31 and 29 days left.
    for (at, asked, orders) in [(7 * 3600, 2, 1), (59 * DAY, 3, 1), (61 * DAY, 5, 2)] {
        env.advance(at - env.clock.get());
        let run = env.run_ok(&["--auto"]);
        assert!(!run.stderr.contains(NO_ARI), "said again:\n{}", run.stderr);
        assert_eq!(env.renewal_requests(), asked, "{}", run.stderr);
        assert_eq!(env.orders(), orders, "{}", run.stderr);
    }
    assert_ne!(env.deployed_serial(), first_serial, "renewed by renewdays");
    assert_eq!(env.ca.order_requests()[1].replaces, None);
}

#[test]
fn renewal_information_answering_404_falls_back_to_renewdays() {
    falls_back_to_renewdays(404);
}

#[test]
fn renewal_information_answering_500_falls_back_to_renewdays() {
    falls_back_to_renewdays(500);
}

#[test]
fn a_rejected_replaces_is_dropped_and_the_renewal_completes() {
    let Some(env) = Env::start() else { return };
    env.config("");
    let mut current = first_certificate(&env);
    let rejections = [
        problem(409, "alreadyReplaced", "already replaced"),
        problem(400, "malformed", "replaces is not understood"),
    ];
    for (round, rejection) in rejections.into_iter().enumerate() {
        let serial = env.deployed_serial();
        let (past_start, past_end) = days(env.now(), -2, -1);
        let (start, end) = days(env.now(), 40, 42);
        let due = current.clone();
        env.ca.renewal_info(move |id| {
            if id == due {
                window(past_start, past_end, Some(60))
            } else {
                window(start, end, Some(60))
            }
        });
        env.ca.reject_replaces(rejection);
        env.advance(120);
        env.run_ok(&["--auto"]);
        let orders = env.ca.order_requests();
        assert_eq!(orders.len(), 3 + 2 * round, "{orders:?}");
        let (with, without) = (&orders[1 + 2 * round], &orders[2 + 2 * round]);
        assert_eq!(with.replaces.as_deref(), Some(current.as_str()));
        assert_eq!(without.replaces, None);
        assert_eq!(without.names, vec![NAME.to_string()]);
        assert_ne!(env.deployed_serial(), serial, "the renewal was deployed");
        current = cert_id_by_openssl(&env.deployed());
    }
}

#[test]
fn ari_no_asks_no_renewal_information() {
    let Some(env) = Env::start() else { return };
    env.config("ari = no\n");
    // Were it asked, the CA would want every certificate replaced at once.
    let (start, end) = days(env.now(), -2, -1);
    env.ca.renewal_info(move |_| window(start, end, Some(60)));
    env.run_ok(&["--auto"]);
    let first_serial = env.deployed_serial();
    env.advance(7 * 3600);
    env.run_ok(&["--prepare"]);
    env.run_ok(&["--auto"]);
    assert_eq!(env.orders(), 1, "renewed although renewdays is not reached");
    env.advance(61 * DAY);
    env.run_ok(&["--auto"]);
    assert_eq!(env.orders(), 2, "renewdays renews");
    assert_ne!(env.deployed_serial(), first_serial);
    assert_eq!(env.ca.order_requests()[1].replaces, None);
    assert_eq!(env.ca.renewal_requests(), Vec::<String>::new());
}

#[test]
fn a_rate_limited_renewal_is_not_ordered_again_without_replaces() {
    let Some(env) = Env::start() else { return };
    env.config("");
    let first = first_certificate(&env);
    let serial = env.deployed_serial();
    let (start, end) = days(env.now(), -2, -1);
    env.ca.renewal_info(move |_| window(start, end, Some(60)));
    // Longer than ratelimitwait (120 s): the run fails at once.
    let (code, mut headers, body) = problem(429, "rateLimited", "too many orders");
    headers.push(("Retry-After".into(), "3600".into()));
    env.ca.reject_replaces((code, headers, body));
    env.advance(120);
    let run = env.run(&["--auto"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let orders = env.ca.order_requests();
    assert_eq!(orders.len(), 2, "one order, not repeated: {orders:?}");
    assert_eq!(orders[1].replaces.as_deref(), Some(first.as_str()));
    assert_eq!(
        env.deployed_serial(),
        serial,
        "the current certificate stays"
    );
}
