//! The only module that writes files. Every file is replaced atomically: a
//! temporary file is created next to the target (`O_EXCL | O_NOFOLLOW`, final mode
//! at creation), written, fsynced and renamed over the target, then the directory
//! is fsynced. A symlink at the target is refused, so a planted link cannot
//! redirect a key outside the directory it belongs in.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private keys, state and anything holding a secret.
pub(crate) const PRIVATE_FILE: u32 = 0o600;
/// Mode of public material (certificates, chains, DH parameters, DNS-facing config).
pub(crate) const PUBLIC_FILE: u32 = 0o644;
/// Mode of directories holding private material.
pub(crate) const PRIVATE_DIR: u32 = 0o700;

/// A file operation that failed, with the path it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct FsError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn fs_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` and its missing parents with `mode`; an existing directory keeps
/// its mode unless it is wider than `mode` for a private directory, in which case
/// it is narrowed.
///
/// # Errors
/// When a component cannot be created or is not a directory (a symlink counts as
/// not a directory for the last component).
pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<(), FsError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if mode == PRIVATE_DIR && meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                    .map_err(fs_error("narrowing the mode of", dir))?;
            }
            Ok(())
        }
        Ok(_) => Err(FsError {
            action: "using as a directory",
            path: dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "not a directory (or a symlink)",
            ),
        }),
        Err(_) => DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(fs_error("creating directory", dir)),
    }
}

/// Atomically replaces `path` with `contents`, created with `mode`.
///
/// # Errors
/// When the target is a symlink, or writing, syncing or renaming fails. The
/// target is then unchanged and no temporary file is left behind.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_as(path, contents, mode, Owner::Unchanged)
}

/// [`write_atomic`], with the file handed to `owner` and `group` (ids) before it
/// is renamed into place, so it never appears with the wrong owner (a service
/// reading a 0600 key must own it).
///
/// # Errors
/// As [`write_atomic`]; also when the ownership cannot be changed.
pub(crate) fn write_atomic_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
) -> Result<(), FsError> {
    write_atomic_as(path, contents, mode, Owner::Required(owner, group))
}

/// Atomically replaces the existing file `path` with `contents`, keeping its
/// mode and, where permitted, its owner and group (a file another program
/// reads, such as a zone file, stays readable to it).
///
/// # Errors
/// As [`write_atomic`], and when `path` does not exist.
pub(crate) fn replace_keeping_metadata(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).map_err(fs_error("inspecting", path))?;
    write_atomic_as(
        path,
        contents,
        meta.mode() & 0o777,
        Owner::IfPermitted(meta.uid(), meta.gid()),
    )
}

/// Who a written file belongs to.
enum Owner {
    /// Whoever writes it.
    Unchanged,
    /// These ids, or the write fails.
    Required(Option<u32>, Option<u32>),
    /// These ids where permitted (only root may give a file away).
    IfPermitted(u32, u32),
}

fn write_atomic_as(path: &Path, contents: &[u8], mode: u32, owner: Owner) -> Result<(), FsError> {
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        return Err(FsError {
            action: "refusing to replace symlink",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the target is a symlink"),
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (tmp_path, mut file) = create_temp(dir, path, mode)?;
    let result = (|| {
        file.write_all(contents)
            .map_err(fs_error("writing", &tmp_path))?;
        // The umask may have narrowed the mode at creation; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(fs_error("setting the mode of", &tmp_path))?;
        match owner {
            Owner::Unchanged => {}
            Owner::Required(uid, gid) => std::os::unix::fs::fchown(&file, uid, gid)
                .map_err(fs_error("changing the owner of", &tmp_path))?,
            Owner::IfPermitted(uid, gid) => {
                // Otherwise the file becomes ours, as with any editor that
                // replaces files.
                let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
            }
        }
        file.sync_all().map_err(fs_error("syncing", &tmp_path))?;
        fs::rename(&tmp_path, path).map_err(fs_error("renaming into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result?;
    sync_dir(dir)
}

/// Creates a fresh temporary file beside `target`; the name is unpredictable and
/// creation is exclusive, so a planted file or link at that name is never used.
fn create_temp(dir: &Path, target: &Path, mode: u32) -> Result<(PathBuf, File), FsError> {
    for attempt in 0u32..16 {
        let tmp = temp_name(dir, target, "tmp", attempt);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fs_error("creating a temporary file in", dir)(e)),
        }
    }
    Err(no_free_name(dir))
}

/// `dir/.<target name>.<pid>.<random>.<ext>`: beside the target (so a rename is
/// atomic), hidden, and not guessable.
fn temp_name(dir: &Path, target: &Path, ext: &str, attempt: u32) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_else(|| "file".as_ref()));
    name.push(format!(
        ".{}.{}.{ext}",
        std::process::id(),
        random_suffix(attempt)
    ));
    dir.join(name)
}

fn no_free_name(dir: &Path) -> FsError {
    FsError {
        action: "creating a temporary name in",
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name"),
    }
}

fn random_suffix(attempt: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    hasher.finish()
}

/// Fsyncs a directory so a rename in it survives a power loss.
///
/// # Errors
/// When the directory cannot be opened or synced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fs_error("syncing directory", dir))
}

/// Hands `dir` (not followed if a symlink) to `owner` and `group` (ids).
///
/// # Errors
/// When the ownership cannot be changed.
pub(crate) fn chown_dir(dir: &Path, owner: Option<u32>, group: Option<u32>) -> Result<(), FsError> {
    std::os::unix::fs::lchown(dir, owner, group).map_err(fs_error("changing the owner of", dir))
}

/// Removes a file if it exists; a missing file is not an error.
///
/// # Errors
/// When removal fails for another reason.
pub(crate) fn remove_file(path: &Path) -> Result<(), FsError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fs_error("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Points the symlink `link` at `target` atomically: a new link is created
/// beside it and renamed over it (a regular file at `link` is replaced too).
///
/// # Errors
/// When the link cannot be created or renamed.
pub(crate) fn swap_symlink(link: &Path, target: &Path) -> Result<(), FsError> {
    let dir = link
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for attempt in 0u32..16 {
        let tmp = temp_name(dir, link, "lnk", attempt);
        match std::os::unix::fs::symlink(target, &tmp) {
            Ok(()) => {
                if let Err(e) = fs::rename(&tmp, link) {
                    let _ = fs::remove_file(&tmp);
                    return Err(fs_error("renaming the symlink into place", link)(e));
                }
                return sync_dir(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fs_error("creating a symlink in", dir)(e)),
        }
    }
    Err(no_free_name(dir))
}

/// Removes a directory tree this program created (symlinks inside are removed,
/// never followed). A missing directory is not an error.
///
/// # Errors
/// When `dir` is a symlink or removal fails.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), FsError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fs_error("inspecting", dir)(e)),
        Ok(meta) if !meta.is_dir() => Err(FsError {
            action: "removing directory",
            path: dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory (or a symlink)",
            ),
        }),
        Ok(_) => fs::remove_dir_all(dir).map_err(fs_error("removing directory", dir)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"one", PRIVATE_FILE).unwrap();
        write_atomic(&path, b"two", PRIVATE_FILE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Only the target remains: no temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn owned_writes_set_the_owner_before_the_rename() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dkim.key");
        let uid = fs::metadata(dir.path()).unwrap().uid();
        let gid = fs::metadata(dir.path()).unwrap().gid();
        write_atomic_owned(&path, b"k", PRIVATE_FILE, Some(uid), Some(gid)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        // Giving a file away needs root; as another user it fails and the
        // target is left alone.
        if uid != 0 {
            assert!(write_atomic_owned(&path, b"x", PRIVATE_FILE, Some(0), None).is_err());
            assert_eq!(fs::read(&path).unwrap(), b"k");
        }
    }

    #[test]
    fn replacing_keeps_mode_and_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.zone");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let before = fs::metadata(&path).unwrap();
        replace_keeping_metadata(&path, b"new").unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(after.permissions().mode() & 0o777, 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        assert!(replace_keeping_metadata(&dir.path().join("missing"), b"x").is_err());
    }

    #[test]
    fn a_wide_existing_file_is_replaced_narrow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", PRIVATE_FILE).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn refuses_a_symlinked_target_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let link = dir.path().join("cert.pem");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = write_atomic(&link, b"evil", PUBLIC_FILE).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
    }

    #[test]
    fn swapping_a_symlink_replaces_links_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("current");
        swap_symlink(&link, Path::new("v1")).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("v1"));
        swap_symlink(&link, Path::new("v2")).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("v2"));
        let file = dir.path().join("cert.pem");
        fs::write(&file, b"old").unwrap();
        swap_symlink(&file, Path::new("v2/cert.pem")).unwrap();
        assert!(
            fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn remove_tree_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(remove_tree(&link).is_err());
        assert!(outside.join("keep").exists());
        remove_tree(&outside).unwrap();
        assert!(!outside.exists());
        remove_tree(&outside).unwrap();
    }

    #[test]
    fn private_directories_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&state, PRIVATE_DIR).unwrap();
        assert_eq!(
            fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
