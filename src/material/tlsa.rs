//! TLSA certificate association data (RFC 6698 §2.1) from an issued chain.
//!
//! - usage 3 (DANE-EE) and 1 (PKIX-EE) take the end-entity certificate, usage 2
//!   (DANE-TA) and 0 (PKIX-TA) the issuing CA certificate, the first one after
//!   the leaf in the chain (RFC 7671 §5.2 asks for the TA in the chain the
//!   server presents, which is the chain the CA delivered);
//! - selector 0 takes the whole certificate (DER), 1 its SubjectPublicKeyInfo;
//! - matching type 0 is the data itself, 1 its SHA-256, 2 its SHA-512.
//!
//! Pure: the chain is parsed by [`crate::material::cert::parse_chain`] first.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::material::cert::CertInfo;

/// The three numbers that say what a TLSA record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TlsaParams {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
}

/// Why no association data can be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlsaError {
    #[error("TLSA usage {0} is not one of 0 (PKIX-TA), 1 (PKIX-EE), 2 (DANE-TA), 3 (DANE-EE)")]
    Usage(u8),
    #[error("TLSA selector {0} is not one of 0 (certificate), 1 (public key)")]
    Selector(u8),
    #[error("TLSA matching type {0} is not one of 0 (full), 1 (SHA-256), 2 (SHA-512)")]
    Matching(u8),
    #[error(
        "TLSA usage {0} needs the issuing CA certificate, but the chain holds only the end-entity certificate"
    )]
    NoIssuer(u8),
    #[error("the issuing CA certificate cannot be parsed: {0}")]
    BadIssuer(String),
}

/// The certificate association data of `params` for the chain `info`.
///
/// # Errors
/// An out-of-range number, or a CA usage for a chain without an issuer.
pub(crate) fn association_data(info: &CertInfo, params: TlsaParams) -> Result<Vec<u8>, TlsaError> {
    let selected = match (params.usage, params.selector) {
        (1 | 3, 0) => info.leaf_der.clone(),
        (1 | 3, 1) => info.leaf_spki_der.clone(),
        (0 | 2, selector @ (0 | 1)) => {
            let issuer = info
                .issuers_der
                .first()
                .ok_or(TlsaError::NoIssuer(params.usage))?;
            if selector == 0 {
                issuer.clone()
            } else {
                let (_, cert) = X509Certificate::from_der(issuer)
                    .map_err(|e| TlsaError::BadIssuer(e.to_string()))?;
                cert.public_key().raw.to_vec()
            }
        }
        (usage, 0 | 1) => return Err(TlsaError::Usage(usage)),
        (_, selector) => return Err(TlsaError::Selector(selector)),
    };
    use aws_lc_rs::digest::{SHA256, SHA512, digest};
    match params.matching {
        0 => Ok(selected),
        1 => Ok(digest(&SHA256, &selected).as_ref().to_vec()),
        2 => Ok(digest(&SHA512, &selected).as_ref().to_vec()),
        other => Err(TlsaError::Matching(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::cert::{hex, parse_chain};

    /// A leaf (RSA 2048) and its intermediate CA (ECDSA P-384), and the data
    /// `openssl` computes for them; made by `tests/fixtures/tlsa/generate.sh`.
    const CHAIN: &str = include_str!("../../tests/fixtures/tlsa/chain.pem");
    const EXPECTED: &str = include_str!("../../tests/fixtures/tlsa/expected.txt");

    fn expected() -> Vec<(TlsaParams, String)> {
        EXPECTED
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let n = |i: usize| f[i].parse::<u8>().unwrap();
                (
                    TlsaParams {
                        usage: n(0),
                        selector: n(1),
                        matching: n(2),
                    },
                    f[3].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_combination_matches_openssl() {
        let info = parse_chain(CHAIN).unwrap();
        let cases = expected();
        assert_eq!(cases.len(), 4 * 2 * 3);
        for (params, want) in cases {
            let got = hex(&association_data(&info, params).unwrap());
            assert_eq!(got, want, "{params:?}");
        }
    }

    #[test]
    fn ee_and_ta_differ_and_lengths_follow_the_matching_type() {
        let info = parse_chain(CHAIN).unwrap();
        let p = |usage, selector, matching| TlsaParams {
            usage,
            selector,
            matching,
        };
        let ee = association_data(&info, p(3, 1, 1)).unwrap();
        let ta = association_data(&info, p(2, 1, 1)).unwrap();
        assert_ne!(ee, ta);
        assert_eq!(ee.len(), 32);
        assert_eq!(association_data(&info, p(3, 1, 2)).unwrap().len(), 64);
        assert_eq!(association_data(&info, p(3, 0, 0)).unwrap(), info.leaf_der);
    }

    #[test]
    fn bad_numbers_and_missing_issuer_are_errors() {
        let mut info = parse_chain(CHAIN).unwrap();
        let p = |usage, selector, matching| TlsaParams {
            usage,
            selector,
            matching,
        };
        assert_eq!(
            association_data(&info, p(4, 0, 1)),
            Err(TlsaError::Usage(4))
        );
        assert_eq!(
            association_data(&info, p(3, 2, 1)),
            Err(TlsaError::Selector(2))
        );
        assert_eq!(
            association_data(&info, p(3, 0, 3)),
            Err(TlsaError::Matching(3))
        );
        info.issuers_der.clear();
        assert_eq!(
            association_data(&info, p(2, 0, 1)),
            Err(TlsaError::NoIssuer(2))
        );
        assert!(association_data(&info, p(3, 0, 1)).is_ok());
    }
}
