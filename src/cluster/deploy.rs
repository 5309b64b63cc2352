//! Every node rolls over itself (docs/cluster.md, step 3): what the shared
//! state has as current and this node has not deployed is put in place at the
//! node's own destinations with the single-host deploy steps, then the node's
//! services that use it are reloaded once.

use std::collections::{BTreeMap, BTreeSet};

use log::{error, info};

use super::data::current;
use crate::apply;
use crate::config::model::Config;
use crate::config::service::ServiceSection;
use crate::state::{ServiceState, State, Store};

/// Deploys what `shared` has as current and `local` lacks. Returns the node's
/// state afterwards and whether every step succeeded.
pub(super) async fn deploy_self(config: &Config, shared: &State, local: State) -> (State, bool) {
    let store = Store::new(&config.cdm.statedir, local, false);
    let mut ok = true;
    let mut deployed: BTreeSet<String> = BTreeSet::new();
    let local = store.snapshot().await;
    for cert in &config.certs {
        let Some(target) = shared.certs.get(&cert.name).and_then(|c| c.current.clone()) else {
            continue;
        };
        let have = local.certs.get(&cert.name).and_then(|c| c.current.as_ref());
        if have.is_some_and(|c| c.fingerprint == target.fingerprint) {
            continue;
        }
        match apply::cert::deploy(&store, cert, &target).await {
            Ok(()) => {
                deployed.insert(format!("cert:{}", cert.name));
            }
            Err(e) => {
                error!(
                    "[cert:{}] deploying serial {} failed: {e}",
                    cert.name, target.serial
                );
                ok = false;
            }
        }
    }
    for dkim in &config.dkims {
        let Some(target) = shared.dkim.get(&dkim.name).and_then(|d| d.current.clone()) else {
            continue;
        };
        let have = local.dkim.get(&dkim.name).and_then(|d| d.current.as_ref());
        if have.is_some_and(|k| k.selector == target.selector) {
            continue;
        }
        let mut prepared = target.clone();
        prepared.installed = None;
        prepared.retired = None;
        let journalled = store
            .update(|s| {
                s.dkim.entry(dkim.name.clone()).or_default().prepared = Some(prepared.clone())
            })
            .await;
        let result = match journalled {
            Ok(()) => apply::dkim::install(config, &store, dkim, &prepared).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => {
                deployed.insert(format!("dkim:{}", dkim.name));
            }
            Err(e) => {
                error!(
                    "[dkim:{}] installing selector {} failed: {e}",
                    dkim.name, target.selector
                );
                ok = false;
            }
        }
    }
    for dh in &config.dhparams {
        let Some(target) = shared
            .dhparams
            .get(&dh.name)
            .and_then(|d| d.current.clone())
        else {
            continue;
        };
        let have = local
            .dhparams
            .get(&dh.name)
            .and_then(|d| d.current.as_ref());
        if have.is_some_and(|d| d.fingerprint == target.fingerprint) {
            continue;
        }
        match apply::dhparam::deploy(&store, dh, &target, true).await {
            Ok(()) => {
                deployed.insert(format!("dhparam:{}", dh.name));
            }
            Err(e) => {
                error!("[dhparam:{}] deploying failed: {e}", dh.name);
                ok = false;
            }
        }
    }
    for service in &config.services {
        let uses: Vec<String> = uses(service)
            .into_iter()
            .filter(|k| deployed.contains(k))
            .collect();
        if uses.is_empty() {
            continue;
        }
        let why = format!(
            "after {}",
            uses.iter()
                .map(|k| format!("[{k}]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Err(e) = apply::services::reload(config, &store, service, &why).await {
            error!("[service:{}] reload failed: {e}", service.name);
            ok = false;
        }
    }
    if !deployed.is_empty() {
        info!(
            "deployed the cluster's current material: {}",
            deployed.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    (store.into_inner(), ok)
}

/// What `deploy_self` would do (for `--dry-run`): one line per section whose
/// current material in `shared` this node has not deployed, and per service
/// it would reload.
pub(super) fn pending(config: &Config, shared: &State, local: &State) -> Vec<String> {
    let keys = config
        .certs
        .iter()
        .map(|c| format!("cert:{}", c.name))
        .chain(config.dkims.iter().map(|d| format!("dkim:{}", d.name)))
        .chain(
            config
                .dhparams
                .iter()
                .map(|d| format!("dhparam:{}", d.name)),
        );
    let mut due = BTreeSet::new();
    let mut lines = Vec::new();
    for key in keys {
        let Some((generation, _)) = current(shared, &key) else {
            continue;
        };
        if current(local, &key).is_some_and(|(have, _)| have == generation) {
            continue;
        }
        lines.push(format!(
            "[{key}] deploy the cluster's current material ({}) to this node's destinations",
            generation.get(..16).unwrap_or(&generation)
        ));
        due.insert(key);
    }
    for service in &config.services {
        if uses(service).iter().any(|k| due.contains(k)) {
            lines.push(format!("[service:{}] reload", service.name));
        }
    }
    lines
}

/// This node's services as the coordinator's rounds see them. A service that
/// reloaded after this node deployed the current material (on this node's
/// clock) counts as reloaded at the shared deploy time too: the shared times
/// come from the node that rolled over, whose clock may run ahead, and the
/// service must not reload a second time for the same material.
pub(super) fn services_for(
    config: &Config,
    shared: &State,
    local: &State,
) -> BTreeMap<String, ServiceState> {
    let mut services = local.services.clone();
    for service in &config.services {
        let Some(reloaded) = local
            .services
            .get(&service.name)
            .and_then(|s| s.reloaded_at)
        else {
            continue;
        };
        let mut latest = reloaded;
        let mut taken_up = true;
        for key in uses(service) {
            match (current(local, &key), current(shared, &key)) {
                (Some((mine, deployed)), Some((theirs, at))) if mine == theirs => {
                    if deployed.is_some_and(|d| d > reloaded) {
                        taken_up = false;
                    }
                    latest = latest.max(at.unwrap_or(latest));
                }
                (_, None) => {}
                _ => taken_up = false,
            }
        }
        if taken_up {
            services
                .entry(service.name.clone())
                .or_default()
                .reloaded_at = Some(latest);
        }
    }
    services
}

/// The section keys `service` uses (`cert:web`, ...).
fn uses(service: &ServiceSection) -> Vec<String> {
    service
        .certs
        .iter()
        .map(|n| format!("cert:{n}"))
        .chain(service.dkims.iter().map(|n| format!("dkim:{n}")))
        .chain(service.dhparams.iter().map(|n| format!("dhparam:{n}")))
        .collect()
}
