//! The narrow interface a shared store offers (docs/cluster.md): keys under
//! the configured prefix, a lease-held coordinator key, and writes fenced by
//! that lease. etcd implements it (`super::etcd`); another engine with
//! leases and compare-and-swap transactions could follow.

use async_trait::async_trait;

/// Why the store could not be used: names the endpoints tried and what each said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StoreError(pub String);

/// A lease held by this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease(pub i64);

/// One change of a fenced write.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// Keys are relative to the store's prefix.
#[async_trait]
pub(crate) trait SharedStore: Send + Sync {
    /// The value at `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key starting with `prefix`, with its value, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Writes `key` only if it does not exist; false when it did.
    async fn create(&self, key: &str, value: &[u8]) -> Result<bool, StoreError>;
    /// Creates `key` with `value`, attached to a new lease of `ttl` seconds,
    /// if it does not exist. `Err(holder)` when another holds it.
    async fn campaign(
        &self,
        key: &str,
        value: &[u8],
        ttl: u64,
    ) -> Result<Result<Lease, String>, StoreError>;
    /// Renews `lease` when it is still alive, else grants a new one of `ttl`
    /// seconds; returns the lease that is alive now.
    async fn lease(&self, renew: Option<Lease>, ttl: u64) -> Result<Lease, StoreError>;
    /// Writes keys of this node's own in one transaction (not fenced), each
    /// attached to a lease if given (the key goes when the lease does).
    async fn put_all(&self, puts: &[(String, Vec<u8>, Option<Lease>)]) -> Result<(), StoreError>;
    /// Renews the lease; false when it is gone.
    async fn keep_alive(&self, lease: Lease) -> Result<bool, StoreError>;
    /// Gives the lease (and the keys attached to it) up.
    async fn revoke(&self, lease: Lease) -> Result<(), StoreError>;
    /// Carries out `ops` at once if `guard` is still attached to `lease`;
    /// false (and nothing written) when it is not.
    async fn fenced(&self, guard: &str, lease: Lease, ops: &[Op]) -> Result<bool, StoreError>;
    /// Deletes a key (not fenced: administrator's commands only).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}
