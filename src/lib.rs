//! cryptdomainmgr: keeps TLS certificates, DANE TLSA records, DKIM keys and DNS
//! records up to date without downtime. See README.md and the module docs.

pub mod acme;
pub(crate) mod adopt;
pub mod apply;
pub(crate) mod check;
pub mod cli;
pub(crate) mod clock;
pub(crate) mod cluster;
pub mod config;
pub mod crashpoint;
pub mod dns;
pub(crate) mod http;
pub mod log;
pub(crate) mod mail_status;
pub mod material;
pub mod observe;
pub mod plan;
pub(crate) mod progress;
pub(crate) mod publicip;
pub(crate) mod retry;
pub mod run;
pub mod secret;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod summary;
pub(crate) mod sys;
