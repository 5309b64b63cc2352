//! Configuration: the INI reader (`ini`), the record-key language (`records`) and
//! the typed model built from them (`model`).

pub mod cert;
pub mod dhparam;
pub mod dkim;
pub mod ini;
pub mod model;
pub mod original;
pub mod records;
pub mod service;
pub mod store;
