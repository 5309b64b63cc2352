//! Cryptographic material the program makes and inspects: certificate keys,
//! CSRs and issued chains ([`cert`]), DKIM keys and records ([`dkim`]). TLSA and
//! DH parameters join here.

pub mod cert;
pub mod dkim;
pub mod dkim_signing;
