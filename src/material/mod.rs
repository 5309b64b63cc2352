//! Cryptographic material the program makes and inspects: certificate keys,
//! CSRs and issued chains ([`cert`]), TLSA association data ([`tlsa`]). DKIM and
//! DH parameters join here.

pub mod cert;
pub mod tlsa;
