//! Knot and Pebble started together for tests that need real certificates:
//! the `[cdm]`, `[domain]` and `[cert]` sections that point the binary at them.

use std::path::PathBuf;

use super::cdm::{Run, cdm, write_config};
use super::knot::{KnotEnv, minimal_zone};
use super::pebble::PebbleEnv;

pub const ZONE: &str = "example.test";

pub struct AcmeEnv {
    pub knot: KnotEnv,
    pub pebble: PebbleEnv,
    pub dir: tempfile::TempDir,
}

impl AcmeEnv {
    /// `None` when knotd, pebble or openssl is missing outside CI.
    pub fn start() -> Option<AcmeEnv> {
        let knot = KnotEnv::start(ZONE, &minimal_zone(ZONE))?;
        let pebble = PebbleEnv::start(Some(knot.addr()))?;
        Some(AcmeEnv {
            knot,
            pebble,
            dir: tempfile::tempdir().expect("temp dir"),
        })
    }

    /// Where rollover puts the certificates (`[cert] destination`).
    pub fn dest(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// `[cdm]`, `[domain]` and a `[cert]` default section for this Knot and Pebble.
    pub fn base(&self) -> String {
        let mut text = format!(
            "[cdm]\nstatedir = {}\n\n[domain]\n",
            self.dir.path().join("state").display()
        );
        for (key, value) in self.knot.provider_keys() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(&format!("nameservers = {}\n", self.knot.server()));
        text.push_str(&format!(
            "\n[cert]\nca = {}\ncacert = {}\nkeytype = ecdsa-p256\ndestination = {}\nemail = admin@example.test\n",
            self.pebble.directory_url(),
            self.pebble.ca_cert_path().display(),
            self.dest().display()
        ));
        text
    }

    /// Writes the base sections plus `extra` to `name` in the test directory.
    pub fn config(&self, name: &str, extra: &str) -> String {
        write_config(self.dir.path(), name, &format!("{}{extra}", self.base()))
    }

    /// Runs the binary and requires exit status 0.
    pub fn run_ok(&self, args: &[&str]) -> Run {
        let run = cdm(self.dir.path(), args);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        run
    }
}
