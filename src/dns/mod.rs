//! DNS: the record model, the providers that change zones, and observation of
//! what authoritative servers serve.

pub mod provider;
pub mod record;
