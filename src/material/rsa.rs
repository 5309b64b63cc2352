//! RSA keys with AWS-LC, the program's one crypto library: generation as
//! PKCS#8, PKCS#1 keys of other tools converted to PKCS#8, and the public key
//! of a PKCS#8 key as the SubjectPublicKeyInfo a DKIM record publishes.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};

use crate::material::der;

/// rsaEncryption (RFC 8017 A.1) with its NULL parameters, as an AlgorithmIdentifier.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// A new RSA key of `bits` as PKCS#8 DER, public exponent 65537.
///
/// 2048, 3072 and 4096 bits come from aws-lc-rs. It makes no other size, and
/// DKIM allows any multiple of 128 from 1024 to 4096 bits (RFC 8301), so
/// those come from AWS-LC's own generator through its C interface.
///
/// # Errors
/// A size that is not a multiple of 128 or outside 1024 to 4096 bits, or a
/// failing generator.
pub(crate) fn generate_pkcs8(bits: u32) -> Result<Vec<u8>, String> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return generate_other_size(bits).map(|pkcs1| pkcs1_wrap(&pkcs1)),
    };
    let pair = KeyPair::generate(size).map_err(|_| "the RSA key generator failed".to_string())?;
    let pkcs8 = pair
        .as_der()
        .map_err(|_| "the new RSA key could not be encoded".to_string())?;
    Ok(pkcs8.as_ref().to_vec())
}

/// An RSA key of a size aws-lc-rs does not offer, as PKCS#1 DER.
fn generate_other_size(bits: u32) -> Result<Vec<u8>, String> {
    // AWS-LC rounds other sizes down to a multiple of 128; the key would then
    // not be the configured size.
    if !(1024..=4096).contains(&bits) || !bits.is_multiple_of(128) {
        return Err(format!(
            "RSA key size {bits} (use a multiple of 128 from 1024 to 4096)"
        ));
    }
    crate::sys::rsa_generate_pkcs1(bits).ok_or_else(|| "the RSA key generator failed".to_string())
}

/// A PKCS#1 `RSAPrivateKey` (`RSA PRIVATE KEY`, as older OpenSSL and lego
/// write it) as PKCS#8, after AWS-LC has checked the key (2048 bits or more,
/// as for a certificate).
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Option<Vec<u8>> {
    let pair = KeyPair::from_der(pkcs1).ok()?;
    Some(pair.as_der().ok()?.as_ref().to_vec())
}

/// PKCS#8 `PrivateKeyInfo` (RFC 5208) of a PKCS#1 key: version 0,
/// rsaEncryption, the key as an OCTET STRING.
fn pkcs1_wrap(pkcs1: &[u8]) -> Vec<u8> {
    der::encode(
        0x30,
        &[
            &[0x02, 0x01, 0x00][..],
            RSA_ALGORITHM,
            &der::encode(0x04, pkcs1),
        ]
        .concat(),
    )
}

/// The public key of a PKCS#8 RSA key: its size in bits and its
/// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) in DER. Read without AWS-LC's key
/// check, which refuses the 1024-bit keys DKIM still allows. `None` when
/// `pkcs8` is not an RSA `PrivateKeyInfo`.
pub(crate) fn public_key(pkcs8: &[u8]) -> Option<(u32, Vec<u8>)> {
    let (_, info, _) = der::read(0x30, pkcs8)?;
    let (_, _, rest) = der::read(0x02, info)?;
    let rest = rest.strip_prefix(RSA_ALGORITHM)?;
    let (_, pkcs1, _) = der::read(0x04, rest)?;
    let (_, key, _) = der::read(0x30, pkcs1)?;
    let (_, _, rest) = der::read(0x02, key)?; // version
    let (n_whole, n, rest) = der::read(0x02, rest)?;
    let (e_whole, _, _) = der::read(0x02, rest)?;
    let modulus = match n {
        [0, tail @ ..] => tail,
        all => all,
    };
    let &top = modulus.first()?;
    let bits = u32::try_from(modulus.len() * 8).ok()? - top.leading_zeros();
    let public = der::encode(0x30, &[n_whole, e_whole].concat());
    let bit_string = der::encode(0x03, &[&[0u8][..], &public].concat());
    Some((
        bits,
        der::encode(0x30, &[RSA_ALGORITHM, &bit_string].concat()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_offered_size_have_that_size_and_a_matching_public_key() {
        for bits in [1024, 1152, 2048, 2560] {
            let pkcs8 = generate_pkcs8(bits).unwrap();
            let (read_bits, spki) = public_key(&pkcs8).unwrap();
            assert_eq!(read_bits, bits);
            // The SubjectPublicKeyInfo is one x509-parser reads as this RSA key.
            use x509_parser::prelude::FromDer;
            let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
            let x509_parser::public_key::PublicKey::RSA(rsa) = info.parsed().unwrap() else {
                panic!("not RSA");
            };
            assert_eq!(rsa.key_size(), bits as usize);
            assert_eq!(rsa.exponent, &[1, 0, 1]);
        }
    }

    #[test]
    fn sizes_aws_lc_would_round_are_refused() {
        for bits in [1000, 1025, 512, 8192] {
            let error = generate_pkcs8(bits).unwrap_err();
            assert!(error.contains(&bits.to_string()), "{error}");
        }
    }

    #[test]
    fn a_pkcs1_key_becomes_the_same_key_in_pkcs8() {
        let pkcs8 = generate_pkcs8(2048).unwrap();
        let (_, info, _) = der::read(0x30, &pkcs8).unwrap();
        let (_, _, rest) = der::read(0x02, info).unwrap();
        let rest = rest.strip_prefix(RSA_ALGORITHM).unwrap();
        let (_, pkcs1, _) = der::read(0x04, rest).unwrap();
        assert_eq!(pkcs1_to_pkcs8(pkcs1).unwrap(), pkcs8);
        assert!(pkcs1_to_pkcs8(&pkcs1[..100]).is_none());
    }

    #[test]
    fn what_is_not_an_rsa_private_key_info_is_refused() {
        assert!(public_key(b"").is_none());
        assert!(public_key(&der::encode(0x30, &[0x02, 0x01, 0x00])).is_none());
        let ed25519 = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        assert!(public_key(&[&ed25519[..], &[1u8; 32]].concat()).is_none());
    }
}
