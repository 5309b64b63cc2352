//! Configuration: the INI reader (`ini`), the record-key language (`records`) and
//! the typed model built from them (`model`).

pub(crate) mod cert;
pub(crate) mod dhparam;
pub(crate) mod dkim;
pub(crate) mod domain;
pub mod ini;
pub mod mailpolicy;
pub mod model;
pub(crate) mod original;
pub mod records;
pub(crate) mod section;
pub(crate) mod service;
pub(crate) mod store;
