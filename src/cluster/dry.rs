//! `--dry-run` with `store = etcd` (docs/cluster.md, "Dry run"): reads the
//! store and prints what this node would deploy and, when no other node
//! coordinates now, what it would do as coordinator. Nothing is written to
//! etcd, the state directory or the destinations; the store's material is
//! decrypted into a private temporary directory for the planning and removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use log::{error, info};

use super::coordinator::{hold_cleanup, lagging};
use super::data::{COORDINATOR, NodeRecord};
use super::store::StoreError;
use super::{ClusterConfig, Work, deploy, describe, mirror_files, open};
use crate::apply::fs::{self as afs, PRIVATE_DIR};
use crate::cli::Args;
use crate::config::model::Config;
use crate::dns::provider::Providers;
use crate::plan::{Plan, Request};
use crate::run::Exit;
use crate::state::{self, Shared, State, StateError, Store};

/// A directory only this user can read, removed with everything in it when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<PrivateDir, String> {
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| "no random numbers".to_string())?;
        let name = format!(
            "cryptdomainmgr-dry-run-{}-{}",
            std::process::id(),
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let dir = PrivateDir(path);
        afs::create_dir(&dir.0, PRIVATE_DIR).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Holds cleanup back as the coordinator would; never saves (a dry run's
/// store does not).
#[derive(Debug)]
struct WouldCoordinate {
    me: String,
    nodes: BTreeMap<String, NodeRecord>,
}

#[async_trait]
impl Shared for WouldCoordinate {
    async fn save(&self, _state: &State) -> Result<(), StateError> {
        Err(StateError::Shared("a dry run writes nothing".into()))
    }

    fn before_round(&self, state: &State, plan: &mut Plan) -> Result<(), String> {
        hold_cleanup(plan, &lagging(&self.nodes, &self.me, state));
        Ok(())
    }
}

pub(super) async fn run(
    config: &Config,
    providers: &Providers,
    cluster: &ClusterConfig,
    args: &Args,
    work: Work,
) -> Exit {
    match plan(config, providers, cluster, args, work).await {
        Ok(true) => Exit::Success,
        Ok(false) => Exit::PhaseFailed,
        Err(e) => {
            error!("{e}");
            Exit::PhaseFailed
        }
    }
}

async fn plan(
    config: &Config,
    providers: &Providers,
    cluster: &ClusterConfig,
    args: &Args,
    work: Work,
) -> Result<bool, String> {
    let me = cluster.node.as_str();
    let mut data = open(config, cluster, false).await?;
    info!(
        "Running phase: {} (dry run, node {me}, {}: nothing will be changed)",
        work.name(),
        describe(cluster)
    );
    let fail = |e: StoreError| format!("{}: {e}", describe(cluster));
    let local = state::load(&config.cdm.statedir).map_err(|e| e.to_string())?;
    let mut nodes = data.nodes().await.map_err(fail)?;
    nodes.remove(me);
    let holder = data
        .store
        .get(COORDINATOR)
        .await
        .map_err(fail)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());

    // What this node would deploy first (paths do not matter here).
    let shared = data.load_state().await.map_err(fail)?;
    if let Some(shared) = &shared {
        let lines = deploy::pending(config, shared, &local);
        if lines.is_empty() {
            println!("node {me}: its destinations hold the cluster's current material");
        }
        for line in lines {
            println!("node {me}: {line}");
        }
    }
    if let Some(holder) = holder {
        println!("node {holder} coordinates now: this node would deploy only");
        return Ok(work == Work::Auto);
    }
    println!("node {me} would coordinate this run:");

    // The coordinator's plan, on the store's state and material as a real
    // run would mirror them, in a directory of its own.
    let scratch;
    let (statedir, work_state) = match shared {
        Some(_) => {
            scratch = PrivateDir::new()?;
            data.statedir = scratch.path().to_path_buf();
            let files = data.load_files().await.map_err(fail)?;
            mirror_files(&data, &files)?;
            let mut shared = data.load_state().await.map_err(fail)?.unwrap_or_default();
            shared.services = deploy::services_for(config, &shared, &local);
            (scratch.path().to_path_buf(), shared)
        }
        // The first coordinator takes its own state into the store.
        None => (config.cdm.statedir.clone(), local),
    };
    let phase = work.phase(&work_state);
    if let (Work::Next, Some(phase)) = (work, phase) {
        info!("Running phase: {} (the cluster's next)", phase.name());
    }
    let request = phase.map_or(Request::Auto, crate::run::request_of);
    let store = Store::new(&statedir, work_state, true).with_shared(Arc::new(WouldCoordinate {
        me: me.to_string(),
        nodes,
    }));
    Ok(crate::run::drive(config, providers, &store, request, args.force, true).await)
}
