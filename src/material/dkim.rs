//! DKIM signing keys and their DNS records (RFC 6376 §3.6.1, RFC 8463).
//!
//! Keys are generated natively and written as PKCS#8 PEM (`PRIVATE KEY`), the
//! form rspamd, OpenDKIM and dkimpy read. The record is `v=DKIM1; k=rsa; p=` and
//! the base64 SubjectPublicKeyInfo for RSA, `k=ed25519; p=` and the raw 32-byte
//! public key for Ed25519 (RFC 8463 §4.2). Long records are split into strings
//! of at most 255 bytes when sent (see [`RData::txt_strings`]).
//!
//! [`RData::txt_strings`]: crate::dns::record::RData::txt_strings

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::dns::record::{Name, NameError};
use crate::material::cert::KeyPem;
use crate::material::{der, rsa};

/// The smallest RSA key accepted (RFC 8301 §3.2: signers MUST use at least 1024).
pub(crate) const MIN_RSA_BITS: u32 = 1024;
/// RSA keys below this size get a warning (RFC 8301 §3.2: SHOULD use 2048).
pub(crate) const RECOMMENDED_RSA_BITS: u32 = 2048;
/// The largest RSA key accepted (RFC 8301 §3.2: verifiers need handle no more).
pub(crate) const MAX_RSA_BITS: u32 = 4096;

/// The kind of DKIM key (`keytype` and `keysize` of `[dkim]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimKeyType {
    Rsa(u32),
    Ed25519,
}

impl DkimKeyType {
    /// The record's `k=` tag.
    pub fn tag(self) -> &'static str {
        match self {
            DkimKeyType::Rsa(_) => "rsa",
            DkimKeyType::Ed25519 => "ed25519",
        }
    }
}

impl std::fmt::Display for DkimKeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DkimKeyType::Rsa(bits) => write!(f, "rsa-{bits}"),
            DkimKeyType::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// Why a key could not be made or read. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("RSA key size {0} is not supported (use {MIN_RSA_BITS} to {MAX_RSA_BITS} bits)")]
    KeySize(u32),
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error("not a PKCS#8 PEM RSA or Ed25519 private key")]
    BadKey,
}

/// A new key: the private key as PEM and the TXT record data that publishes it.
#[derive(Clone, Debug)]
pub struct DkimKey {
    pub key_type: DkimKeyType,
    pub pem: KeyPem,
    pub txt: String,
}

/// Generates a key of `kind`.
///
/// # Errors
/// On an RSA size outside the supported range, or when the random source fails.
pub fn generate(kind: DkimKeyType) -> Result<DkimKey, DkimError> {
    match kind {
        DkimKeyType::Rsa(bits) => {
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(DkimError::KeySize(bits));
            }
            let pkcs8 = rsa::generate_pkcs8(bits).map_err(DkimError::Generation)?;
            let (_, spki) = rsa::public_key(&pkcs8)
                .ok_or_else(|| DkimError::Generation("the new key cannot be read".into()))?;
            Ok(DkimKey {
                key_type: kind,
                pem: KeyPem::new(der::pem("PRIVATE KEY", &pkcs8)),
                txt: rsa_txt(&spki),
            })
        }
        DkimKeyType::Ed25519 => {
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed)
                .map_err(|_| DkimError::Generation("the system random source failed".into()))?;
            let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
                .map_err(|e| DkimError::Generation(e.to_string()))?;
            Ok(DkimKey {
                key_type: kind,
                pem: KeyPem::new(der::pem("PRIVATE KEY", &ed25519_pkcs8(&seed))),
                txt: ed25519_txt(pair.public_key().as_ref()),
            })
        }
    }
}

/// Reads a PEM key written by [`generate`] and returns its type and record data.
///
/// # Errors
/// [`DkimError::BadKey`] when the text is not a PKCS#8 RSA or Ed25519 key.
pub fn from_pem(pem: &str) -> Result<DkimKey, DkimError> {
    let pkcs8 = der::from_pem(pem, "PRIVATE KEY").ok_or(DkimError::BadKey)?;
    let (key_type, txt) = if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8) {
        (
            DkimKeyType::Ed25519,
            ed25519_txt(pair.public_key().as_ref()),
        )
    } else {
        let (bits, spki) = rsa::public_key(&pkcs8).ok_or(DkimError::BadKey)?;
        (DkimKeyType::Rsa(bits), rsa_txt(&spki))
    };
    Ok(DkimKey {
        key_type,
        pem: KeyPem::new(pem.to_string()),
        txt,
    })
}

/// The selector of a key made at `unix` seconds: `KEYBASENAME_UNIXTIME`, the
/// original's form.
pub(crate) fn selector(base: &str, unix: i64) -> String {
    format!("{base}_{unix}")
}

/// Where the record of `selector` lives for `domain`: `SELECTOR._domainkey.DOMAIN`.
///
/// # Errors
/// When the resulting name is not a valid domain name (too long).
pub(crate) fn record_name(selector: &str, domain: &Name) -> Result<Name, NameError> {
    domain.prepend(&format!("{selector}._domainkey"))
}

/// True when `text` can be a selector prefix: DNS label characters, so that
/// `BASE_UNIXTIME` is one label of at most 63 characters.
pub(crate) fn valid_base_name(text: &str) -> bool {
    // The suffix is `_` and a ten-digit Unix time.
    !text.is_empty()
        && text.len() <= 63 - 11
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn rsa_txt(spki: &[u8]) -> String {
    format!("v=DKIM1; k=rsa; p={}", BASE64.encode(spki))
}

fn ed25519_txt(public: &[u8]) -> String {
    format!("v=DKIM1; k=ed25519; p={}", BASE64.encode(public))
}

/// PKCS#8 v1 `PrivateKeyInfo` of an Ed25519 seed (RFC 8410 §7): the fixed
/// header (version 0, algorithm id-Ed25519, an OCTET STRING holding the
/// 32-byte OCTET STRING seed) followed by the seed. Version 1 without the
/// public key is the form every reader accepts.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const HEADER: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = HEADER.to_vec();
    der.extend_from_slice(seed);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p_of(txt: &str) -> Vec<u8> {
        let p = txt.split("p=").nth(1).unwrap();
        BASE64.decode(p).unwrap()
    }

    #[test]
    fn ed25519_keys_round_trip_and_publish_the_raw_key() {
        let key = generate(DkimKeyType::Ed25519).unwrap();
        assert!(
            key.pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(key.txt.starts_with("v=DKIM1; k=ed25519; p="));
        assert_eq!(p_of(&key.txt).len(), 32);
        let read = from_pem(key.pem.expose()).unwrap();
        assert_eq!(read.key_type, DkimKeyType::Ed25519);
        assert_eq!(read.txt, key.txt);
    }

    #[test]
    fn rsa_keys_round_trip_and_publish_the_spki() {
        let key = generate(DkimKeyType::Rsa(1024)).unwrap();
        assert!(key.txt.starts_with("v=DKIM1; k=rsa; p=MI"));
        // A DER SubjectPublicKeyInfo with the rsaEncryption OID.
        let spki = p_of(&key.txt);
        let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(spki.windows(oid.len()).any(|w| w == oid));
        let read = from_pem(key.pem.expose()).unwrap();
        assert_eq!(read.key_type, DkimKeyType::Rsa(1024));
        assert_eq!(read.txt, key.txt);
    }

    #[test]
    fn sizes_outside_the_range_and_garbage_are_refused() {
        assert!(matches!(
            generate(DkimKeyType::Rsa(512)),
            Err(DkimError::KeySize(512))
        ));
        assert!(matches!(
            generate(DkimKeyType::Rsa(8192)),
            Err(DkimError::KeySize(8192))
        ));
        assert!(matches!(from_pem("nonsense"), Err(DkimError::BadKey)));
        let cert_like = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(from_pem(cert_like), Err(DkimError::BadKey)));
    }

    #[test]
    fn selectors_and_record_names() {
        assert_eq!(selector("mail", 1_700_000_000), "mail_1700000000");
        let domain = Name::parse("Example.COM").unwrap();
        assert_eq!(
            record_name("mail_1700000000", &domain).unwrap().as_str(),
            "mail_1700000000._domainkey.example.com"
        );
        assert!(valid_base_name("mail-2"));
        assert!(!valid_base_name(""));
        assert!(!valid_base_name("a.b"));
        assert!(!valid_base_name(&"x".repeat(53)));
    }
}
