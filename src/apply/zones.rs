//! Applying one zone's change set through its provider, with the log lines of
//! every domain section in the zone (the original's `add (new)`, `add
//! (exists)`, `delete`).

use std::sync::Arc;

use log::{error, info};

use super::error::StepError;
use crate::config::model::Config;
use crate::crashpoint;
use crate::dns::provider::DnsProvider;
use crate::plan::ZoneChange;

/// The provider with identity `id` in `config`.
pub fn provider(config: &Config, id: usize) -> Option<Arc<dyn DnsProvider>> {
    config
        .domains
        .iter()
        .find(|d| d.provider.id == id)
        .map(|d| d.provider.instance.clone())
}

/// Logs each domain section's lines and applies the change set (adds before
/// deletes, in one message where the provider allows).
///
/// # Errors
/// The provider refused or could not be reached (nothing of the zone was
/// changed where the provider is atomic), or some keys could not be planned
/// (the rest was applied).
pub async fn apply(config: &Config, change: &ZoneChange) -> Result<(), StepError> {
    let zone = &change.zone;
    let mut key_errors = 0;
    for domain in &change.domains {
        info!("Create resource records for section \"{}\"", domain.name);
        for line in &domain.lines {
            info!("{line}");
        }
        for message in &domain.errors {
            error!("[domain:{}] {message}", domain.name);
            key_errors += 1;
        }
    }
    if !change.changes.is_empty() {
        let Some(provider) = provider(config, change.provider) else {
            return Err(StepError::Mismatch(format!(
                "zone {zone}: its provider is not configured"
            )));
        };
        provider.apply(zone, &change.changes).await?;
        crashpoint::reached("zone:applied");
    }
    if key_errors > 0 {
        return Err(StepError::Partial(format!(
            "{key_errors} record key{} could not be applied (see above); the other records of zone {zone} were",
            if key_errors == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
