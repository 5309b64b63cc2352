//! Keys made by the program are keys OpenSSL accepts: `openssl pkey -check`
//! verifies the RSA key's consistency (primes, exponents, CRT values), and
//! the size, the PEM form and the DKIM record's public key are what OpenSSL
//! reads in them. Pebble (tests/cert_pebble.rs) and dkimpy
//! (tests/dkim_knot.rs) check the same keys in use.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::Path;

use base64::Engine;
use cryptdomainmgr::material::cert::{KeyType, generate_key, key_to_pkcs8};
use cryptdomainmgr::material::dkim::{self, DkimKeyType};

/// Writes `pem`, checks it with `openssl pkey -check` and returns `-text`.
fn openssl_check(dir: &Path, name: &str, pem: &str) -> String {
    std::fs::write(dir.join(name), pem).unwrap();
    let checked = support::openssl(dir, &["pkey", "-check", "-noout", "-in", name]);
    assert!(checked.contains("Key is valid"), "{name}: {checked}");
    support::openssl(dir, &["pkey", "-text", "-noout", "-in", name])
}

#[test]
fn certificate_rsa_keys_pass_openssl_pkey_check_at_every_size() {
    if !support::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for bits in [2048, 3072, 4096] {
        let key = generate_key(KeyType::Rsa(bits)).unwrap();
        let pem = key.expose();
        // PKCS#8, as the key files have always been written.
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let text = openssl_check(dir.path(), &format!("rsa{bits}.pem"), pem);
        assert!(
            text.contains(&format!("Private-Key: ({bits} bit, 2 primes)")),
            "{text}"
        );
        assert!(text.contains("publicExponent: 65537"), "{text}");
        // OpenSSL's own PKCS#8 form of the key is the same bytes.
        let rewritten = support::openssl(dir.path(), &["pkey", "-in", &format!("rsa{bits}.pem")]);
        assert_eq!(rewritten, pem);
    }
}

#[test]
fn pkcs1_keys_of_other_tools_are_converted_to_the_same_key() {
    if !support::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    support::openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k8.pem",
        ],
    );
    support::openssl(
        dir.path(),
        &["pkey", "-in", "k8.pem", "-traditional", "-out", "k1.pem"],
    );
    let pkcs1 = std::fs::read_to_string(dir.path().join("k1.pem")).unwrap();
    assert!(
        pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{pkcs1}"
    );
    let converted = key_to_pkcs8(&pkcs1).unwrap();
    let expected = std::fs::read_to_string(dir.path().join("k8.pem")).unwrap();
    assert_eq!(converted.expose(), expected);
}

#[test]
fn dkim_keys_pass_openssl_pkey_check_and_publish_their_public_key() {
    if !support::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for kind in [
        DkimKeyType::Rsa(1024),
        DkimKeyType::Rsa(1536),
        DkimKeyType::Rsa(2048),
        DkimKeyType::Ed25519,
    ] {
        let key = dkim::generate(kind).unwrap();
        let name = format!("{kind}.pem");
        let text = openssl_check(dir.path(), &name, key.pem.expose());
        if let DkimKeyType::Rsa(bits) = kind {
            assert!(
                text.contains(&format!("Private-Key: ({bits} bit, 2 primes)")),
                "{text}"
            );
        } else {
            assert!(text.contains("ED25519 Private-Key"), "{text}");
        }
        // The record's p= is the public key OpenSSL derives from the private key.
        let public_der = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in", &name])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .stdout;
        let published = key.txt.split("p=").nth(1).unwrap();
        let published = base64::engine::general_purpose::STANDARD
            .decode(published)
            .unwrap();
        match kind {
            // RSA: the whole SubjectPublicKeyInfo (RFC 6376 §3.6.1).
            DkimKeyType::Rsa(_) => assert_eq!(published, public_der, "{kind}"),
            // Ed25519: the raw 32-byte key that ends it (RFC 8463 §4.2).
            DkimKeyType::Ed25519 => assert_eq!(published, public_der[12..], "{kind}"),
        }
        // Read back from the file, the key gives the same record.
        assert_eq!(dkim::from_pem(key.pem.expose()).unwrap().txt, key.txt);
    }
}
