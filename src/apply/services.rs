//! Service reloads: systemd units (`systemctl is-active`, then `reload` when it
//! runs and `start` when it does not, as the original did), commands (an
//! argument vector, no shell), traefik (its file provider's configuration,
//! written atomically; traefik reloads by itself). The state records each
//! successful reload.

use std::path::Path;
use std::time::Duration;

use log::{info, warn};

use super::command as cmd;
use super::error::StepError;
use super::fs::{self as afs, PUBLIC_FILE};
use crate::clock;
use crate::config::model::Config;
use crate::config::service::{Reload as ReloadHow, ServiceSection};
use crate::plan::services::{systemd_action, traefik_config, traefik_file};
use crate::state::Store;

/// How long one reload command may take before it is killed and counted as
/// failed.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Reloads `service` (`why` says after what) and records it.
///
/// # Errors
/// The command failed, timed out or could not be run, or the traefik file not
/// written.
pub(crate) async fn reload(
    config: &Config,
    store: &Store,
    service: &ServiceSection,
    why: &str,
) -> Result<(), StepError> {
    match &service.reload {
        ReloadHow::Systemd { unit } => systemd(service, unit, why).await?,
        ReloadHow::Command { argv } => command(service, argv, why).await?,
        ReloadHow::Traefik { configdir } => traefik(config, store, service, configdir, why).await?,
    }
    let now = clock::now();
    store
        .update(|s| {
            s.services
                .entry(service.name.clone())
                .or_default()
                .reloaded_at = Some(now);
        })
        .await?;
    Ok(())
}

async fn systemd(service: &ServiceSection, unit: &str, why: &str) -> Result<(), StepError> {
    let argv = |action: &str| {
        vec![
            "systemctl".to_string(),
            action.to_string(),
            unit.to_string(),
        ]
    };
    let active = cmd::execute(&argv("is-active"), RELOAD_TIMEOUT)
        .await?
        .success;
    let action = systemd_action(active);
    info!(
        "[service:{}] systemctl {action} {unit} ({why}){}",
        service.name,
        if active { "" } else { ": it is not running" }
    );
    cmd::run(&argv(action), RELOAD_TIMEOUT).await?;
    Ok(())
}

async fn command(service: &ServiceSection, argv: &[String], why: &str) -> Result<(), StepError> {
    info!(
        "[service:{}] running {} ({why})",
        service.name,
        cmd::display(argv)
    );
    let finished = cmd::run(argv, RELOAD_TIMEOUT).await?;
    if !finished.output.is_empty() {
        info!("[service:{}] {}", service.name, finished.output);
    }
    Ok(())
}

async fn traefik(
    config: &Config,
    store: &Store,
    service: &ServiceSection,
    configdir: &Path,
    why: &str,
) -> Result<(), StepError> {
    let file = traefik_file(configdir, &service.name);
    let state = store.snapshot().await;
    let (text, warnings) = traefik_config(config, &state, service);
    for warning in warnings {
        warn!("[service:{}] {warning}", service.name);
    }
    afs::create_dir(configdir, 0o755)?;
    afs::write_atomic(&file, text.as_bytes(), PUBLIC_FILE)?;
    info!(
        "[service:{}] wrote {} ({why}); traefik reloads it by itself",
        service.name,
        file.display()
    );
    Ok(())
}
