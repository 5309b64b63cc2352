//! Certificate keys, CSRs and issued chains.
//!
//! Keys are generated locally and returned as PKCS#8 PEM (RFC 5208/5958); the
//! private key never leaves the machine. The CSR (RFC 2986) carries every name
//! as a subjectAltName, the first also as the subject CN, as RFC 8555 §7.4
//! asks of a finalize request. Issued chains are parsed with `x509-parser` to
//! learn the names, serial, validity and SHA-256 fingerprint of the leaf.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256,
};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::material::der;

/// The kind of key a certificate is made for (`keytype`/`keysize` of `[cert]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA with this modulus size: 2048, 3072 or 4096 bits.
    Rsa(u32),
    EcdsaP256,
    EcdsaP384,
}

impl KeyType {
    /// Builds a key type from the configuration values `keytype` and `keysize`.
    ///
    /// # Errors
    /// On an unknown key type or an RSA size other than 2048, 3072 or 4096.
    pub fn from_config(keytype: &str, keysize: u32) -> Result<Self, CertError> {
        match keytype {
            "rsa" if matches!(keysize, 2048 | 3072 | 4096) => Ok(KeyType::Rsa(keysize)),
            "rsa" => Err(CertError::Unsupported(format!(
                "RSA key size {keysize} (use 2048, 3072 or 4096)"
            ))),
            "ecdsa-p256" => Ok(KeyType::EcdsaP256),
            "ecdsa-p384" => Ok(KeyType::EcdsaP384),
            other => Err(CertError::Unsupported(format!(
                "key type {other:?} (use rsa, ecdsa-p256 or ecdsa-p384)"
            ))),
        }
    }
}

/// Why key, CSR or certificate handling failed. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("unsupported {0}")]
    Unsupported(String),
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("the private key could not be read (not a PKCS#8 PEM key of a supported type)")]
    BadKey,
    #[error("cannot build the certificate signing request: {0}")]
    Csr(String),
    #[error("cannot parse the certificate chain: {0}")]
    BadCertificate(String),
}

/// A private key as PKCS#8 PEM. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem(String);

impl KeyPem {
    /// Wraps a PEM string read from a file the program wrote earlier.
    pub fn new(pem: String) -> Self {
        KeyPem(pem)
    }

    /// The PEM text, for writing it to its 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPem(***)")
    }
}

/// Generates a new private key of `kind`, as PKCS#8 PEM.
///
/// # Errors
/// When the system's random source or the key generator fails.
pub fn generate_key(kind: KeyType) -> Result<KeyPem, CertError> {
    match kind {
        KeyType::Rsa(bits) => {
            if !matches!(bits, 2048 | 3072 | 4096) {
                return Err(CertError::Unsupported(format!("RSA key size {bits}")));
            }
            let pkcs8 =
                crate::material::rsa::generate_pkcs8(bits).map_err(CertError::KeyGeneration)?;
            Ok(KeyPem(der::pem("PRIVATE KEY", &pkcs8)))
        }
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
            let alg = if kind == KeyType::EcdsaP256 {
                &PKCS_ECDSA_P256_SHA256
            } else {
                &PKCS_ECDSA_P384_SHA384
            };
            let key =
                KeyPair::generate_for(alg).map_err(|e| CertError::KeyGeneration(e.to_string()))?;
            Ok(KeyPem(key.serialize_pem()))
        }
    }
}

/// Loads a PKCS#8 PEM key (RSA, ECDSA P-256 or P-384) for signing.
fn load_key(key: &KeyPem) -> Result<KeyPair, CertError> {
    if let Ok(pair) = KeyPair::from_pem(key.expose()) {
        return Ok(pair);
    }
    KeyPair::from_pkcs8_pem_and_sign_algo(key.expose(), &PKCS_RSA_SHA256)
        .map_err(|_| CertError::BadKey)
}

/// The key type of a PEM key, if it is one we make.
///
/// # Errors
/// When the key cannot be read.
pub fn key_type_of(key: &KeyPem) -> Result<&'static str, CertError> {
    let pair = load_key(key)?;
    let alg = pair.algorithm();
    Ok(if alg == &PKCS_ECDSA_P256_SHA256 {
        "ecdsa-p256"
    } else if alg == &PKCS_ECDSA_P384_SHA384 {
        "ecdsa-p384"
    } else {
        "rsa"
    })
}

/// Makes a DER CSR for `names` signed by `key`: all names as DNS SANs, the first
/// also as the subject common name.
///
/// # Errors
/// When `names` is empty, a name is not a valid DNS name, or the key is unreadable.
pub fn csr_der(key: &KeyPem, names: &[String]) -> Result<Vec<u8>, CertError> {
    let first = names
        .first()
        .ok_or_else(|| CertError::Csr("no names for the certificate".into()))?;
    let pair = load_key(key)?;
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|e| CertError::Csr(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&pair)
        .map_err(|e| CertError::Csr(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// What the program needs to know of an issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names of the leaf's subjectAltName extension, in certificate order.
    pub sans: Vec<String>,
    /// Serial number of the leaf, lower-case hex without separators.
    pub serial: String,
    /// Validity of the leaf, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the leaf's DER, lower-case hex (what `openssl x509 -fingerprint -sha256` shows).
    pub sha256_fingerprint: String,
    /// The leaf, DER.
    pub leaf_der: Vec<u8>,
    /// The issuer certificates that followed the leaf, DER, in chain order.
    pub issuers_der: Vec<Vec<u8>>,
    /// The leaf's SubjectPublicKeyInfo, DER (for TLSA selector 1).
    pub leaf_spki_der: Vec<u8>,
}

/// Splits a PEM chain into the DER of its `CERTIFICATE` blocks.
///
/// # Errors
/// When the text is not PEM or holds no certificate.
pub fn pem_chain_to_der(chain_pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut ders = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(chain_pem.as_bytes()) {
        let pem = pem.map_err(|e| CertError::BadCertificate(e.to_string()))?;
        if pem.label == "CERTIFICATE" {
            ders.push(pem.contents);
        }
    }
    if ders.is_empty() {
        return Err(CertError::BadCertificate("no CERTIFICATE block".into()));
    }
    Ok(ders)
}

/// Parses an issued chain (leaf first, as RFC 8555 §7.4.2 delivers it).
///
/// # Errors
/// When the chain is not PEM or its leaf is not a valid X.509 certificate.
pub fn parse_chain(chain_pem: &str) -> Result<CertInfo, CertError> {
    let mut ders = pem_chain_to_der(chain_pem)?.into_iter();
    let leaf_der = ders
        .next()
        .ok_or_else(|| CertError::BadCertificate("empty chain".into()))?;
    let issuers_der: Vec<Vec<u8>> = ders.collect();
    for der in &issuers_der {
        X509Certificate::from_der(der)
            .map_err(|e| CertError::BadCertificate(format!("issuer certificate: {e}")))?;
    }
    let (_, leaf) = X509Certificate::from_der(&leaf_der)
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = leaf.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                sans.push((*dns).to_string());
            }
        }
    }
    let serial = hex(leaf.tbs_certificate.raw_serial());
    let validity = leaf.validity();
    let info = CertInfo {
        sans,
        serial,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        sha256_fingerprint: hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &leaf_der).as_ref(),
        ),
        leaf_spki_der: leaf.public_key().raw.to_vec(),
        leaf_der: leaf_der.clone(),
        issuers_der,
    };
    Ok(info)
}

/// Whether `key` is the private key of the leaf of `cert_pem`.
///
/// # Errors
/// When the key or the certificate cannot be read.
pub fn key_matches_cert(key: &KeyPem, cert_pem: &str) -> Result<bool, CertError> {
    let pair = load_key(key)?;
    let ders = pem_chain_to_der(cert_pem)?;
    let leaf_der = ders
        .first()
        .ok_or_else(|| CertError::BadCertificate("empty chain".into()))?;
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    Ok(leaf.public_key().subject_public_key.data.as_ref() == pair.public_key_raw())
}

/// A private key as written by other ACME clients and key tools, as PKCS#8
/// PEM (the form the program keeps): PKCS#8 (`PRIVATE KEY`) as it is, PKCS#1
/// RSA (`RSA PRIVATE KEY`, older OpenSSL and lego) and SEC1 EC (`EC PRIVATE
/// KEY`, lego and `openssl ecparam`) converted. Other PEM blocks before the
/// key (`EC PARAMETERS`) are skipped.
///
/// # Errors
/// No private key block, an encrypted key, or a key of another type.
pub fn key_to_pkcs8(pem: &str) -> Result<KeyPem, CertError> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or_else(|| CertError::Unsupported("file: no PEM private key in it".into()))?;
    let encode = |pkcs8: &[u8]| KeyPem(der::pem("PRIVATE KEY", pkcs8));
    match block.label.as_str() {
        "PRIVATE KEY" => Ok(encode(&block.contents)),
        "RSA PRIVATE KEY" => crate::material::rsa::pkcs1_to_pkcs8(&block.contents)
            .map(|pkcs8| encode(&pkcs8))
            .ok_or(CertError::BadKey),
        "EC PRIVATE KEY" => {
            // SEC1 (RFC 5915) wrapped in PKCS#8 (RFC 5958) for each curve we
            // support; the one whose curve matches the key loads.
            for curve in [P256_OID, P384_OID] {
                let key = encode(&sec1_to_pkcs8(&block.contents, curve));
                if load_key(&key).is_ok() {
                    return Ok(key);
                }
            }
            Err(CertError::Unsupported(
                "EC key: only the curves P-256 and P-384 are supported".into(),
            ))
        }
        "ENCRYPTED PRIVATE KEY" => Err(CertError::Unsupported(
            "encrypted private key (store it without a passphrase)".into(),
        )),
        other => Err(CertError::Unsupported(format!("private key type {other}"))),
    }
}

/// DER object identifiers: id-ecPublicKey (RFC 5480), the curves P-256 and P-384.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// PKCS#8 `PrivateKeyInfo` of a SEC1 `ECPrivateKey` on `curve`.
fn sec1_to_pkcs8(sec1: &[u8], curve: &[u8]) -> Vec<u8> {
    let algorithm = der::encode(0x30, &[EC_PUBLIC_KEY_OID, curve].concat());
    der::encode(
        0x30,
        &[
            &[0x02, 0x01, 0x00][..],
            &algorithm,
            &der::encode(0x04, sec1),
        ]
        .concat(),
    )
}

/// Whether the certificate `issuer_der` issued `leaf_der`: its subject is the
/// leaf's issuer and its key verifies the leaf's signature.
pub fn issued_by(leaf_der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok((_, leaf)), Ok((_, issuer))) = (
        X509Certificate::from_der(leaf_der),
        X509Certificate::from_der(issuer_der),
    ) else {
        return false;
    };
    leaf.issuer() == issuer.subject() && leaf.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Lower-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of lower- or upper-case hex text; `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The SubjectPublicKeyInfo (DER) of a private key (PKCS#8 PEM): what TLSA
/// records with selector 1 hold.
///
/// # Errors
/// When the PEM is not a key this program can read.
pub fn spki_of_key(key: &KeyPem) -> Result<Vec<u8>, CertError> {
    let pair = rcgen::KeyPair::from_pem(key.expose())
        .map_err(|e| CertError::Unsupported(format!("key: {e}")))?;
    use rcgen::PublicKeyData;
    Ok(pair.subject_public_key_info())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["www.example.test".into(), "example.test".into()]
    }

    /// A self-signed certificate for `names` with `key`, standing in for an issued one.
    fn self_signed(key: &KeyPem, names: &[String]) -> String {
        let pair = load_key(key).unwrap();
        let params = CertificateParams::new(names.to_vec()).unwrap();
        params.self_signed(&pair).unwrap().pem()
    }

    #[test]
    fn each_ecdsa_key_type_generates_pkcs8_and_signs_a_csr() {
        for (kind, name) in [
            (KeyType::EcdsaP256, "ecdsa-p256"),
            (KeyType::EcdsaP384, "ecdsa-p384"),
        ] {
            let key = generate_key(kind).unwrap();
            assert!(key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
            assert_eq!(key_type_of(&key).unwrap(), name);
            csr_der(&key, &names()).unwrap();
        }
    }

    #[test]
    fn rsa_2048_generates_quickly_and_signs_a_csr() {
        let start = std::time::Instant::now();
        let key = generate_key(KeyType::Rsa(2048)).unwrap();
        eprintln!("RSA-2048 generation took {:?}", start.elapsed());
        assert!(key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(key_type_of(&key).unwrap(), "rsa");
        let csr = csr_der(&key, &names()).unwrap();
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr).unwrap();
        assert_eq!(
            req.certification_request_info
                .subject_pki
                .subject_public_key
                .data
                .as_ref(),
            load_key(&key).unwrap().public_key_raw()
        );
        let cert = self_signed(&key, &names());
        assert!(key_matches_cert(&key, &cert).unwrap());
    }

    #[test]
    fn config_values_map_to_key_types() {
        assert_eq!(
            KeyType::from_config("rsa", 4096).unwrap(),
            KeyType::Rsa(4096)
        );
        assert_eq!(
            KeyType::from_config("ecdsa-p384", 0).unwrap(),
            KeyType::EcdsaP384
        );
        assert!(KeyType::from_config("rsa", 1024).is_err());
        assert!(KeyType::from_config("dsa", 2048).is_err());
    }

    #[test]
    fn csr_carries_all_names_and_the_first_as_cn() {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        let csr = csr_der(&key, &names()).unwrap();
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr).unwrap();
        let cn: Vec<_> = req
            .certification_request_info
            .subject
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, vec!["www.example.test".to_string()]);
        let mut sans = Vec::new();
        for ext in req.requested_extensions().unwrap() {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
                for n in &san.general_names {
                    if let GeneralName::DNSName(d) = n {
                        sans.push(d.to_string());
                    }
                }
            }
        }
        assert_eq!(sans, names());
        assert!(csr_der(&key, &[]).is_err());
    }

    #[test]
    fn parses_a_chain_and_matches_openssl_fingerprint() {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        let cert = self_signed(&key, &names());
        let info = parse_chain(&cert).unwrap();
        assert_eq!(info.sans, names());
        assert!(info.not_after > info.not_before);
        assert!(info.issuers_der.is_empty());
        assert!(key_matches_cert(&key, &cert).unwrap());
        let other = generate_key(KeyType::EcdsaP256).unwrap();
        assert!(!key_matches_cert(&other, &cert).unwrap());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, &cert).unwrap();
        let out = match std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-serial",
                "-in",
            ])
            .arg(&path)
            .output()
        {
            Ok(out) => out,
            Err(_) => {
                eprintln!("SKIPPED: openssl not installed, fingerprint cross-check");
                return;
            }
        };
        let text = String::from_utf8(out.stdout).unwrap().to_lowercase();
        let fp = text
            .lines()
            .find_map(|l| {
                l.split_once("fingerprint=")
                    .map(|(_, v)| v.replace(':', ""))
            })
            .unwrap();
        assert_eq!(fp, info.sha256_fingerprint);
        let serial = text
            .lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap();
        assert_eq!(
            serial.trim_start_matches('0'),
            info.serial.trim_start_matches('0')
        );
    }

    #[test]
    fn garbage_is_a_clear_error_and_keys_are_not_shown() {
        assert!(parse_chain("not pem").is_err());
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        assert_eq!(format!("{key:?}"), "KeyPem(***)");
        assert!(matches!(
            load_key(&KeyPem::new("nope".into())),
            Err(CertError::BadKey)
        ));
    }
}
