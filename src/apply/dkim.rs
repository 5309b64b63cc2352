//! DKIM steps: a new key (journalled in the state before its file is written,
//! so an interrupted run finishes the same selector), installing it as its own
//! file `keylocation/SELECTOR.key` with the signing configuration that names
//! file and selector together (put back as it was when a step fails), deleting
//! a drained key's files.

mod install;

use std::path::Path;

use chrono::{DateTime, Utc};
use log::{info, warn};

use super::error::StepError;
use super::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE};
use crate::clock;
use crate::config::dkim::DkimSection;
use crate::config::model::Config;
use crate::crashpoint;
use crate::material::dkim::{self as key_material, DkimKeyType};
use crate::plan::NewDkimKey;
use crate::plan::dkim::{
    dkim_state, installed_file_to_delete, keyname_target, rolled_over, selector_file,
};
use crate::plan::observed::Observed;
use crate::state::{DkimKeyState, State, Store};
pub(crate) use install::signing_files;

/// What observation checks of DKIM sections: that a prepared key's file holds
/// it, and that the signing configuration can be made.
pub(crate) fn observe(config: &Config, state: &State, observed: &mut Observed) {
    for dkim in &config.dkims {
        let entry = dkim_state(state, &dkim.name);
        let check = selector_file(dkim, "check_0");
        if let Err(e) = signing_files(config, dkim, "check_0", &check, state) {
            observed.dkim_config_errors.insert(dkim.name.clone(), e);
        }
        let Some(prepared) = &entry.prepared else {
            continue;
        };
        match std::fs::read_to_string(&prepared.key_file) {
            Ok(pem) => match key_material::from_pem(&pem) {
                Ok(key) if key.txt == prepared.txt => {}
                Ok(_) => {
                    observed.dkim_key_wrong.insert(
                        dkim.name.clone(),
                        format!(
                            "{} does not hold the key of selector {} recorded in the state; move it away to make a new key",
                            prepared.key_file.display(),
                            prepared.selector
                        ),
                    );
                }
                Err(e) => {
                    observed.dkim_key_wrong.insert(
                        dkim.name.clone(),
                        format!("{}: {e}", prepared.key_file.display()),
                    );
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                observed.dkim_key_missing.insert(dkim.name.clone());
            }
            Err(e) => {
                observed.dkim_key_wrong.insert(
                    dkim.name.clone(),
                    format!("reading {}: {e}", prepared.key_file.display()),
                );
            }
        }
    }
}

/// Makes the key of `new` for `dkim`: journalled as the prepared key first,
/// then written (0600) into `STATEDIR/dkim/<section>/<selector>.key`. For a
/// journalled key whose file is missing, a key is made for the same selector
/// (no record of the lost key was ever published).
///
/// # Errors
/// Generation, the state or the file failed.
pub(crate) async fn make(
    store: &Store,
    dkim: &DkimSection,
    new: &NewDkimKey,
    reason: &str,
) -> Result<(), StepError> {
    let key_file = store
        .statedir()
        .join("dkim")
        .join(&dkim.name)
        .join(format!("{}.key", new.selector));
    let now = clock::now();
    if new.resume {
        warn!(
            "[dkim:{}] the key of prepared selector {} was never written (interrupted run); making it now",
            dkim.name, new.selector
        );
    } else {
        info!(
            "[dkim:{}] making a new {} key, selector {}: {reason}",
            dkim.name, dkim.key_type, new.selector
        );
    }
    let key = generate(dkim.key_type).await?;
    let (txt, kind) = (key.txt.clone(), key.key_type.to_string());
    if new.resume {
        store
            .update(|s| {
                if let Some(p) = s.dkim.get_mut(&dkim.name).and_then(|d| d.prepared.as_mut()) {
                    p.txt = txt;
                    p.key_type = kind;
                    p.published = None;
                    p.served = None;
                    p.domains.clear();
                }
            })
            .await?;
        return write_key(&key_file, key.pem.expose());
    }
    let entry = DkimKeyState {
        selector: new.selector.clone(),
        key_file: key_file.clone(),
        key_type: kind,
        txt,
        created: now,
        domains: Vec::new(),
        published: None,
        installed: None,
        installed_file: None,
        retired: None,
        joined_ttl: None,
        served: None,
    };
    // Journal first: a crash after this continues with this selector.
    store
        .update(|s| install_prepared(s, &dkim.name, entry, now))
        .await?;
    crashpoint::reached("dkim:journaled");
    write_key(&key_file, key.pem.expose())?;
    crashpoint::reached("dkim:key-written");
    Ok(())
}

/// Makes `entry` the prepared key; a prepared key it replaces (forced prepare)
/// is retired at once: it never signed anything.
fn install_prepared(state: &mut State, section: &str, entry: DkimKeyState, now: DateTime<Utc>) {
    let slot = state.dkim.entry(section.to_string()).or_default();
    if let Some(mut old) = slot.prepared.replace(entry) {
        old.retired = Some(now);
        slot.retired.push(old);
    }
}

/// Generates a key off the async threads (RSA-4096 takes seconds).
async fn generate(kind: DkimKeyType) -> Result<key_material::DkimKey, StepError> {
    Ok(
        tokio::task::spawn_blocking(move || key_material::generate(kind))
            .await
            .map_err(|e| StepError::Panicked(e.to_string()))??,
    )
}

fn write_key(path: &Path, pem: &str) -> Result<(), StepError> {
    if let Some(dir) = path.parent() {
        afs::create_dir(dir, PRIVATE_DIR)?;
    }
    afs::write_atomic(path, pem.as_bytes(), PRIVATE_FILE)?;
    Ok(())
}

/// Installs the prepared key `prepared` of `dkim` as its own file, then the
/// signing configuration naming it, then the `keyname` link, and makes it the
/// current key.
///
/// # Errors
/// The key file does not hold the published key, or a file could not be
/// written (everything written is then put back as it was).
pub(crate) async fn install(
    config: &Config,
    store: &Store,
    dkim: &DkimSection,
    prepared: &DkimKeyState,
) -> Result<(), StepError> {
    let state = store.snapshot().await;
    let entry = dkim_state(&state, &dkim.name);
    let pem =
        std::fs::read_to_string(&prepared.key_file).map_err(StepError::read(&prepared.key_file))?;
    let key = key_material::from_pem(&pem)?;
    if key.txt != prepared.txt {
        return Err(StepError::Mismatch(format!(
            "{} does not hold the key of selector {} that was published",
            prepared.key_file.display(),
            prepared.selector
        )));
    }
    let file = selector_file(dkim, &prepared.selector);
    let files = signing_files(config, dkim, &prepared.selector, &file, &state)
        .map_err(StepError::Signing)?;
    let now = clock::now();
    let Some(after) = rolled_over(dkim, &entry, file.clone(), now) else {
        return Ok(());
    };
    let link = keyname_target(dkim, &after);
    install::install(dkim, &file, pem.as_bytes(), &files, link.as_deref())?;
    crashpoint::reached("dkim:installed");
    store
        .update(|s| {
            s.dkim.insert(dkim.name.clone(), after);
        })
        .await?;
    info!(
        "[dkim:{}] rolled over to selector {}: key {}{}",
        dkim.name,
        prepared.selector,
        file.display(),
        files
            .iter()
            .map(|(p, _)| format!(", {}", p.display()))
            .collect::<String>()
    );
    if link.is_none() {
        info!(
            "[dkim:{}] {} still holds the key of the old selector for signers configured with it; it becomes a link to the current key when that key is deleted",
            dkim.name,
            dkim.key_path().display()
        );
    }
    Ok(())
}

/// Points `keylocation/keyname` at the current key where
/// [`keyname_target`] says so (after an earlier version's key that the file
/// held is deleted, or when the link was removed by hand).
///
/// # Errors
/// The link could not be replaced.
pub(crate) async fn relink(store: &Store, dkim: &DkimSection) -> Result<(), StepError> {
    let state = store.snapshot().await;
    let Some(target) = keyname_target(dkim, &dkim_state(&state, &dkim.name)) else {
        return Ok(());
    };
    let link = dkim.key_path();
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    install::link_keyname(dkim, &target)?;
    info!(
        "[dkim:{}] {} now links to the current key {}",
        dkim.name,
        link.display(),
        target.display()
    );
    Ok(())
}

/// Deletes a drained key (its records are gone) and forgets it.
///
/// # Errors
/// The file could not be removed (a later run retries).
pub(crate) async fn delete(
    config: &Config,
    store: &Store,
    dkim: &DkimSection,
    old: &DkimKeyState,
) -> Result<(), StepError> {
    for name in &old.domains {
        let configured = crate::dns::record::Name::parse(name)
            .is_ok_and(|n| config.domains.iter().any(|d| d.name == n));
        if !configured {
            warn!(
                "[dkim:{}] {name} is not configured any more; delete {}._domainkey.{name} there by hand",
                dkim.name, old.selector
            );
        }
    }
    let keys_dir = store.statedir().join("dkim");
    if old.key_file.starts_with(&keys_dir) {
        afs::remove_file(&old.key_file)?;
    } else {
        warn!(
            "[dkim:{}] not deleting {}: outside {}",
            dkim.name,
            old.key_file.display(),
            keys_dir.display()
        );
    }
    if let Some(file) = installed_file_to_delete(old) {
        afs::remove_file(file)?;
    }
    store
        .update(|s| {
            if let Some(entry) = s.dkim.get_mut(&dkim.name) {
                entry.retired.retain(|k| k.selector != old.selector);
            }
        })
        .await?;
    info!(
        "[dkim:{}] deleted old selector {} and its key",
        dkim.name, old.selector
    );
    relink(store, dkim).await
}
