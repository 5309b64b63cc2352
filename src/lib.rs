//! cryptdomainmgr: keeps TLS certificates, DANE TLSA records, DKIM keys and DNS
//! records up to date without downtime. See README.md and the module docs.

pub mod apply;
pub mod config;
pub mod dns;
pub mod plan;
pub mod secret;
