//! A full certificate cycle's world: a real Knot serving `example.test` and a
//! real Pebble validating DNS-01 against it, a temporary directory with the
//! state and destination, and the base configuration for both.

use std::path::PathBuf;

use std::cell::Cell;

use super::cdm::{CLOCK, Run, cdm_env, time_in, write_config};
use super::knot::{KnotEnv, minimal_zone};
use super::pebble::PebbleEnv;

pub const ZONE: &str = "example.test";

pub struct CycleEnv {
    pub knot: KnotEnv,
    pub pebble: PebbleEnv,
    pub dir: tempfile::TempDir,
    /// More lines for the base `[domain]` section (e.g. `ttl = 1\n`).
    pub domain_keys: String,
    /// Seconds the program's clock runs ahead of the real one, once a test
    /// has moved it ([`CycleEnv::advance`]).
    pub clock: Cell<Option<i64>>,
}

impl CycleEnv {
    /// `None` when knotd, pebble or openssl is missing outside CI;
    /// `pebble_env` overrides Pebble's environment.
    pub fn start(pebble_env: &[(&str, &str)]) -> Option<CycleEnv> {
        Self::start_with_zone(&minimal_zone(ZONE), pebble_env)
    }

    /// Like [`CycleEnv::start`], with Knot serving `zone` (master-file text).
    pub fn start_with_zone(zone: &str, pebble_env: &[(&str, &str)]) -> Option<CycleEnv> {
        Self::start_with_knot(KnotEnv::start(ZONE, zone)?, pebble_env)
    }

    /// Like [`CycleEnv::start`], with the Knot the test started.
    pub fn start_with_knot(knot: KnotEnv, pebble_env: &[(&str, &str)]) -> Option<CycleEnv> {
        let pebble = PebbleEnv::start_with_env(Some(knot.addr()), pebble_env)?;
        Some(CycleEnv {
            knot,
            pebble,
            dir: tempfile::tempdir().unwrap(),
            domain_keys: String::new(),
            clock: Cell::new(None),
        })
    }

    /// Where rollover puts the certificates (`[cert] destination`).
    pub fn dest(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// `[cdm]`, `[domain]` and a `[cert]` default section for this Knot and Pebble.
    pub fn base(&self) -> String {
        self.base_with_nameservers(&self.knot.server())
    }

    /// [`CycleEnv::base`] with `nameservers` as given.
    pub fn base_with_nameservers(&self, nameservers: &str) -> String {
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\n{}",
            self.dir.path().join("state").display(),
            self.domain_keys
        );
        for (key, value) in self.knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!("nameservers = {nameservers}\n"));
        text.push_str(&format!(
            "\n[cert]\nca = {}\ncacert = {}\nkeytype = ecdsa-p256\ndestination = {}\nemail = admin@example.test\n",
            self.pebble.directory_url(),
            self.pebble.ca_cert_path().display(),
            self.dest().display()
        ));
        text
    }

    /// Writes the base sections plus `extra` to `cdm.conf` in the test directory.
    pub fn config(&self, extra: &str) -> String {
        self.config_as("cdm.conf", extra)
    }

    /// Like [`CycleEnv::config`], into the file `name`.
    pub fn config_as(&self, name: &str, extra: &str) -> String {
        write_config(self.dir.path(), name, &format!("{}{extra}", self.base()))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        cdm_env(self.dir.path(), args, &self.clock_env())
    }

    /// Moves the program's clock `seconds` further ahead for the following
    /// runs (time for DNS caches to expire, without waiting).
    pub fn advance(&self, seconds: i64) {
        self.clock
            .set(Some(self.clock.get().unwrap_or(0) + seconds));
    }

    /// The environment that sets the program's clock, if it was moved.
    pub fn clock_env(&self) -> Vec<(&'static str, String)> {
        self.clock
            .get()
            .map(|offset| vec![(CLOCK, time_in(offset))])
            .unwrap_or_default()
    }

    /// Runs the binary and requires exit status 0.
    pub fn run_ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        run
    }

    /// What a crashed and resumed run must leave in the crash tests' zone
    /// (`www.example.test` with `ip4 = 192.0.2.1`, MTA-STS for
    /// `example.test` with policy file `mta-sts.txt`): the A record kept, no
    /// challenge record left, the policy file in place and its TXT record
    /// published.
    pub fn assert_records_survived(&self, step: &str) {
        assert_eq!(
            self.knot.dig("www.example.test", "A"),
            vec!["192.0.2.1".to_string()],
            "{step}: the A record was lost"
        );
        assert!(
            self.knot
                .dig("_acme-challenge.www.example.test", "TXT")
                .is_empty(),
            "{step}: a challenge record was left"
        );
        let policy = std::fs::read_to_string(self.dir.path().join("mta-sts.txt")).unwrap();
        assert!(
            policy.contains("mx: mail.example.test\r\n"),
            "{step}: {policy}"
        );
        assert_eq!(
            self.knot.dig("_mta-sts.example.test", "TXT").len(),
            1,
            "{step}: no MTA-STS TXT record"
        );
    }

    /// How many orders Pebble created so far (its request log).
    pub fn orders(&self) -> usize {
        self.pebble.log().matches("POST /order-plz").count()
    }
}
