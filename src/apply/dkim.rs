//! DKIM steps: a new key (journalled in the state before its file is written,
//! so an interrupted run finishes the same selector), installing it with its
//! signing configuration (put back as it was when the configuration cannot be
//! written), deleting a drained key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use super::error::StepError;
use super::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE};
use crate::clock;
use crate::config::dkim::{DkimHandler, DkimSection};
use crate::config::model::Config;
use crate::crashpoint;
use crate::material::dkim::{self as key_material, DkimKeyType};
use crate::material::dkim_signing::{
    OpenDkimEntry, RSPAMD_TEMPLATE, TemplateValues, opendkim_key_table, opendkim_signing_table,
    render_template,
};
use crate::plan::NewDkimKey;
use crate::plan::dkim::dkim_state;
use crate::plan::observed::Observed;
use crate::state::{DkimKeyState, State, Store};

/// What observation checks of DKIM sections: that a prepared key's file holds
/// it, and that the signing configuration can be made.
pub fn observe(config: &Config, state: &State, observed: &mut Observed) {
    for dkim in &config.dkims {
        let entry = dkim_state(state, &dkim.name);
        if let Err(e) = signing_files(config, dkim, "check_0", state) {
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
pub async fn make(
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

/// Installs the prepared key `prepared` of `dkim` and its signing
/// configuration, and makes it the current key.
///
/// # Errors
/// The key file does not hold the published key, or a file could not be
/// written (everything written is then put back as it was).
pub async fn install(
    config: &Config,
    store: &Store,
    dkim: &DkimSection,
    prepared: &DkimKeyState,
) -> Result<(), StepError> {
    let state = store.snapshot().await;
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
    let files =
        signing_files(config, dkim, &prepared.selector, &state).map_err(StepError::Signing)?;
    let key_path = dkim.key_path();
    install_files(dkim, &key_path, pem.as_bytes(), &files)?;
    crashpoint::reached("dkim:installed");
    let now = clock::now();
    store
        .update(|s| {
            let slot = s.dkim.entry(dkim.name.clone()).or_default();
            let mut new = prepared.clone();
            new.installed = Some(now);
            if let Some(mut old) = slot.current.replace(new) {
                old.retired = Some(now);
                slot.retired.push(old);
            }
            slot.prepared = None;
        })
        .await?;
    info!(
        "[dkim:{}] rolled over to selector {}: key {}{}",
        dkim.name,
        prepared.selector,
        key_path.display(),
        files
            .iter()
            .map(|(p, _)| format!(", {}", p.display()))
            .collect::<String>()
    );
    Ok(())
}

/// The signing configuration files to write for `selector`: path and contents.
///
/// # Errors
/// The template cannot be read or rendered, or the tables not made.
pub fn signing_files(
    config: &Config,
    dkim: &DkimSection,
    selector: &str,
    state: &State,
) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let key_path = dkim.key_path();
    match &dkim.handler {
        DkimHandler::File => Ok(Vec::new()),
        DkimHandler::Rspamd { conf, template } => {
            let text = match template {
                Some(path) => std::fs::read_to_string(path).map_err(|e| {
                    format!("reading signingconftemplatefile {}: {e}", path.display())
                })?,
                None => RSPAMD_TEMPLATE.to_string(),
            };
            let rendered = render_template(
                &text,
                &TemplateValues {
                    keyfile: &key_path,
                    keyselector: selector,
                    keylocation: &dkim.key_location,
                },
            )
            .map_err(|e| match template {
                Some(path) => format!("template {}: {e}", path.display()),
                None => e,
            })?;
            Ok(vec![(conf.clone(), rendered.into_bytes())])
        }
        DkimHandler::OpenDkim {
            key_table,
            signing_table,
        } => {
            // Every OpenDKIM section sharing these tables is listed in them:
            // this one with its new selector, the others with their current one.
            let mut listed: Vec<(&DkimSection, String)> = vec![(dkim, selector.to_string())];
            for other in &config.dkims {
                let shares = matches!(&other.handler, DkimHandler::OpenDkim { key_table: k, .. } if k == key_table);
                if !shares || other.name == dkim.name {
                    continue;
                }
                if let Some(current) = dkim_state(state, &other.name).current {
                    listed.push((other, current.selector));
                }
            }
            let key_paths: Vec<PathBuf> = listed.iter().map(|(d, _)| d.key_path()).collect();
            let entries: Vec<OpenDkimEntry<'_>> = listed
                .iter()
                .zip(&key_paths)
                .flat_map(|((section, selector), key_file)| {
                    section.domains.iter().map(move |domain| OpenDkimEntry {
                        domain,
                        selector,
                        key_file,
                    })
                })
                .collect();
            Ok(vec![
                (
                    key_table.clone(),
                    opendkim_key_table(&entries)?.into_bytes(),
                ),
                (
                    signing_table.clone(),
                    opendkim_signing_table(&entries).into_bytes(),
                ),
            ])
        }
    }
}

/// Installs the key, then the configuration. When a configuration file cannot
/// be written, the key and the files already written are put back as they were.
fn install_files(
    dkim: &DkimSection,
    key_path: &Path,
    pem: &[u8],
    files: &[(PathBuf, Vec<u8>)],
) -> Result<(), StepError> {
    let location = &dkim.key_location;
    if std::fs::symlink_metadata(location).is_err() {
        // Private unless a group (rspamd's) must reach the key through it.
        let mode = if dkim.group.is_some() {
            0o750
        } else {
            PRIVATE_DIR
        };
        afs::create_dir(location, mode)?;
        if dkim.owner.is_some() || dkim.group.is_some() {
            afs::chown_dir(
                location,
                dkim.owner.as_ref().map(|a| a.id),
                dkim.group.as_ref().map(|a| a.id),
            )?;
        }
    }
    let mut undo: Vec<Backup> = Vec::new();
    let result = (|| {
        undo.push(Backup::take(key_path)?);
        afs::write_atomic_owned(
            key_path,
            pem,
            PRIVATE_FILE,
            dkim.owner.as_ref().map(|a| a.id),
            dkim.group.as_ref().map(|a| a.id),
        )?;
        for (path, contents) in files {
            undo.push(Backup::take(path)?);
            if let Some(dir) = path.parent() {
                afs::create_dir(dir, 0o755)?;
            }
            afs::write_atomic(path, contents, PUBLIC_FILE)?;
        }
        Ok(())
    })();
    if result.is_err() {
        for backup in undo.iter().rev() {
            if let Err(e) = backup.restore() {
                error!("[dkim:{}] putting back {e}", dkim.name);
            }
        }
    }
    result
}

/// A file as it was before rollover replaced it, to put back on failure.
struct Backup {
    path: PathBuf,
    /// Contents, mode, owner and group; `None` when there was no file.
    was: Option<(Vec<u8>, u32, u32, u32)>,
}

impl Backup {
    fn take(path: &Path) -> Result<Backup, StepError> {
        let was = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StepError::read(path)(e)),
            Ok(meta) => {
                let contents = std::fs::read(path).map_err(StepError::read(path))?;
                Some((contents, meta.mode() & 0o7777, meta.uid(), meta.gid()))
            }
        };
        Ok(Backup {
            path: path.to_path_buf(),
            was,
        })
    }

    fn restore(&self) -> Result<(), afs::FsError> {
        match &self.was {
            None => afs::remove_file(&self.path),
            Some((contents, mode, uid, gid)) => {
                afs::write_atomic_owned(&self.path, contents, *mode, Some(*uid), Some(*gid))
            }
        }
    }
}

/// Deletes a drained key (its records are gone) and forgets it.
///
/// # Errors
/// The file could not be removed (a later run retries).
pub async fn delete(
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
    Ok(())
}
