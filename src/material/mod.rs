//! Cryptographic material the program makes and inspects: certificate keys,
//! CSRs and issued chains ([`cert`]). TLSA, DKIM and DH parameters join here.

pub mod cert;
pub mod dhparam;
mod ffdhe;
