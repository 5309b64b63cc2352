//! cryptdomainmgr: keeps TLS certificates, DANE TLSA records, DKIM keys and DNS
//! records up to date without downtime. See README.md and the module docs.

pub mod acme;
pub mod apply;
pub mod dns;
pub mod material;
pub mod secret;
