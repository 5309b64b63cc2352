//! ACME client (RFC 8555) on `instant-acme`, behind our own HTTP client
//! ([`http`]: `cacert`, `Retry-After`, size caps), with accounts stored per CA
//! ([`account`], §7.3), DNS-01 issuance and order resumption ([`order`], §7.4,
//! §8.4) and typed errors with bounded retries ([`error`], §6.5–6.7).
//!
//! No phase logic lives here: the caller decides when to issue, stores the
//! order URL and the key, and implements [`Dns01`] on its DNS providers.

pub(crate) mod account;
pub(crate) mod ari;
pub mod error;
pub mod http;
pub(crate) mod order;

use std::path::PathBuf;

pub use account::Eab;
pub use error::{AcmeError, Dns01Error, Limits};
pub use instant_acme::OrderStatus;
pub use order::{ChallengeRecord, Challenges, Dns01, Issued, PendingOrder};

use crate::acme::http::AcmeHttp;

/// Let's Encrypt's production directory.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory.
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Everything needed to talk to one CA with one account.
#[derive(Clone, Debug)]
pub struct AcmeConfig {
    /// `ca` of `[cert]`: a directory URL, `letsencrypt` or `letsencrypt-staging`.
    pub ca: String,
    pub email: Option<String>,
    pub eab: Option<Eab>,
    /// PEM root to trust for the CA's own TLS.
    pub cacert: Option<PathBuf>,
    /// Where the account credentials are kept (the state directory).
    pub account_dir: PathBuf,
    pub limits: Limits,
}

/// Resolves `ca` to a directory URL.
///
/// # Errors
/// When `ca` is neither a known name nor an `https://` (or, for tests on
/// loopback, `http://`) URL.
pub fn directory_url(ca: &str) -> Result<String, AcmeError> {
    match ca.trim() {
        "" | "letsencrypt" => Ok(LETSENCRYPT.into()),
        "letsencrypt-staging" => Ok(LETSENCRYPT_STAGING.into()),
        url if url.starts_with("https://") || url.starts_with("http://") => {
            url.parse::<::http::Uri>()
                .map_err(|e| AcmeError::Config(format!("ca {url:?} is not a valid URL: {e}")))?;
            Ok(url.to_string())
        }
        other => Err(AcmeError::Config(format!(
            "ca {other:?} is neither a URL nor letsencrypt / letsencrypt-staging"
        ))),
    }
}

/// A CA connection with a loaded (or newly created) account.
pub struct AcmeClient {
    pub(crate) account: instant_acme::Account,
    pub(crate) http: AcmeHttp,
    pub(crate) limits: Limits,
    directory_url: String,
    account_created: bool,
}

impl AcmeClient {
    /// Connects to the CA and loads the stored account for it, creating and
    /// storing one (0600) when there is none.
    ///
    /// # Errors
    /// Unreachable CA, bad configuration, account file problems, CA refusals.
    pub async fn connect(config: &AcmeConfig) -> Result<AcmeClient, AcmeError> {
        let directory_url = directory_url(&config.ca)?;
        let http = AcmeHttp::new(config.cacert.as_deref())
            .map_err(|e| AcmeError::Config(e.to_string()))?;
        let (account, account_created) = account::load_or_create(
            &http,
            &config.limits,
            &config.account_dir,
            &directory_url,
            config.email.as_deref(),
            config.eab.as_ref(),
        )
        .await?;
        Ok(AcmeClient {
            account,
            http,
            limits: config.limits,
            directory_url,
            account_created,
        })
    }

    /// Whether [`AcmeClient::connect`] registered a new account.
    pub fn account_created(&self) -> bool {
        self.account_created
    }

    /// The account URL at the CA.
    pub fn account_id(&self) -> &str {
        self.account.id()
    }

    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The CAA issuer domain of this CA (RFC 8659 with RFC 8555 §9.7.6
    /// `caaIdentities`): `letsencrypt.org` for Let's Encrypt, else the first of
    /// the directory's `meta.caaIdentities`, if it is a plain domain name.
    pub async fn caa_identity(&self) -> Option<String> {
        if let Some(id) = known_caa_identity(&self.directory_url) {
            return Some(id);
        }
        let (status, body) = self.http.get(&self.directory_url).await.ok()?;
        if status != 200 {
            return None;
        }
        caa_identity_from_directory(&body)
    }
}

/// The CAA issuer domain of the CA at `directory_url`, for `caa = auto`, without
/// an account: known for Let's Encrypt, else read from the directory.
///
/// # Errors
/// When the directory cannot be fetched or names no plain `caaIdentities`.
pub async fn caa_identity_of(
    directory_url: &str,
    cacert: Option<&std::path::Path>,
) -> Result<String, AcmeError> {
    if let Some(id) = known_caa_identity(directory_url) {
        return Ok(id);
    }
    let http = AcmeHttp::new(cacert).map_err(|e| AcmeError::Config(e.to_string()))?;
    let (status, body) = http
        .get(directory_url)
        .await
        .map_err(|e| AcmeError::Unreachable {
            url: directory_url.to_string(),
            reason: e.reason,
        })?;
    if status != 200 {
        return Err(AcmeError::Protocol(format!(
            "the directory {directory_url} answered HTTP {status}"
        )));
    }
    caa_identity_from_directory(&body).ok_or_else(|| {
        AcmeError::Protocol(format!(
            "the directory {directory_url} names no caaIdentities; set caa = 0 issue <ca domain> instead of auto"
        ))
    })
}

fn known_caa_identity(directory_url: &str) -> Option<String> {
    let uri: ::http::Uri = directory_url.parse().ok()?;
    let host = uri.host()?.to_ascii_lowercase();
    (host == "letsencrypt.org" || host.ends_with(".letsencrypt.org"))
        .then(|| "letsencrypt.org".to_string())
}

/// `meta.caaIdentities[0]` of a directory document, if it is a plain domain name.
pub fn caa_identity_from_directory(directory_json: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(directory_json).ok()?;
    let first = doc.get("meta")?.get("caaIdentities")?.get(0)?.as_str()?;
    let plain = !first.is_empty()
        && first.len() <= 253
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plain.then(|| first.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_names_resolve() {
        assert_eq!(directory_url("letsencrypt").unwrap(), LETSENCRYPT);
        assert_eq!(
            directory_url("letsencrypt-staging").unwrap(),
            LETSENCRYPT_STAGING
        );
        assert_eq!(
            directory_url("https://127.0.0.1:14000/dir").unwrap(),
            "https://127.0.0.1:14000/dir"
        );
        assert!(directory_url("zerossl").is_err());
    }

    #[test]
    fn caa_identities() {
        assert_eq!(
            known_caa_identity(LETSENCRYPT_STAGING).as_deref(),
            Some("letsencrypt.org")
        );
        assert_eq!(known_caa_identity("https://ca.test/dir"), None);
        assert_eq!(
            caa_identity_from_directory(
                br#"{"meta":{"caaIdentities":["Pebble.Letsencrypt.org"]}}"#
            )
            .as_deref(),
            Some("pebble.letsencrypt.org")
        );
        assert_eq!(
            caa_identity_from_directory(br#"{"meta":{"caaIdentities":["a b; rm -rf /"]}}"#),
            None
        );
        assert_eq!(caa_identity_from_directory(b"{}"), None);
    }
}
