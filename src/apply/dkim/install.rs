//! Installing a DKIM key for its signer: the signing configuration that names
//! the key's own file with its selector (rspamd's `dkim_signing.conf`,
//! OpenDKIM's KeyTable and SigningTable), and writing key, configuration and
//! the `keyname` link in that order, putting back what was written when a step
//! fails.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use log::error;

use crate::apply::StepError;
use crate::apply::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE};
use crate::config::dkim::{DkimHandler, DkimSection};
use crate::config::model::Config;
use crate::dns::record::Name;
use crate::material::dkim_signing::{
    OpenDkimEntry, RSPAMD_TEMPLATE, TemplateValues, opendkim_key_table, opendkim_signing_table,
    render_template,
};
use crate::plan::dkim::{dkim_state as section_state, signing_file};
use crate::state::State;

/// The signing configuration files that name `selector` with its key `file`:
/// path and contents, in the order they are written.
pub(crate) fn signing_files(
    config: &Config,
    dkim: &DkimSection,
    selector: &str,
    file: &Path,
    state: &State,
) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
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
                    keyfile: file,
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
            // Every OpenDKIM section sharing these tables is signed for: this
            // one with its new selector, the others with their current one.
            let mut signing: Vec<Listed<'_>> =
                vec![(dkim, selector.to_string(), file.to_path_buf())];
            for other in &config.dkims {
                let shares = matches!(&other.handler, DkimHandler::OpenDkim { key_table: k, .. } if k == key_table);
                if !shares || other.name == dkim.name {
                    continue;
                }
                if let Some(current) = section_state(state, &other.name).current {
                    let file = signing_file(other, &current);
                    signing.push((other, current.selector, file));
                }
            }
            // The KeyTable also keeps this section's current key: the
            // SigningTable that names it stays valid until it is replaced.
            let mut keys = signing.clone();
            if let Some(current) = section_state(state, &dkim.name).current
                && current.selector != selector
            {
                let file = signing_file(dkim, &current);
                keys.push((dkim, current.selector, file));
            }
            let (keys, signing) = (table_rows(&keys), table_rows(&signing));
            // KeyTable first: the new SigningTable only names keys it lists.
            Ok(vec![
                (
                    key_table.clone(),
                    opendkim_key_table(&table_entries(&keys))?.into_bytes(),
                ),
                (
                    signing_table.clone(),
                    opendkim_signing_table(&table_entries(&signing)).into_bytes(),
                ),
            ])
        }
    }
}

/// A section's key in an OpenDKIM table: selector and key file.
type Listed<'a> = (&'a DkimSection, String, PathBuf);

/// One table row (domain, selector, key file) per domain of each listed key.
fn table_rows(listed: &[Listed<'_>]) -> Vec<(Name, String, PathBuf)> {
    listed
        .iter()
        .flat_map(|(section, selector, file)| {
            section
                .domains
                .iter()
                .map(|domain| (domain.clone(), selector.clone(), file.clone()))
        })
        .collect()
}

fn table_entries(rows: &[(Name, String, PathBuf)]) -> Vec<OpenDkimEntry<'_>> {
    rows.iter()
        .map(|(domain, selector, key_file)| OpenDkimEntry {
            domain,
            selector,
            key_file,
        })
        .collect()
}

/// Installs the key as `file`, then writes the configuration, then points the
/// `keyname` link at `link` (a name in `keylocation`). When a step fails, the
/// files already written are put back as they were.
pub(super) fn install(
    dkim: &DkimSection,
    file: &Path,
    pem: &[u8],
    files: &[(PathBuf, Vec<u8>)],
    link: Option<&Path>,
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
        undo.push(Backup::take(file)?);
        afs::write_atomic_owned(
            file,
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
        // Last: nothing after it can fail, so it needs no undo.
        if let Some(target) = link {
            link_keyname(dkim, target)?;
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

/// Points `keylocation/keyname` at `target` (atomically), unless it already does.
pub(super) fn link_keyname(dkim: &DkimSection, target: &Path) -> Result<(), StepError> {
    let link = dkim.key_path();
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    Ok(afs::swap_symlink(&link, target)?)
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
