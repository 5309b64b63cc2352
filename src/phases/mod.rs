//! The phases (SPEC §4). Each phase observes the world, plans, and applies the
//! plan (or, in a dry run, prints it). Independent work (certificates, zones)
//! runs concurrently.

pub mod cert;
pub mod dhparam;
pub mod dkim;
pub mod dns01;
pub mod records;
pub mod services;
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
            let (certs, dhparams) = tokio::join!(
                cert::prepare(config, store, options),
                dhparam::prepare(config, store, options)
            );
            let tlsa = tlsa::sync(config, store, Mode::Publish, options.dry_run).await;
            let dkim = dkim::prepare(config, store, options).await;
            certs.and(dhparams).and(tlsa).and(dkim)
        }
        Phase::Rollover => rollover(config, store, options).await,
        Phase::Cleanup => {
            let certs = cert::cleanup(config, store).await;
            let dhparams = dhparam::cleanup(config, store).await;
            let tlsa = tlsa::sync(config, store, Mode::Prune, options.dry_run).await;
            let dkim = dkim::cleanup(config, store).await;
            certs.and(dhparams).and(tlsa).and(dkim)
        }
    }
}

/// Rollover: every module puts its material in place (concurrently), then the
/// services that use any of it are reloaded, once each.
async fn rollover(config: &Config, store: &Store, options: Options) -> Result<(), PhaseFailed> {
    let (certs, dhparams, dkims) = tokio::join!(
        cert::rollover(config, store, options),
        dhparam::rollover(config, store),
        dkim::rollover(config, store, options)
    );
    let deployed = certs.and(dhparams).and(dkims);
    let reloaded = services::reload(config, store, &deployed.materials).await;
    if deployed.failed || reloaded.is_err() {
        Err(PhaseFailed)
    } else {
        Ok(())
    }
}
