//! The phases (SPEC §4). Each phase observes the world, plans, and applies the
//! plan (or, in a dry run, prints it). Independent work (certificates, zones)
//! runs concurrently.

pub mod cert;
pub mod dhparam;
pub mod dns01;
pub mod services;
pub mod update;

use log::warn;

use crate::cli::Phase;
use crate::config::model::Config;
use crate::run::PhaseFailed;
use crate::state::Store;

/// How the phase was asked to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Print every change and make none.
    pub dry_run: bool,
    /// Renew what is not due (like `extraflags = -x` for every certificate).
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
            let (certs, dhparams) = tokio::join!(
                cert::prepare(config, store, options),
                dhparam::prepare(config, store, options)
            );
            certs.and(dhparams)
        }
        Phase::Rollover => rollover(config, store).await,
        Phase::Cleanup => {
            let certs = cert::cleanup(config, store).await;
            certs.and(dhparam::cleanup(config, store).await)
        }
    }
}

/// Rollover: every module puts its material in place (concurrently), then the
/// services that use any of it are reloaded, once each.
async fn rollover(config: &Config, store: &Store) -> Result<(), PhaseFailed> {
    let (certs, dhparams) = tokio::join!(
        cert::rollover(config, store),
        dhparam::rollover(config, store)
    );
    let deployed = certs.and(dhparams);
    let reloaded = services::reload(config, store, &deployed.materials).await;
    if deployed.failed || reloaded.is_err() {
        Err(PhaseFailed)
    } else {
        Ok(())
    }
}
