//! Cryptographic material the program makes and inspects: certificate keys,
//! CSRs and issued chains ([`cert`]), TLSA association data ([`tlsa`]), DKIM
//! keys and records ([`dkim`]), DH parameters ([`dhparam`]); RSA keys
//! ([`rsa`]) and the DER and PEM the program writes itself ([`der`]).

pub mod cert;
pub mod der;
pub mod dhparam;
pub mod dkim;
pub(crate) mod dkim_signing;
mod ffdhe;
pub(crate) mod rsa;
pub(crate) mod tlsa;
