//! A full certificate cycle's world: a real Knot serving `example.test` and a
//! real Pebble validating DNS-01 against it, a temporary directory with the
//! state and destination, and the base configuration for both.

use std::path::PathBuf;

use super::cdm::{Run, cdm, write_config};
use super::knot::{KnotEnv, minimal_zone};
use super::pebble::PebbleEnv;

pub const ZONE: &str = "example.test";

pub struct CycleEnv {
    pub knot: KnotEnv,
    pub pebble: PebbleEnv,
    pub dir: tempfile::TempDir,
}

impl CycleEnv {
    pub fn start(pebble_env: &[(&str, &str)]) -> Option<CycleEnv> {
        let knot = KnotEnv::start(ZONE, &minimal_zone(ZONE))?;
        let pebble = PebbleEnv::start_with_env(Some(knot.addr()), pebble_env)?;
        Some(CycleEnv {
            knot,
            pebble,
            dir: tempfile::tempdir().unwrap(),
        })
    }

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

    pub fn config(&self, extra: &str) -> String {
        write_config(
            self.dir.path(),
            "cdm.conf",
            &format!("{}{extra}", self.base()),
        )
    }

    pub fn run(&self, args: &[&str]) -> Run {
        cdm(self.dir.path(), args)
    }

    /// How many orders Pebble created so far (its request log).
    pub fn orders(&self) -> usize {
        self.pebble.log().matches("POST /order-plz").count()
    }
}
