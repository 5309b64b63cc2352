//! The phases (SPEC §4). Each phase observes the world, plans in pure code, and
//! applies the plan (or, in a dry run, prints it).

pub mod update;

use log::{info, warn};

use crate::cli::Phase;
use crate::config::model::Config;
use crate::run::PhaseFailed;

/// Runs one phase.
///
/// # Errors
/// [`PhaseFailed`] when any part of the phase failed (each reason is logged).
pub async fn run(config: &Config, phase: Phase, dry_run: bool) -> Result<(), PhaseFailed> {
    match phase {
        Phase::Update => update::run(config, dry_run).await,
        Phase::Prepare | Phase::Rollover | Phase::Cleanup => {
            for section in &config.other_sections {
                warn!(
                    "[{}:{}]: this version does not manage {} material yet; the section is not acted on",
                    section.module, section.name, section.module
                );
            }
            info!("Nothing to {} in this configuration", phase.name());
            Ok(())
        }
    }
}
