//! DNS: the record model, the providers that change zones, and observation of
//! what authoritative servers serve.

pub mod observe;
pub mod provider;
pub mod record;
pub mod transport;
pub mod wire;
