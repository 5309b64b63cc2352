//! Pure planning: from configuration, observed records and state to the changes
//! to make. Nothing here reads the clock, the disk or the network.

pub mod dkim;
pub mod rrsets;
pub mod scope;
pub mod tlsa;
pub mod update;
