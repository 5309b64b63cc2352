//! DH parameter steps: generating (on a blocking thread) or writing the RFC
//! 7919 group into `STATEDIR/dhparams/<section>/`, copying to `filename`
//! (atomic, 0644), deleting superseded files.

use std::path::Path;

use log::info;

use super::error::StepError;
use super::fs::{self as afs, PRIVATE_DIR, PUBLIC_FILE};
use crate::clock;
use crate::config::dhparam::{DhHandler, DhParamSection};
use crate::crashpoint;
use crate::material::dhparam;
use crate::observe::dh_fingerprint;
use crate::state::{DhMaterial, Store};

/// Makes parameters for `dh` and keeps them as the prepared ones.
///
/// # Errors
/// Generation or writing failed.
pub(crate) async fn make(
    store: &Store,
    dh: &DhParamSection,
    reason: &str,
) -> Result<(), StepError> {
    let params = match dh.handler {
        DhHandler::Ffdhe => dhparam::ffdhe(dh.bits)?,
        DhHandler::Generate => {
            info!(
                "[dhparam:{}] generating {}-bit DH parameters",
                dh.name, dh.bits
            );
            let started = std::time::Instant::now();
            let bits = dh.bits;
            let params = crate::progress::while_running(
                &format!("[dhparam:{}] generating {bits}-bit DH parameters", dh.name),
                tokio::task::spawn_blocking(move || dhparam::generate(bits)),
            )
            .await
            .map_err(|e| StepError::Panicked(e.to_string()))??;
            info!(
                "[dhparam:{}] generated in {:.1} s",
                dh.name,
                started.elapsed().as_secs_f64()
            );
            params
        }
    };
    let dir = store.statedir().join("dhparams").join(&dh.name);
    afs::create_dir(&dir, PRIVATE_DIR)?;
    let now = clock::now();
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let mut file = dir.join(format!("dh{}-{stamp}.pem", dh.bits));
    for n in 1u32.. {
        if !file.exists() || n > 100 {
            break;
        }
        file = dir.join(format!("dh{}-{stamp}-{n}.pem", dh.bits));
    }
    afs::write_atomic(&file, params.to_pem().as_bytes(), PUBLIC_FILE)?;
    crashpoint::reached("dhparam:generated");
    let material = DhMaterial {
        file,
        handler: dh.handler.name().to_string(),
        bits: dh.bits,
        fingerprint: dh_fingerprint(&params),
        created_at: now,
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
        .await?;
    Ok(())
}

/// Copies `material` to `dh.filename`; `fresh` makes prepared parameters the
/// current ones, otherwise the current ones are put back.
///
/// # Errors
/// Reading or writing failed; the state is unchanged.
pub(crate) async fn deploy(
    store: &Store,
    dh: &DhParamSection,
    material: &DhMaterial,
    fresh: bool,
) -> Result<(), StepError> {
    copy(&material.file, &dh.filename)?;
    let now = clock::now();
    store
        .update(|s| {
            let entry = s.dhparams.entry(dh.name.clone()).or_default();
            let mut material = material.clone();
            material.deployed_at = Some(now);
            if fresh {
                entry.prepared = None;
                if let Some(old) = entry.current.replace(material) {
                    entry.superseded.push(old);
                }
            } else {
                entry.current = Some(material);
            }
        })
        .await?;
    info!(
        "[dhparam:{}] {} {}-bit parameters to {}",
        dh.name,
        if fresh { "rolled over" } else { "restored" },
        material.bits,
        dh.filename.display()
    );
    Ok(())
}

fn copy(source: &Path, target: &Path) -> Result<(), StepError> {
    let contents = std::fs::read(source).map_err(StepError::read(source))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        afs::create_dir(parent, 0o755)?;
    }
    afs::write_atomic(target, &contents, PUBLIC_FILE)?;
    crashpoint::reached("dhparam:deployed");
    Ok(())
}

/// Deletes superseded parameters from the state directory and forgets them.
///
/// # Errors
/// The file could not be removed (a later run retries).
pub(crate) async fn delete(store: &Store, dh: &str, old: &DhMaterial) -> Result<(), StepError> {
    afs::remove_file(&old.file)?;
    info!("[dhparam:{dh}] deleted superseded {}", old.file.display());
    store
        .update(|s| {
            if let Some(d) = s.dhparams.get_mut(dh) {
                d.superseded.retain(|m| m.file != old.file);
            }
        })
        .await?;
    Ok(())
}
