//! Applying one zone's change set through its provider, with the log lines of
//! every domain section in the zone (the original's `add (new)`, `add
//! (exists)`, `delete`).

use futures_util::StreamExt;
use futures_util::future::join_all;
use log::{error, info};

use super::error::StepError;
use crate::config::model::Config;
use crate::crashpoint;
use crate::dns::provider::Providers;
use crate::plan::{Action, Step, ZoneChange};

/// Applies the zone changes of `steps`: providers concurrently, the zones of
/// one provider one at a time (or a few at a time for atomic providers).
/// Returns the results in the order of `steps`.
pub async fn apply_all(
    config: &Config,
    providers: &Providers,
    steps: &[&Step],
) -> Vec<Result<(), StepError>> {
    let mut ids: Vec<usize> = Vec::new();
    for step in steps {
        if let Action::ChangeZone(change) = &step.action
            && !ids.contains(&change.provider)
        {
            ids.push(change.provider);
        }
    }
    let groups = join_all(ids.iter().map(|id| async move {
        let atomic = config
            .domains
            .iter()
            .find(|d| d.provider.id == *id)
            .is_some_and(|d| d.provider.capabilities.application.is_atomic());
        let mine: Vec<(usize, &ZoneChange)> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| match &step.action {
                Action::ChangeZone(change) if change.provider == *id => Some((i, change)),
                _ => None,
            })
            .collect();
        // Providers that change each zone atomically (RFC 2136, zone files)
        // get `maxconcurrency` changes at once; APIs without transactions one
        // at a time, so that their rate limits and backends are not raced.
        let limit = if atomic {
            config.cdm.max_concurrency
        } else {
            1
        };
        futures_util::stream::iter(mine)
            .map(|(i, change)| async move {
                let section = &steps[i].section;
                (i, super::guarded(section, apply(providers, change)).await)
            })
            .buffer_unordered(limit)
            .collect::<Vec<_>>()
            .await
    }))
    .await;
    let mut results: Vec<Option<Result<(), StepError>>> = steps.iter().map(|_| None).collect();
    for (i, result) in groups.into_iter().flatten() {
        results[i] = Some(result);
    }
    results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
}

/// Logs each domain section's lines and applies the change set (adds before
/// deletes, in one message where the provider allows).
///
/// # Errors
/// The provider refused or could not be reached (nothing of the zone was
/// changed where the provider is atomic), or some keys could not be planned
/// (the rest was applied).
pub async fn apply(providers: &Providers, change: &ZoneChange) -> Result<(), StepError> {
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
        let Some(provider) = providers.get(change.provider) else {
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
