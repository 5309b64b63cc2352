//! Certificate steps: the next key, deploying to the destinations, deleting
//! superseded files (orders are in [`super::issue`]). At the destination the
//! files are symlinks
//! into `..data`, itself a symlink to a versioned directory swapped in one
//! rename, so key and certificate change together.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use log::{info, warn};

use super::error::StepError;
use super::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE};
use crate::clock;
use crate::config::cert::CertSection;
use crate::crashpoint;
use crate::material::cert::{KeyPem, generate_key, hex, spki_of_key};
use crate::plan::cert::key_type_name;
use crate::state::{CertMaterial, NextKey, Store};

/// The files of a certificate, in the state directory and at the destination.
pub(super) const KEY_FILE: &str = "privkey.pem";
pub(super) const CERT_FILE: &str = "cert.pem";
pub(super) const CHAIN_FILE: &str = "chain.pem";
pub(super) const FULLCHAIN_FILE: &str = "fullchain.pem";
const FILES: [&str; 4] = [CERT_FILE, CHAIN_FILE, FULLCHAIN_FILE, KEY_FILE];
/// The symlink at the destination naming the deployed version.
const DATA_LINK: &str = "..data";

/// The key of a certificate directory, if it can be read.
pub(super) fn read_key(dir: &Path) -> Option<KeyPem> {
    std::fs::read_to_string(dir.join(KEY_FILE))
        .ok()
        .map(KeyPem::new)
}

/// A fresh directory `STATEDIR/certs/<section>/<time>` (0700) for new material.
pub(crate) fn new_material_dir(statedir: &Path, section: &str) -> Result<PathBuf, StepError> {
    let base = statedir.join("certs").join(section);
    afs::create_dir(&base, PRIVATE_DIR)?;
    let stamp = clock::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    for n in 0u32..100 {
        let dir = if n == 0 {
            base.join(&stamp)
        } else {
            base.join(format!("{stamp}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                afs::create_dir(&dir, PRIVATE_DIR)?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(afs::FsError {
                    action: "creating",
                    path: dir,
                    source,
                }
                .into());
            }
        }
    }
    Err(StepError::Mismatch(format!(
        "no free directory name for {stamp} in {}",
        base.display()
    )))
}

/// The PEM blocks of a chain, each with its END line and a newline.
pub(super) fn pem_blocks(chain: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    chain
        .split_inclusive(END)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| format!("{}\n", block.trim_start()))
        .collect()
}

pub(super) fn timestamp(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Makes the next key of a `keystrategy = staged` certificate: its file
/// (0600) in a directory of its own, its public key in the state.
///
/// # Errors
/// The key or its file could not be made, or the state not written.
pub(crate) async fn make_next_key(store: &Store, cert: &CertSection) -> Result<(), StepError> {
    let dir = new_material_dir(store.statedir(), &cert.name)?;
    let key = generate_key(cert.key_type)?;
    let spki = spki_of_key(&key)?;
    afs::write_atomic(&dir.join(KEY_FILE), key.expose().as_bytes(), PRIVATE_FILE)?;
    let next = NextKey {
        dir,
        spki: hex(&spki),
        key_type: key_type_name(cert.key_type),
        created: clock::now(),
    };
    info!(
        "[cert:{}] made the next key ({}); its TLSA records go out with the next zone change",
        cert.name, next.key_type
    );
    store
        .update(|s| s.certs.entry(cert.name.clone()).or_default().next_key = Some(next))
        .await?;
    Ok(())
}

/// Puts the prepared certificate `prepared` of `cert` in place at every
/// destination and makes it the current one.
///
/// # Errors
/// A file could not be written; the current certificate stays in place.
pub(crate) async fn deploy(
    store: &Store,
    cert: &CertSection,
    prepared: &CertMaterial,
) -> Result<(), StepError> {
    if let Some(dest) = cert.destination.clone() {
        // Synchronous file work (each file synced): on a blocking thread, so
        // the deploys of a round write their files at the same time.
        let material = prepared.clone();
        tokio::task::spawn_blocking(move || {
            for name in &material.names {
                deploy_to(&material, &dest.join(name))?;
            }
            Ok::<(), StepError>(())
        })
        .await
        .unwrap_or_else(|e| Err(StepError::Panicked(e.to_string())))?;
    }
    crashpoint::reached("rollover:deployed");
    let now = clock::now();
    // A certificate on the next key makes it current: a new next key follows.
    let key_in_use = read_key(&prepared.dir)
        .and_then(|key| spki_of_key(&key).ok())
        .map(|spki| hex(&spki));
    let mut taken_up = None;
    store
        .update(|s| {
            let entry = s.certs.entry(cert.name.clone()).or_default();
            let mut material = prepared.clone();
            material.deployed_at = Some(now);
            if let Some(old) = entry.current.replace(material) {
                entry.superseded.push(old);
            }
            entry.prepared = None;
            if entry
                .next_key
                .as_ref()
                .is_some_and(|n| Some(&n.spki) == key_in_use.as_ref())
            {
                taken_up = entry.next_key.take();
            }
        })
        .await?;
    if let Some(next) = taken_up {
        info!("[cert:{}] the next key is now the current key", cert.name);
        // Its copy lives on with the certificate; a leftover is harmless.
        if let Err(e) = afs::remove_tree(&next.dir) {
            warn!("[cert:{}] {e}", cert.name);
        }
    }
    info!(
        "[cert:{}] rolled over to serial {}{}",
        cert.name,
        prepared.serial,
        cert.destination
            .as_ref()
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Deploys `material` into `dir` (`DESTINATION/<name>`).
fn deploy_to(material: &CertMaterial, dir: &Path) -> Result<(), StepError> {
    afs::create_dir(dir, 0o755)?;
    let version = format!("..{}", material.serial.to_ascii_lowercase());
    if !version[2..].bytes().all(|b| b.is_ascii_hexdigit()) || version.len() < 3 {
        return Err(StepError::Mismatch(format!(
            "serial {:?} is not hexadecimal",
            material.serial
        )));
    }
    let version_dir = dir.join(&version);
    // A re-run after a crash finds a half-written version of its own: start over.
    afs::remove_tree(&version_dir)?;
    afs::create_dir(&version_dir, PRIVATE_DIR)?;
    for file in FILES {
        let source = material.dir.join(file);
        let contents = std::fs::read(&source).map_err(StepError::read(&source))?;
        let mode = if file == KEY_FILE {
            PRIVATE_FILE
        } else {
            PUBLIC_FILE
        };
        afs::write_atomic(&version_dir.join(file), &contents, mode)?;
    }
    crashpoint::reached("rollover:version-written");
    afs::swap_symlink(&dir.join(DATA_LINK), Path::new(&version))?;
    for file in FILES {
        let link = dir.join(file);
        let target = Path::new(DATA_LINK).join(file);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            afs::swap_symlink(&link, &target)?;
        }
    }
    Ok(())
}

/// Deletes a superseded certificate's directory and forgets it.
///
/// # Errors
/// The directory could not be removed (a later run retries).
pub(crate) async fn delete(store: &Store, cert: &str, old: &CertMaterial) -> Result<(), StepError> {
    afs::remove_tree(&old.dir)?;
    info!(
        "[cert:{cert}] deleted superseded certificate serial {}",
        old.serial
    );
    crashpoint::reached("cleanup:removed");
    store
        .update(|s| {
            if let Some(c) = s.certs.get_mut(cert) {
                c.superseded.retain(|m| m.dir != old.dir);
            }
        })
        .await?;
    Ok(())
}

/// Deletes versioned directories in `dir` other than the deployed one, and the
/// temporary link a run killed in the middle of switching `..data` left behind
/// (`...data.<pid>.<random>.lnk`).
///
/// # Errors
/// The directory cannot be read or a version removed.
pub(crate) fn prune_versions(dir: &Path) -> Result<(), StepError> {
    let Ok(current) = std::fs::read_link(dir.join(DATA_LINK)) else {
        return Ok(());
    };
    let entries = std::fs::read_dir(dir).map_err(StepError::read(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("..") || name == DATA_LINK || Path::new(name.as_ref()) == current {
            continue;
        }
        let path = entry.path();
        if name.ends_with(".lnk") && path.is_symlink() {
            afs::remove_file(&path)?;
        } else {
            afs::remove_tree(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_old_versions_and_a_link_left_by_a_killed_switch() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::create_dir(at("..v1")).unwrap();
        std::fs::create_dir(at("..v2")).unwrap();
        std::os::unix::fs::symlink("..v2", at(DATA_LINK)).unwrap();
        std::os::unix::fs::symlink("..v1", at("...data.4242.abcdef.lnk")).unwrap();
        std::os::unix::fs::symlink("..data/cert.pem", at("cert.pem")).unwrap();
        prune_versions(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["..data", "..v2", "cert.pem"]);
    }

    #[test]
    fn chain_splits_into_blocks() {
        let chain = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(chain);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].contains("AAA") && blocks[1].contains("BBB"));
        assert!(blocks[1].starts_with("-----BEGIN") && blocks[1].ends_with("-----\n"));
    }
}
