//! What the cluster keeps in the store (docs/cluster.md, "Keys"): the shared
//! state and the material files, sealed, with paths relative to the state
//! directory; the node records; the check value for the sealing key.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::seal::SealKey;
use super::store::{SharedStore, StoreError};
use crate::state::{STATE_VERSION, State};

pub(crate) const COORDINATOR: &str = "coordinator";
pub(crate) const STATE: &str = "state";
pub(crate) const FILES: &str = "files/";
pub(crate) const NODES: &str = "nodes/";
/// `live/<node>`: attached to that node's own lease, so it is there only
/// while the node runs on time.
pub(crate) const LIVE: &str = "live/";
pub(crate) const CHECK: &str = "check";
const CHECK_TEXT: &[u8] = b"cryptdomainmgr shared store";
/// How paths under the state directory are written in the shared state.
const STATEDIR_MARK: &str = "@statedir";

/// What one node deployed of one section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deployed {
    pub generation: String,
    pub at: DateTime<Utc>,
}

/// `nodes/<node>`: written by that node only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    #[serde(default)]
    pub last_contact: Option<DateTime<Utc>>,
    /// The lease `live/<node>` is attached to, renewed by the node's next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<i64>,
    /// By section key (`cert:web`).
    #[serde(default)]
    pub deployed: BTreeMap<String, Deployed>,
}

/// `live/<node>`: the run that last renewed the registration, and for how long.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LiveRecord {
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ttl: u64,
}

/// The store, the sealing key and this node's state directory.
pub(crate) struct Data {
    pub store: Arc<dyn SharedStore>,
    pub seal: SealKey,
    pub statedir: PathBuf,
}

/// A section's generation: what identifies its current material (docs/cluster.md).
pub(crate) fn generations(state: &State) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, cert) in &state.certs {
        if let Some(c) = &cert.current {
            out.insert(format!("cert:{name}"), c.fingerprint.clone());
        }
    }
    for (name, dkim) in &state.dkim {
        if let Some(k) = &dkim.current {
            out.insert(format!("dkim:{name}"), k.selector.clone());
        }
    }
    for (name, dh) in &state.dhparams {
        if let Some(d) = &dh.current {
            out.insert(format!("dhparam:{name}"), d.fingerprint.clone());
        }
    }
    out
}

/// The generation of section `key`'s current material (`cert:web`) and when
/// it was put in place.
pub(crate) fn current(state: &State, key: &str) -> Option<(String, Option<DateTime<Utc>>)> {
    let (module, name) = key.split_once(':')?;
    match module {
        "cert" => {
            let c = state.certs.get(name)?.current.as_ref()?;
            Some((c.fingerprint.clone(), c.deployed_at))
        }
        "dkim" => {
            let k = state.dkim.get(name)?.current.as_ref()?;
            Some((k.selector.clone(), k.installed))
        }
        "dhparam" => {
            let d = state.dhparams.get(name)?.current.as_ref()?;
            Some((d.fingerprint.clone(), d.deployed_at))
        }
        _ => None,
    }
}

/// Replaces `from` at the start of every string in `value` by `to`.
fn rebase(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => {
            if s == from {
                *s = to.to_string();
            } else if let Some(rest) = s.strip_prefix(from)
                && rest.starts_with('/')
            {
                *s = format!("{to}{rest}");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rebase(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rebase(v, from, to)),
        _ => {}
    }
}

/// A relative path from the store, refused when it could leave the state directory.
pub(crate) fn safe_relative(rel: &str) -> Option<PathBuf> {
    let path = Path::new(rel);
    let ok = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_path_buf())
}

impl Data {
    fn open(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal.open(key, value).map_err(StoreError)
    }

    pub(crate) fn sealed(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal
            .seal(key, plain)
            .map(String::into_bytes)
            .map_err(StoreError)
    }

    /// Checks that the values in the store decrypt with this node's key; the
    /// first node writes the check value (when `write`).
    pub(crate) async fn check_key(&self, write: bool) -> Result<(), StoreError> {
        let value = match self.store.get(CHECK).await? {
            Some(value) => value,
            None if !write => return Ok(()),
            None => {
                let value = self.sealed(CHECK, CHECK_TEXT)?;
                if self.store.create(CHECK, &value).await? {
                    return Ok(());
                }
                // Another node wrote it first: check against that one.
                self.store.get(CHECK).await?.unwrap_or_default()
            }
        };
        let plain = self.open(CHECK, &value)?;
        if plain != CHECK_TEXT {
            return Err(StoreError(format!(
                "the check value in the store is not cryptdomainmgr's (storesecretfile {})",
                self.seal.file().display()
            )));
        }
        Ok(())
    }

    /// The shared state before sealing: JSON, paths relative to the state
    /// directory, without what is each node's own (its services, its last
    /// `--auto`).
    pub(crate) fn plain_state(&self, state: &State) -> Result<Vec<u8>, StoreError> {
        let mut value = serde_json::to_value(state)
            .map_err(|e| StoreError(format!("encoding the state: {e}")))?;
        if let Value::Object(map) = &mut value {
            map.remove("services");
            map.remove("auto");
        }
        rebase(
            &mut value,
            &self.statedir.display().to_string(),
            STATEDIR_MARK,
        );
        serde_json::to_vec(&value).map_err(|e| StoreError(e.to_string()))
    }

    /// The shared state, paths under this node's state directory; `None`
    /// before the first coordinator wrote it.
    pub(crate) async fn load_state(&self) -> Result<Option<State>, StoreError> {
        let Some(value) = self.store.get(STATE).await? else {
            return Ok(None);
        };
        let text = self.open(STATE, &value)?;
        let mut value: Value = serde_json::from_slice(&text)
            .map_err(|e| StoreError(format!("the shared state is not readable: {e}")))?;
        let found = value.get("version").and_then(Value::as_u64).unwrap_or(0);
        if found > u64::from(STATE_VERSION) {
            return Err(StoreError(format!(
                "the shared state was written by a newer cryptdomainmgr (state version {found}, this one reads up to {STATE_VERSION}); refusing to touch it"
            )));
        }
        rebase(
            &mut value,
            STATEDIR_MARK,
            &self.statedir.display().to_string(),
        );
        let mut state: State = serde_json::from_value(value)
            .map_err(|e| StoreError(format!("the shared state is not readable: {e}")))?;
        state.version = STATE_VERSION;
        Ok(Some(state))
    }

    /// Every material file in the store, by path relative to the state directory.
    pub(crate) async fn load_files(&self) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, value) in self.store.list(FILES).await? {
            let Some(rel) = key.strip_prefix(FILES) else {
                continue;
            };
            if safe_relative(rel).is_none() {
                return Err(StoreError(format!(
                    "the store holds a file named {rel:?}, which is not a path inside the state directory"
                )));
            }
            out.insert(rel.to_string(), self.open(&key, &value)?);
        }
        Ok(out)
    }

    pub(crate) async fn nodes(&self) -> Result<BTreeMap<String, NodeRecord>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, value) in self.store.list(NODES).await? {
            let Some(name) = key.strip_prefix(NODES) else {
                continue;
            };
            let record: NodeRecord = serde_json::from_slice(&value).unwrap_or_default();
            out.insert(name.to_string(), record);
        }
        Ok(out)
    }

    /// The nodes whose registration (`live/<node>`) is there now.
    pub(crate) async fn live(&self) -> Result<BTreeMap<String, LiveRecord>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, value) in self.store.list(LIVE).await? {
            if let Some(name) = key.strip_prefix(LIVE) {
                let record: LiveRecord = serde_json::from_slice(&value).unwrap_or_default();
                out.insert(name.to_string(), record);
            }
        }
        Ok(out)
    }

    /// Writes the node's record and, attached to its lease, its registration,
    /// in one transaction.
    pub(crate) async fn put_node(
        &self,
        node: &str,
        record: &NodeRecord,
        live: &LiveRecord,
        lease: super::store::Lease,
    ) -> Result<(), StoreError> {
        let record = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
        let live = serde_json::to_vec(live).map_err(|e| StoreError(e.to_string()))?;
        self.store
            .put_all(&[
                (format!("{NODES}{node}"), record, None),
                (format!("{LIVE}{node}"), live, Some(lease)),
            ])
            .await
    }
}

/// The material files of the state directory (not the state file, the lock
/// or hidden temporary files), by relative path.
pub(crate) fn local_files(statedir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![statedir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                let Ok(rel) = path.strip_prefix(statedir) else {
                    continue;
                };
                let rel = rel.to_string_lossy().into_owned();
                if rel == "state.json" || rel == "lock" {
                    continue;
                }
                out.insert(rel, path);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rebased_both_ways_and_only_whole_components() {
        let mut v = serde_json::json!({"a": "/s/certs/x", "b": ["/s", "/sx/y", "other"]});
        rebase(&mut v, "/s", STATEDIR_MARK);
        assert_eq!(v["a"], "@statedir/certs/x");
        assert_eq!(v["b"][0], "@statedir");
        assert_eq!(v["b"][1], "/sx/y");
        rebase(&mut v, STATEDIR_MARK, "/t");
        assert_eq!(v["a"], "/t/certs/x");
    }

    #[test]
    fn paths_from_the_store_stay_inside() {
        assert!(safe_relative("certs/a/privkey.pem").is_some());
        assert!(safe_relative("../etc/passwd").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("").is_none());
    }
}
