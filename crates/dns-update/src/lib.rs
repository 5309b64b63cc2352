//! The three RRset calls cryptdomainmgr makes through the `dns-update` crate,
//! with plain `&str` names.
//!
//! The crate's `DnsUpdater::list_rrset`, `add_to_rrset` and
//! `remove_from_rrset` are generic (names are `impl IntoFqdn`), so every crate
//! that calls them compiles the HTTP clients of all its providers — about half
//! of the code the main crate used to hand to LLVM. Called through these
//! non-generic functions they are compiled here, once, and a change in the
//! main crate does not compile them again.

use dns_update::{DnsRecord, DnsRecordType, DnsUpdater, Result};

/// The records of the RRset `name`/`record_type` in the zone `origin`.
///
/// # Errors
/// The crate's error for the request.
#[inline(never)]
pub async fn list_rrset(
    updater: &DnsUpdater,
    name: &str,
    record_type: DnsRecordType,
    origin: &str,
) -> Result<Vec<DnsRecord>> {
    updater.list_rrset(name, record_type, origin).await
}

/// Adds `records` to the RRset `name`/`record_type` in the zone `origin`.
///
/// # Errors
/// The crate's error for the request.
#[inline(never)]
pub async fn add_to_rrset(
    updater: &DnsUpdater,
    name: &str,
    record_type: DnsRecordType,
    ttl: u32,
    records: Vec<DnsRecord>,
    origin: &str,
) -> Result<()> {
    updater
        .add_to_rrset(name, record_type, ttl, records, origin)
        .await
}

/// Removes `records` from the RRset `name`/`record_type` in the zone `origin`.
///
/// # Errors
/// The crate's error for the request.
#[inline(never)]
pub async fn remove_from_rrset(
    updater: &DnsUpdater,
    name: &str,
    record_type: DnsRecordType,
    records: Vec<DnsRecord>,
    origin: &str,
) -> Result<()> {
    updater
        .remove_from_rrset(name, record_type, records, origin)
        .await
}
