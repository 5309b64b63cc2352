//! Cryptographic material the program makes and inspects: certificate keys,
//! CSRs and issued chains ([`cert`]), TLSA association data ([`tlsa`]), DKIM
//! keys and records ([`dkim`]). DH parameters join here.

pub mod cert;
pub mod dhparam;
pub(crate) mod dkim;
pub(crate) mod dkim_signing;
mod ffdhe;
pub(crate) mod tlsa;
