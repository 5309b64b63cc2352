//! The administrator's side of a cluster (docs/cluster.md): the nodes for
//! `--status`, `--forget-node`, and the settings `--check` shows.

use log::{error, info};

use super::data::{COORDINATOR, NODES, generations};
use super::store::StoreError;
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
    let data = match open(config, cluster).await {
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
    match data.store.delete(&format!("{NODES}{name}")).await {
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

/// The nodes for `--status`: last contact and the generation of each section
/// each has deployed, against the shared state's current one.
pub(crate) async fn status_lines(
    config: &Config,
    cluster: &ClusterConfig,
) -> Result<Vec<String>, String> {
    let data = open(config, cluster).await?;
    let fail = |e: StoreError| format!("{}: {e}", describe(cluster));
    let shared = data.load_state().await.map_err(fail)?.unwrap_or_default();
    let nodes = data.nodes().await.map_err(fail)?;
    let holder = data
        .store
        .get(COORDINATOR)
        .await
        .map_err(fail)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let current = generations(&shared);
    let now = clock::now();
    let timeout = chrono::Duration::from_std(cluster.nodetimeout).unwrap_or(chrono::Duration::MAX);
    let mut lines = vec![format!(
        "Cluster: {} nodes in {}{}",
        nodes.len(),
        describe(cluster),
        holder
            .map(|h| format!(", node {h} coordinating now"))
            .unwrap_or_default()
    )];
    for (name, record) in &nodes {
        let gone = record.last_contact.is_none_or(|at| now - at > timeout);
        lines.push(format!(
            "  node {name}{}: last contact {}{}",
            if name == &cluster.node {
                " (this node)"
            } else {
                ""
            },
            record
                .last_contact
                .map_or("never".to_string(), |at| at.to_rfc3339()),
            if gone {
                " — GONE (holds cleanup back; --forget-node to remove)"
            } else {
                ""
            }
        ));
        for (section, generation) in &current {
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
    Ok(lines)
}

fn short(generation: &str) -> &str {
    generation.get(..16).unwrap_or(generation)
}
