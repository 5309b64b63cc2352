//! cryptdomainmgr: keeps TLS certificates, DANE TLSA records, DKIM keys and DNS
//! records up to date without downtime. See README.md and the module docs.

pub mod acme;
pub mod adopt;
pub mod apply;
pub mod check;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod crashpoint;
pub mod dns;
pub mod http;
pub mod log;
pub mod material;
pub mod observe;
pub mod plan;
pub mod progress;
pub mod publicip;
pub mod run;
pub mod secret;
pub mod state;
pub mod status;
pub mod summary;
