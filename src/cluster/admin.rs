//! The administrator's side of a cluster (docs/cluster.md): the nodes for
//! `--status`, `--forget-node`, and the settings `--check` shows.

use std::collections::BTreeMap;

use log::{error, info, warn};
use serde_json::{Value, json};

use super::data::{COORDINATOR, LIVE, LiveRecord, NODES, NodeRecord, generations};
use super::store::{Lease, StoreError};
use super::{ClusterConfig, describe, open};
use crate::clock;
use crate::config::model::Config;
use crate::run::Exit;

/// The store's settings for `--check` (the password as `***`).
pub(crate) fn render_settings(cluster: &ClusterConfig) -> String {
    let etcd = &cluster.etcd;
    let mut out = format!(
        "store = etcd\nstoreendpoints = {}\nstoreprefix = {}\nstoresecretfile = {}\nnode = {}\nnodetimeout = {} s\nstoreleasettl = {} s\n",
        etcd.endpoints.join(", "),
        etcd.prefix,
        cluster.secretfile.display(),
        cluster.node,
        cluster.nodetimeout.as_secs(),
        cluster.leasettl
    );
    for (key, path) in [
        ("storecacert", &etcd.cacert),
        ("storecert", &etcd.cert),
        ("storekey", &etcd.key),
    ] {
        if let Some(path) = path {
            out.push_str(&format!("{key} = {}\n", path.display()));
        }
    }
    if let Some(user) = &etcd.user {
        out.push_str(&format!("storeuser = {user}\n"));
    }
    if let Some(password) = &etcd.password {
        out.push_str(&format!("storepassword = {password}\n"));
    }
    out
}

/// `--forget-node NAME`.
pub(crate) async fn forget_node(config: &Config, cluster: &ClusterConfig, name: &str) -> Exit {
    let data = match open(config, cluster, true).await {
        Ok(data) => data,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let nodes = match data.nodes().await {
        Ok(nodes) => nodes,
        Err(e) => {
            error!("{}: {e}", describe(cluster));
            return Exit::PhaseFailed;
        }
    };
    if !nodes.contains_key(name) {
        let known: Vec<&str> = nodes.keys().map(String::as_str).collect();
        error!(
            "there is no node {name} (registered: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Exit::PhaseFailed;
    }
    let live = match data.live().await {
        Ok(live) => live,
        Err(e) => {
            error!("{}: {e}", describe(cluster));
            return Exit::PhaseFailed;
        }
    };
    if live.contains_key(name) {
        warn!(
            "node {name} is live (it ran within its nodettl); it registers again with its next run"
        );
    }
    // Its registration goes with its lease; the record with the key.
    if let Some(lease) = nodes.get(name).and_then(|r| r.lease)
        && let Err(e) = data.store.revoke(Lease(lease)).await
    {
        error!("{}: {e}", describe(cluster));
        return Exit::PhaseFailed;
    }
    let mut result = Ok(());
    for key in [format!("{LIVE}{name}"), format!("{NODES}{name}")] {
        result = result.and(data.store.delete(&key).await);
    }
    match result {
        Ok(()) => {
            info!("node {name} forgotten; cleanup no longer waits for it");
            Exit::Success
        }
        Err(e) => {
            error!("{}: {e}", describe(cluster));
            Exit::PhaseFailed
        }
    }
}

/// One node as `--status` shows it.
#[derive(Clone, Debug)]
struct NodeStatus {
    name: String,
    /// Its registration (`live/<node>`) is there: it ran within its `nodettl`.
    live: Option<LiveRecord>,
    record: NodeRecord,
    /// No contact for longer than `nodetimeout` (on the program's clock).
    gone: bool,
}

/// The cluster's nodes for `--status` and `--status --json`: last contact,
/// live or not, and the generation of each section each has deployed,
/// against the shared state's current one.
#[derive(Clone, Debug)]
pub(crate) struct ClusterStatus {
    store: String,
    me: String,
    coordinator: Option<String>,
    current: BTreeMap<String, String>,
    nodes: Vec<NodeStatus>,
}

/// Reads the nodes from the store; writes nothing.
pub(crate) async fn status(
    config: &Config,
    cluster: &ClusterConfig,
) -> Result<ClusterStatus, String> {
    let data = open(config, cluster, false).await?;
    let fail = |e: StoreError| format!("{}: {e}", describe(cluster));
    let shared = data.load_state().await.map_err(fail)?.unwrap_or_default();
    let mut records = data.nodes().await.map_err(fail)?;
    let mut live = data.live().await.map_err(fail)?;
    let coordinator = data
        .store
        .get(COORDINATOR)
        .await
        .map_err(fail)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let now = clock::now();
    let timeout = chrono::Duration::from_std(cluster.nodetimeout).unwrap_or(chrono::Duration::MAX);
    // A node registered but not yet recorded (its first run is under way) is listed too.
    for name in live.keys() {
        records.entry(name.clone()).or_default();
    }
    let nodes = records
        .into_iter()
        .map(|(name, record)| NodeStatus {
            live: live.remove(&name),
            gone: record.last_contact.is_none_or(|at| now - at > timeout),
            name,
            record,
        })
        .collect();
    Ok(ClusterStatus {
        store: describe(cluster),
        me: cluster.node.clone(),
        coordinator,
        current: generations(&shared),
        nodes,
    })
}

impl ClusterStatus {
    pub(crate) fn lines(&self) -> Vec<String> {
        let live = self.nodes.iter().filter(|n| n.live.is_some()).count();
        let mut lines = vec![format!(
            "Cluster: {} nodes ({live} live) in {}{}",
            self.nodes.len(),
            self.store,
            self.coordinator
                .as_ref()
                .map(|h| format!(", node {h} coordinating now"))
                .unwrap_or_default()
        )];
        for node in &self.nodes {
            let record = &node.record;
            lines.push(format!(
                "  node {}{}: {}, last contact {}{}",
                node.name,
                if node.name == self.me {
                    " (this node)"
                } else {
                    ""
                },
                match &node.live {
                    Some(l) => format!("live (registration lasts {} s after each run)", l.ttl),
                    None => "not live (no run within its registration's time)".to_string(),
                },
                record
                    .last_contact
                    .map_or("never".to_string(), |at| at.to_rfc3339()),
                if node.gone {
                    " — GONE (holds cleanup back; --forget-node to remove)"
                } else {
                    ""
                }
            ));
            for (section, generation) in &self.current {
                let line = match record.deployed.get(section) {
                    Some(d) if &d.generation == generation => {
                        format!("    [{section}] current deployed {}", d.at.to_rfc3339())
                    }
                    Some(d) => format!(
                        "    [{section}] NOT current: has {} (deployed {})",
                        short(&d.generation),
                        d.at.to_rfc3339()
                    ),
                    None => format!("    [{section}] NOT deployed"),
                };
                lines.push(line);
            }
        }
        lines
    }

    /// `cluster` in `--status --json` (docs/status-json.md).
    pub(crate) fn json(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|node| {
                let deployed: serde_json::Map<String, Value> = self
                    .current
                    .iter()
                    .map(|(section, generation)| {
                        let value = node.record.deployed.get(section).map_or(Value::Null, |d| {
                            json!({
                                "generation": d.generation,
                                "at": d.at.to_rfc3339(),
                                "current": &d.generation == generation,
                            })
                        });
                        (section.clone(), value)
                    })
                    .collect();
                json!({
                    "name": node.name,
                    "this_node": node.name == self.me,
                    "live": node.live.is_some(),
                    "gone": node.gone,
                    "last_contact": node.record.last_contact.map(|t| t.to_rfc3339()),
                    "deployed": deployed,
                })
            })
            .collect();
        json!({
            "store": self.store,
            "coordinator": self.coordinator,
            "generations": self.current,
            "nodes": nodes,
        })
    }
}

fn short(generation: &str) -> &str {
    generation.get(..16).unwrap_or(generation)
}
