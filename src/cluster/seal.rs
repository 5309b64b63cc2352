//! Private material at rest in the shared store (docs/cluster.md, "Encryption
//! at rest"): AES-256-GCM with a fresh random nonce per value and the value's
//! key path as associated data, so a value moved to another key does not
//! decrypt. The only module that knows the AEAD in use.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The prefix of a sealed value (format version 1).
const TAG: &str = "cdm1:";

/// The key from `storesecretfile`.
pub(crate) struct SealKey {
    key: LessSafeKey,
    file: PathBuf,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.file.display())
    }
}

impl SealKey {
    /// Reads the base64 text of 32 random bytes from `file`.
    ///
    /// # Errors
    /// When the file cannot be read or does not hold 32 bytes in base64.
    pub(crate) fn read(file: &Path) -> Result<SealKey, String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("storesecretfile {}: {e}", file.display()))?;
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            log::warn!(
                "storesecretfile {} is readable by others; restrict it with chmod 600",
                file.display()
            );
        }
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            format!(
                "storesecretfile {}: not base64 (make one with: head -c 32 /dev/urandom | base64)",
                file.display()
            )
        })?;
        Self::from_bytes(&bytes, file)
    }

    fn from_bytes(bytes: &[u8], file: &Path) -> Result<SealKey, String> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| {
            format!(
                "storesecretfile {}: holds {} bytes, 32 are needed (head -c 32 /dev/urandom | base64)",
                file.display(),
                bytes.len()
            )
        })?;
        Ok(SealKey {
            key: LessSafeKey::new(unbound),
            file: file.to_path_buf(),
        })
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Encrypts `plain` for the key path `path`.
    ///
    /// # Errors
    /// When the system's random source fails.
    pub(crate) fn seal(&self, path: &str, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system's random source failed".to_string())?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(path.as_bytes()),
                &mut data,
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{TAG}{}", STANDARD.encode(out)))
    }

    /// Decrypts the value stored at `path`.
    ///
    /// # Errors
    /// When the value is not sealed, or not with this key for this path.
    pub(crate) fn open(&self, path: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let wrong = || {
            format!(
                "the value of {path} does not decrypt with the key in storesecretfile {} (another key, or not written by cryptdomainmgr)",
                self.file.display()
            )
        };
        let text = std::str::from_utf8(sealed).map_err(|_| wrong())?;
        let body = text.strip_prefix(TAG).ok_or_else(wrong)?;
        let raw = STANDARD.decode(body).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(path.as_bytes()), &mut data)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::from_bytes(&[byte; 32], Path::new("/k")).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces_bound_to_the_path() {
        let k = key(1);
        let a = k.seal("files/x", b"secret").unwrap();
        let b = k.seal("files/x", b"secret").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("secret"));
        assert_eq!(k.open("files/x", a.as_bytes()).unwrap(), b"secret");
        assert!(
            k.open("files/y", a.as_bytes()).is_err(),
            "bound to the path"
        );
        let err = key(2).open("files/x", a.as_bytes()).unwrap_err();
        assert!(err.contains("does not decrypt"), "{err}");
        assert!(k.open("files/x", b"plain").is_err());
    }

    #[test]
    fn a_short_key_is_refused_with_advice() {
        let err = SealKey::from_bytes(&[0; 16], Path::new("/k")).unwrap_err();
        assert!(err.contains("16 bytes, 32 are needed"), "{err}");
    }
}
