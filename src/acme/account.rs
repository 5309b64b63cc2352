//! ACME accounts (RFC 8555 §7.3): one per CA directory URL, its credentials kept
//! as JSON (mode 0600) in the state directory and reused on later runs. A new
//! account agrees to the terms of service, carries the contact e-mail and, when
//! configured, an external account binding (§7.3.4).

use std::path::{Path, PathBuf};

use base64::Engine;
use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};
use serde::{Deserialize, Serialize};

use crate::acme::error::{AcmeError, Limits, retry};
use crate::acme::http::AcmeHttp;
use crate::apply::fs::{self, PRIVATE_DIR, PRIVATE_FILE};
use crate::material::cert::hex;
use crate::secret::Secret;

/// External account binding: the key id and the base64url HMAC key from the CA.
#[derive(Clone, Debug)]
pub struct Eab {
    pub kid: String,
    pub hmac_key: Secret,
}

#[derive(Serialize, Deserialize)]
struct AccountFile {
    directory: String,
    contact: Option<String>,
    credentials: AccountCredentials,
}

/// Where the account for `directory_url` is kept inside `dir`. The file name is
/// derived from a hash of the URL, so nothing the CA sends becomes a path.
pub(crate) fn account_file(dir: &Path, directory_url: &str) -> PathBuf {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, directory_url.as_bytes());
    dir.join(format!("acme-account-{}.json", &hex(digest.as_ref())[..16]))
}

/// The URL of the account stored in `dir` for the CA at `directory_url`
/// (RFC 8657 `accounturi`), `None` when no account is stored yet. Read from
/// the account file, without asking the CA.
///
/// # Errors
/// When the file cannot be read or holds no usable account URL.
pub(crate) fn stored_account_url(
    dir: &Path,
    directory_url: &str,
) -> Result<Option<String>, String> {
    let path = account_file(dir, directory_url);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a valid account file: {e}", path.display()))?;
    let url = doc
        .get("credentials")
        .and_then(|c| c.get("id"))
        .and_then(|id| id.as_str())
        .unwrap_or_default();
    // The URL goes into a CAA value: a plain http(s) URL, nothing that ends
    // or quotes a parameter.
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(|c: char| c == ';' || c == '"' || c.is_whitespace() || c.is_control());
    if plain {
        Ok(Some(url.to_string()))
    } else {
        Err(format!("{}: holds no usable account URL", path.display()))
    }
}

fn contacts(email: Option<&str>) -> Vec<String> {
    email
        .filter(|e| !e.is_empty())
        .map(|e| vec![format!("mailto:{e}")])
        .unwrap_or_default()
}

/// Loads the account for `directory_url` from `dir`, or registers a new one and
/// stores it. Returns the account and whether it was newly created.
pub(crate) async fn load_or_create(
    http: &AcmeHttp,
    limits: &Limits,
    dir: &Path,
    directory_url: &str,
    email: Option<&str>,
    eab: Option<&Eab>,
) -> Result<(Account, bool), AcmeError> {
    let path = account_file(dir, directory_url);
    let file_error = |reason: String| AcmeError::AccountFile {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: AccountFile = serde_json::from_slice(&bytes)
                .map_err(|e| file_error(format!("not a valid account file: {e}")))?;
            if stored.directory != directory_url {
                return Err(file_error(format!(
                    "belongs to {}, not {directory_url}",
                    stored.directory
                )));
            }
            let old_contact = stored.contact.clone();
            let account = retry!(
                http,
                limits,
                "load the ACME account",
                async {
                    // Credentials are not `Clone`: read them afresh for each attempt.
                    let credentials = serde_json::from_slice::<AccountFile>(&bytes)?.credentials;
                    Account::builder_with_http(Box::new(http.clone()))
                        .from_credentials(credentials)
                        .await
                }
                .await
            )?;
            if old_contact.as_deref() != email {
                let wanted = contacts(email);
                let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
                retry!(
                    http,
                    limits,
                    "update the account contact",
                    account.update_contacts(&refs).await
                )?;
                store(&path, dir, directory_url, email, stored.credentials)?;
            }
            Ok((account, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let eab_key = eab.map(eab_key).transpose()?;
            let wanted = contacts(email);
            let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let new = NewAccount {
                contact: &refs,
                terms_of_service_agreed: true,
                only_return_existing: false,
            };
            let (account, credentials) = retry!(
                http,
                limits,
                "create an ACME account",
                Account::builder_with_http(Box::new(http.clone()))
                    .create(&new, directory_url.to_string(), eab_key.as_ref())
                    .await
            )?;
            store(&path, dir, directory_url, email, credentials)?;
            log::info!("created ACME account {} at {directory_url}", account.id());
            Ok((account, true))
        }
        Err(e) => Err(file_error(e.to_string())),
    }
}

fn store(
    path: &Path,
    dir: &Path,
    directory_url: &str,
    email: Option<&str>,
    credentials: AccountCredentials,
) -> Result<(), AcmeError> {
    let file = AccountFile {
        directory: directory_url.to_string(),
        contact: email.map(str::to_string),
        credentials,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| AcmeError::AccountFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    fs::create_dir(dir, PRIVATE_DIR)?;
    fs::write_atomic(path, &json, PRIVATE_FILE)?;
    Ok(())
}

/// Decodes the EAB HMAC key (base64url, padded or not). The error never shows it.
fn eab_key(eab: &Eab) -> Result<ExternalAccountKey, AcmeError> {
    let text = eab.hmac_key.expose().trim().trim_end_matches('=');
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| AcmeError::Config("eabhmackey is not valid base64url".into()))?;
    if eab.kid.is_empty() || key.is_empty() {
        return Err(AcmeError::Config(
            "eabkid and eabhmackey must both be set".into(),
        ));
    }
    Ok(ExternalAccountKey::new(eab.kid.clone(), &key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_file_name_depends_only_on_the_url_hash() {
        let a = account_file(Path::new("/s"), "https://ca.test/dir");
        let b = account_file(Path::new("/s"), "https://ca.test/dir2");
        assert_ne!(a, b);
        assert!(a.starts_with("/s"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("acme-account-") && name.ends_with(".json"));
    }

    #[test]
    fn the_account_url_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://ca.test/dir";
        assert_eq!(stored_account_url(dir.path(), url), Ok(None));
        let write = |id: &str| {
            let json = format!(
                r#"{{"directory":"{url}","contact":null,"credentials":{{"id":"{id}","key_pkcs8":"x"}}}}"#
            );
            std::fs::write(account_file(dir.path(), url), json).unwrap();
        };
        write("https://ca.test/acct/17");
        assert_eq!(
            stored_account_url(dir.path(), url),
            Ok(Some("https://ca.test/acct/17".into()))
        );
        write("https://ca.test/acct/17; validationmethods=http-01");
        assert!(stored_account_url(dir.path(), url).is_err());
    }

    #[test]
    fn a_bad_eab_key_is_rejected_without_showing_it() {
        let eab = Eab {
            kid: "kid".into(),
            hmac_key: Secret::new("not*base64!"),
        };
        let err = eab_key(&eab).err().unwrap().to_string();
        assert!(!err.contains("not*base64!"), "{err}");
        let ok = Eab {
            kid: "kid".into(),
            hmac_key: Secret::new("c2VjcmV0LWtleQ=="),
        };
        assert!(eab_key(&ok).is_ok());
    }
}
