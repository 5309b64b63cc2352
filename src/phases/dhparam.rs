//! DH parameters through the phases (SPEC §3.5, §4):
//!
//! - **prepare** makes new parameters into `STATEDIR/dhparams/<section>/`:
//!   handler `openssl` a freshly generated safe prime in every cycle (as the
//!   original ran `openssl dhparam` in every prepare), handler `ffdhe` the
//!   RFC 7919 group when it is not the deployed one already. Parameters that
//!   are prepared and not yet rolled over are kept, so a repeated prepare does
//!   not generate again.
//! - **rollover** copies the prepared file to `filename` (atomic replace,
//!   mode 0644). When nothing is prepared but the file at `filename` is missing
//!   or differs from the current parameters, the current ones are copied again.
//! - **cleanup** deletes superseded files from the state directory.
//!
//! Sections are handled concurrently; generation runs on blocking threads.

use std::path::{Path, PathBuf};

use chrono::Utc;
use futures_util::future::join_all;
use log::{error, info};

use super::Options;
use super::services::{Deployed, Material};
use crate::apply::fs::{self as afs, PRIVATE_DIR, PUBLIC_FILE};
use crate::config::dhparam::{DhHandler, DhParamSection};
use crate::config::model::Config;
use crate::crashpoint;
use crate::material::cert::hex;
use crate::material::dhparam::{self, DhParams};
use crate::run::PhaseFailed;
use crate::state::{DhMaterial, DhState, Store};

/// Where prepared parameters of `section` are kept.
fn state_dir(statedir: &Path, section: &str) -> PathBuf {
    statedir.join("dhparams").join(section)
}

fn fingerprint(params: &DhParams) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, &params.to_der()).as_ref())
}

/// Why prepare makes new parameters, or `None` when it keeps what there is.
fn prepare_reason(
    dh: &DhParamSection,
    state: &DhState,
    ffdhe_fingerprint: Option<&str>,
) -> Option<String> {
    let same = |m: &DhMaterial| {
        m.handler == dh.handler.name()
            && m.bits == dh.bits
            && ffdhe_fingerprint.is_none_or(|fp| fp == m.fingerprint)
    };
    if state.prepared.as_ref().is_some_and(same) {
        return None;
    }
    match dh.handler {
        DhHandler::Generate => Some("new parameters for this cycle".into()),
        DhHandler::Ffdhe if state.current.as_ref().is_some_and(same) => None,
        DhHandler::Ffdhe => Some(format!("the RFC 7919 group ffdhe{}", dh.bits)),
    }
}

/// Runs prepare for every DH section.
///
/// # Errors
/// [`PhaseFailed`] when any section could not be prepared.
pub async fn prepare(config: &Config, store: &Store, options: Options) -> Result<(), PhaseFailed> {
    let results = join_all(
        config
            .dhparams
            .iter()
            .map(|dh| prepare_one(dh, store, options)),
    )
    .await;
    let mut failed = false;
    for (dh, result) in config.dhparams.iter().zip(results) {
        if let Err(message) = result {
            error!("[dhparam:{}]: {message}", dh.name);
            failed = true;
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

async fn prepare_one(dh: &DhParamSection, store: &Store, options: Options) -> Result<(), String> {
    let state = store
        .snapshot()
        .await
        .dhparams
        .get(&dh.name)
        .cloned()
        .unwrap_or_default();
    let group = match dh.handler {
        DhHandler::Ffdhe => Some(dhparam::ffdhe(dh.bits).map_err(|e| e.to_string())?),
        DhHandler::Generate => None,
    };
    let group_fingerprint = group.as_ref().map(fingerprint);
    let Some(reason) = prepare_reason(dh, &state, group_fingerprint.as_deref()) else {
        info!(
            "[dhparam:{}] kept: {}-bit parameters ({})",
            dh.name,
            dh.bits,
            if state.prepared.is_some() {
                "prepared, waiting for rollover"
            } else {
                "deployed"
            }
        );
        return Ok(());
    };
    let dir = state_dir(store.statedir(), &dh.name);
    if options.dry_run {
        println!(
            "dhparam {}: make {}-bit DH parameters ({reason}) in {}",
            dh.name,
            dh.bits,
            dir.display()
        );
        return Ok(());
    }
    let params = match group {
        Some(group) => group,
        None => {
            info!(
                "[dhparam:{}] generating {}-bit DH parameters",
                dh.name, dh.bits
            );
            let started = std::time::Instant::now();
            let bits = dh.bits;
            let params = tokio::task::spawn_blocking(move || dhparam::generate(bits))
                .await
                .map_err(|e| format!("generation stopped: {e}"))?
                .map_err(|e| e.to_string())?;
            info!(
                "[dhparam:{}] generated in {:.1} s",
                dh.name,
                started.elapsed().as_secs_f64()
            );
            params
        }
    };
    afs::create_dir(&dir, PRIVATE_DIR).map_err(|e| e.to_string())?;
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let file = dir.join(format!("dh{}-{stamp}.pem", dh.bits));
    afs::write_atomic(&file, params.to_pem().as_bytes(), PUBLIC_FILE).map_err(|e| e.to_string())?;
    crashpoint::reached("dhparam:generated");
    let material = DhMaterial {
        file,
        handler: dh.handler.name().to_string(),
        bits: dh.bits,
        fingerprint: fingerprint(&params),
        created_at: Utc::now(),
        deployed_at: None,
    };
    info!(
        "[dhparam:{}] prepared {}-bit parameters ({reason}), sha256 {}",
        dh.name, dh.bits, material.fingerprint
    );
    store
        .update(|s| {
            let entry = s.dhparams.entry(dh.name.clone()).or_default();
            if let Some(old) = entry.prepared.replace(material) {
                entry.superseded.push(old);
            }
        })
        .await
        .map_err(|e| e.to_string())
}

/// Runs rollover for every DH section and says which were deployed.
pub async fn rollover(config: &Config, store: &Store) -> Deployed {
    let state = store.snapshot().await;
    let mut deployed = Deployed::default();
    for dh in &config.dhparams {
        let entry = state.dhparams.get(&dh.name).cloned().unwrap_or_default();
        let (material, fresh) = match (&entry.prepared, &entry.current) {
            (Some(prepared), _) => (prepared.clone(), true),
            (None, Some(current)) if !in_place(&current.file, &dh.filename) => {
                (current.clone(), false)
            }
            (None, Some(_)) => continue,
            (None, None) => {
                info!("[dhparam:{}] nothing prepared", dh.name);
                continue;
            }
        };
        if store.dry_run() {
            println!(
                "dhparam {}: copy {} to {}",
                dh.name,
                material.file.display(),
                dh.filename.display()
            );
            deployed.materials.push(Material::DhParam(dh.name.clone()));
            continue;
        }
        if let Err(message) = deploy(&material.file, &dh.filename) {
            error!("[dhparam:{}] rollover failed: {message}", dh.name);
            deployed.failed = true;
            continue;
        }
        let saved = store
            .update(|s| {
                let entry = s.dhparams.entry(dh.name.clone()).or_default();
                let mut material = material.clone();
                material.deployed_at = Some(Utc::now());
                if fresh {
                    entry.prepared = None;
                    if let Some(old) = entry.current.replace(material) {
                        entry.superseded.push(old);
                    }
                } else {
                    entry.current = Some(material);
                }
            })
            .await;
        if let Err(e) = saved {
            error!("[dhparam:{}] {e}", dh.name);
            deployed.failed = true;
            continue;
        }
        info!(
            "[dhparam:{}] {} {}-bit parameters to {}",
            dh.name,
            if fresh { "rolled over" } else { "restored" },
            material.bits,
            dh.filename.display()
        );
        deployed.materials.push(Material::DhParam(dh.name.clone()));
    }
    deployed
}

/// Whether `target` holds exactly the contents of `source`.
fn in_place(source: &Path, target: &Path) -> bool {
    match (std::fs::read(source), std::fs::read(target)) {
        (Ok(a), Ok(b)) => a == b,
        // A missing source cannot be restored; leave the target alone.
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    }
}

fn deploy(source: &Path, target: &Path) -> Result<(), String> {
    let contents =
        std::fs::read(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        afs::create_dir(parent, 0o755).map_err(|e| e.to_string())?;
    }
    afs::write_atomic(target, &contents, PUBLIC_FILE).map_err(|e| e.to_string())?;
    crashpoint::reached("dhparam:deployed");
    Ok(())
}

/// Runs cleanup: superseded parameter files in the state directory are deleted.
///
/// # Errors
/// [`PhaseFailed`] when a file could not be deleted (a later run retries).
pub async fn cleanup(config: &Config, store: &Store) -> Result<(), PhaseFailed> {
    let state = store.snapshot().await;
    let base = store.statedir().join("dhparams");
    let mut failed = false;
    for dh in &config.dhparams {
        let Some(entry) = state.dhparams.get(&dh.name) else {
            continue;
        };
        let mut kept = Vec::new();
        for old in &entry.superseded {
            if !old.file.starts_with(&base) {
                continue;
            }
            if store.dry_run() {
                println!("dhparam {}: delete {}", dh.name, old.file.display());
                continue;
            }
            match afs::remove_file(&old.file) {
                Ok(()) => info!(
                    "[dhparam:{}] deleted superseded {}",
                    dh.name,
                    old.file.display()
                ),
                Err(e) => {
                    error!("[dhparam:{}] {e}", dh.name);
                    kept.push(old.file.clone());
                    failed = true;
                }
            }
        }
        if !store.dry_run() {
            let saved = store
                .update(|s| {
                    if let Some(d) = s.dhparams.get_mut(&dh.name) {
                        d.superseded.retain(|old| kept.contains(&old.file));
                    }
                })
                .await;
            if let Err(e) = saved {
                error!("[dhparam:{}] {e}", dh.name);
                failed = true;
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// The DH sections for `--status`: current and prepared parameters.
pub fn status(config: &Config, state: &crate::state::State) -> String {
    let mut out = String::new();
    for dh in &config.dhparams {
        out.push_str(&format!(
            "\nDH parameters [dhparam:{}] ({}, {} bits) at {}\n",
            dh.name,
            dh.handler.name(),
            dh.bits,
            dh.filename.display()
        ));
        let entry = state.dhparams.get(&dh.name).cloned().unwrap_or_default();
        for (label, material) in [("current", &entry.current), ("prepared", &entry.prepared)] {
            match material {
                Some(m) => out.push_str(&format!(
                    "  {label}: {} bits, sha256 {}, made {}\n",
                    m.bits,
                    m.fingerprint,
                    m.created_at.format("%Y-%m-%d %H:%M UTC")
                )),
                None => out.push_str(&format!("  {label}: none\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(handler: DhHandler) -> DhParamSection {
        DhParamSection {
            name: "dh".into(),
            span: None,
            handler,
            bits: 2048,
            filename: "/x".into(),
            rotate_days: 90,
        }
    }

    fn material(handler: &str, fp: &str) -> DhMaterial {
        DhMaterial {
            file: "/s".into(),
            handler: handler.into(),
            bits: 2048,
            fingerprint: fp.into(),
            created_at: Utc::now(),
            deployed_at: None,
        }
    }

    #[test]
    fn when_prepare_makes_new_parameters() {
        let generate = section(DhHandler::Generate);
        let ffdhe = section(DhHandler::Ffdhe);
        let none = DhState::default();
        let deployed = |m| DhState {
            current: Some(m),
            ..DhState::default()
        };
        let prepared = |m| DhState {
            prepared: Some(m),
            ..DhState::default()
        };
        // A new cycle generates again; prepared parameters are kept.
        assert!(prepare_reason(&generate, &none, None).is_some());
        assert!(prepare_reason(&generate, &deployed(material("openssl", "a")), None).is_some());
        assert!(prepare_reason(&generate, &prepared(material("openssl", "a")), None).is_none());
        assert!(prepare_reason(&generate, &prepared(material("ffdhe", "a")), None).is_some());
        // The fixed group is prepared only when it is not in place already.
        assert!(prepare_reason(&ffdhe, &none, Some("g")).is_some());
        assert!(prepare_reason(&ffdhe, &deployed(material("ffdhe", "g")), Some("g")).is_none());
        assert!(prepare_reason(&ffdhe, &deployed(material("openssl", "a")), Some("g")).is_some());
        assert!(prepare_reason(&ffdhe, &prepared(material("ffdhe", "g")), Some("g")).is_none());
    }
}
