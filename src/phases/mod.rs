//! The phases (SPEC §4). Each phase observes the world, plans, and applies the
//! plan (or, in a dry run, prints it). Independent work (certificates, zones)
//! runs concurrently.

pub mod cert;
pub mod dkim;
pub mod dns01;
pub mod records;
pub mod tlsa;
pub mod update;
pub mod zones;

use log::warn;

use crate::cli::Phase;
use crate::config::model::Config;
use crate::plan::tlsa::Mode;
use crate::run::PhaseFailed;
use crate::state::Store;

/// How the phase was asked to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Print every change and make none.
    pub dry_run: bool,
    /// Prepare: renew what is not due (like `extraflags = -x` for every
    /// certificate). Rollover: deploy even when the new TLSA records are not
    /// served everywhere yet.
    pub force: bool,
}

/// Runs one phase.
///
/// # Errors
/// [`PhaseFailed`] when any part of the phase failed (each reason is logged).
pub async fn run(
    config: &Config,
    phase: Phase,
    store: &Store,
    options: Options,
) -> Result<(), PhaseFailed> {
    if phase != Phase::Update {
        for section in &config.other_sections {
            warn!(
                "[{}:{}]: this version does not manage {} material yet; the section is not acted on",
                section.module, section.name, section.module
            );
        }
    }
    match phase {
        Phase::Update => update::run(config, options.dry_run).await,
        Phase::Prepare => {
            // TLSA waits for its certificates; a failed issuance still leaves
            // the records of the certificates there are.
            let certs = cert::prepare(config, store, options).await;
            let tlsa = tlsa::sync(config, store, Mode::Publish, options.dry_run).await;
            let dkim = dkim::prepare(config, store, options).await;
            certs.and(tlsa).and(dkim)
        }
        Phase::Rollover => {
            let certs = cert::rollover(config, store, options).await;
            let dkim = dkim::rollover(config, store, options).await;
            certs.and(dkim.result())
        }
        Phase::Cleanup => {
            let certs = cert::cleanup(config, store).await;
            let tlsa = tlsa::sync(config, store, Mode::Prune, options.dry_run).await;
            let dkim = dkim::cleanup(config, store).await;
            certs.and(tlsa).and(dkim)
        }
    }
}
