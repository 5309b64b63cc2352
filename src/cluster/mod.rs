//! Several servers, one domain (docs/cluster.md): with `store = etcd` the
//! state and material are shared through etcd, one node at a time
//! coordinates (CA, DNS, timing, cleanup) under a lease that fences its
//! writes, and every node deploys the current material itself.

mod admin;
mod coordinator;
pub(crate) mod data;
mod deploy;
mod dry;
pub(crate) mod etcd;
pub(crate) mod seal;
pub(crate) mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use crate::apply::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE};
use crate::cli::{Args, Phase};
use crate::clock;
use crate::config::model::Config;
use crate::dns::provider::Providers;
use crate::plan::Request;
use crate::run::Exit;
use crate::state::{self, AutoRun, PhaseStatus, Store};
use coordinator::{Coordinator, Holding};
use data::{COORDINATOR, Data, Deployed, NodeRecord, generations, local_files};
use store::{Lease, SharedStore, StoreError};

pub(crate) use admin::{ClusterStatus, forget_node, render_settings, status};

/// `[cdm]` settings of `store = etcd`.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub etcd: etcd::EtcdSettings,
    pub secretfile: PathBuf,
    /// This node's name (`node`, default the host name).
    pub node: String,
    /// After this long without contact a node is reported as gone.
    pub nodetimeout: Duration,
    /// How long a node's registration (`live/<node>`) outlasts its run.
    pub nodettl: Duration,
    /// The coordinator lease's time to live, in seconds.
    pub leasettl: u64,
}

fn describe(cluster: &ClusterConfig) -> String {
    format!("etcd ({})", cluster.etcd.endpoints.join(", "))
}

/// Reads the sealing key, connects and checks the key against the store.
/// `write` lets the first node write the check value; read-only commands
/// (`--status`, `--dry-run`) only check it when it is there.
async fn open(config: &Config, cluster: &ClusterConfig, write: bool) -> Result<Data, String> {
    let seal = seal::SealKey::read(&cluster.secretfile)?;
    let etcd = etcd::Etcd::connect(&cluster.etcd)
        .await
        .map_err(|e| format!("{}: {e}", describe(cluster)))?;
    let data = Data {
        store: Arc::new(etcd),
        seal,
        statedir: config.cdm.statedir.clone(),
    };
    data.check_key(write).await.map_err(|e| e.0)?;
    Ok(data)
}

/// Makes the state directory's material files exactly those of the store.
fn mirror_files(data: &Data, files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    for (rel, bytes) in files {
        let Some(rel_path) = data::safe_relative(rel) else {
            continue;
        };
        let path = data.statedir.join(rel_path);
        if std::fs::read(&path).is_ok_and(|b| &b == bytes) {
            continue;
        }
        if let Some(dir) = path.parent() {
            afs::create_dir(dir, PRIVATE_DIR).map_err(|e| e.to_string())?;
        }
        afs::write_atomic(&path, bytes, PRIVATE_FILE).map_err(|e| e.to_string())?;
    }
    for (rel, path) in local_files(&data.statedir) {
        if !files.contains_key(&rel) {
            afs::remove_file(&path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn digests(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(rel, bytes)| {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
            (rel.clone(), hash.as_ref().to_vec())
        })
        .collect()
}

/// The node's record: its contact now and the generations its state has deployed.
fn record_of(state: &state::State, now: DateTime<Utc>, before: NodeRecord) -> NodeRecord {
    let mut record = before;
    record.last_contact = Some(now);
    let deployed_at = |key: &str| -> Option<DateTime<Utc>> {
        let (module, name) = key.split_once(':')?;
        match module {
            "cert" => state.certs.get(name)?.current.as_ref()?.deployed_at,
            "dkim" => state.dkim.get(name)?.current.as_ref()?.installed,
            "dhparam" => state.dhparams.get(name)?.current.as_ref()?.deployed_at,
            _ => None,
        }
    };
    for (key, generation) in generations(state) {
        let same = record
            .deployed
            .get(&key)
            .is_some_and(|d| d.generation == generation);
        if !same {
            let at = deployed_at(&key).unwrap_or(now);
            record.deployed.insert(key, Deployed { generation, at });
        }
    }
    record
}

/// Renews this node's registration lease every third of its TTL while the
/// run lasts (a run longer than `nodettl` stays live); ends when dropped.
struct Registration(tokio::task::JoinHandle<()>);

impl Registration {
    fn keep(store: Arc<dyn SharedStore>, lease: Lease, ttl: Duration) -> Registration {
        Registration(tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if let Err(e) = store.keep_alive(lease).await {
                    warn!("renewing this node's registration: {e}");
                }
            }
        }))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its TTL until aborted.
fn keep_alive(store: Arc<dyn SharedStore>, holding: Arc<Holding>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = holding.ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            match store.keep_alive(holding.lease).await {
                Ok(true) => {
                    *holding.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
                Ok(false) => {
                    holding.lost.store(true, Ordering::SeqCst);
                    warn!("{}", coordinator::lost_message());
                    return;
                }
                Err(e) => warn!("renewing the coordinator lease: {e}"),
            }
        }
    })
}

/// What a run asks of the cluster: `--auto`, one phase, or `--next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    Auto,
    Phase(Phase),
    Next,
}

impl Work {
    /// The phase this run does on `state` (`None`: `--auto`).
    fn phase(self, state: &state::State) -> Option<Phase> {
        match self {
            Work::Auto => None,
            Work::Phase(phase) => Some(phase),
            Work::Next => Some(state.next_phase()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Work::Auto => "auto",
            Work::Phase(phase) => phase.name(),
            Work::Next => "next",
        }
    }
}

/// `--auto`, a phase or `--next` with `store = etcd` (docs/cluster.md, "A
/// run on a node"); with `--dry-run` it only reads (`dry::run`).
pub(crate) async fn run(
    config: &Config,
    providers: &Providers,
    cluster: &ClusterConfig,
    args: &Args,
    work: Work,
) -> Exit {
    if args.dry_run {
        return dry::run(config, providers, cluster, args, work).await;
    }
    let statedir = &config.cdm.statedir;
    let _lock = match state::lock(statedir) {
        Ok(lock) => lock,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let data = match open(config, cluster, true).await {
        Ok(data) => Arc::new(data),
        Err(e) => {
            error!("{e}; nothing was changed");
            return Exit::PhaseFailed;
        }
    };
    let me = cluster.node.as_str();
    info!(
        "Running phase: {} (node {me}, {})",
        work.name(),
        describe(cluster)
    );
    let result = step(config, providers, cluster, args, &data, work).await;
    if work != Work::Auto && !config.cdm.postwait.is_zero() {
        info!("Waiting {} s (postwait)", config.cdm.postwait.as_secs_f64());
        tokio::time::sleep(config.cdm.postwait).await;
    }
    match result {
        Ok(true) => Exit::Success,
        Ok(false) => {
            match work {
                Work::Auto => error!("some steps failed; the next run tries them again"),
                _ => error!("phase {} failed", work.name()),
            }
            Exit::PhaseFailed
        }
        Err(e) => {
            error!("{e}; deployed material is left as it is");
            Exit::PhaseFailed
        }
    }
}

async fn step(
    config: &Config,
    providers: &Providers,
    cluster: &ClusterConfig,
    args: &Args,
    data: &Arc<Data>,
    work: Work,
) -> Result<bool, String> {
    let me = cluster.node.as_str();
    let statedir = &config.cdm.statedir;
    let fail = |e: StoreError| format!("{}: {e}", describe(cluster));
    let shared = data.load_state().await.map_err(fail)?;
    let files = data.load_files().await.map_err(fail)?;
    let mut nodes = data.nodes().await.map_err(fail)?;
    let mut before = nodes.remove(me).unwrap_or_default();
    let local = state::load(statedir).map_err(|e| e.to_string())?;

    // The node's registration lease: renewed if it is still alive, else a
    // new one; kept alive while this run lasts. `live/<node>` is written
    // with the node's record below.
    let node_lease = data
        .store
        .lease(before.lease.map(Lease), cluster.nodettl.as_secs())
        .await
        .map_err(fail)?;
    before.lease = Some(node_lease.0);
    let _registration = Registration::keep(data.store.clone(), node_lease, cluster.nodettl);

    // Every node first brings its own destinations to the cluster's current material.
    let mut ok = true;
    let local = match &shared {
        Some(shared) => {
            mirror_files(data, &files)?;
            let (local, deployed_ok) = deploy::deploy_self(config, shared, local).await;
            ok &= deployed_ok;
            local
        }
        None => local,
    };
    let now = clock::now();
    let live = data::LiveRecord {
        at: Some(now),
        ttl: cluster.nodettl.as_secs(),
    };
    let recorded = record_of(&local, now, before.clone());
    data.put_node(me, &recorded, &live, node_lease)
        .await
        .map_err(fail)?;
    report_gone(cluster, &nodes, now);

    let lease = match data
        .store
        .campaign(COORDINATOR, me.as_bytes(), cluster.leasettl)
        .await
        .map_err(fail)?
    {
        Ok(lease) => lease,
        Err(holder) => {
            let mut local = local;
            if work == Work::Auto {
                local.auto = Some(AutoRun {
                    at: clock::now(),
                    ok,
                });
            }
            state::save(statedir, &local).map_err(|e| e.to_string())?;
            if work == Work::Auto {
                info!("node {holder} coordinates now; this node deployed what was due");
                return Ok(ok);
            }
            return Err(format!(
                "node {holder} coordinates now, and only the coordinator runs a phase; this node deployed what was due. Run --{} again once node {holder} is done (its lease ends with its run, or {} s after it died)",
                work.name(),
                cluster.leasettl
            ));
        }
    };
    info!("node {me} coordinates this run");
    // Another coordinator may have finished between the first read and the
    // campaign: work from what the store holds now.
    let (shared, files, local) = match reread(config, data, local).await {
        Ok(read) => read,
        Err(e) => {
            let _ = data.store.revoke(lease).await;
            return Err(fail(e));
        }
    };
    let holding = Arc::new(Holding {
        lease,
        ttl: Duration::from_secs(cluster.leasettl),
        lost: AtomicBool::new(false),
        renewed: Mutex::new(Instant::now()),
    });
    let renewer = keep_alive(data.store.clone(), holding.clone());
    // The coordinator works on the shared state, with its own services.
    let (work_state, known, written) = match shared {
        Some(mut shared) => {
            let written = data
                .plain_state(&shared)
                .ok()
                .map(|p| coordinator::digest(&p));
            shared.services = deploy::services_for(config, &shared, &local);
            (shared, digests(&files), written)
        }
        None => (local, BTreeMap::new(), None),
    };
    let phase = work.phase(&work_state);
    if let (Work::Next, Some(phase)) = (work, phase) {
        info!("Running phase: {} (the cluster's next)", phase.name());
    }
    let coordinator = Arc::new(Coordinator {
        data: data.clone(),
        holding: holding.clone(),
        me: me.to_string(),
        nodes,
        known: Mutex::new(known),
        written: Mutex::new(written),
    });
    let store = Store::new(statedir, work_state, false).with_shared(coordinator);
    let started = match phase {
        Some(phase) => store
            .update(|s| s.record(phase, PhaseStatus::Running, clock::now()))
            .await
            .map_err(|e| e.to_string()),
        None => Ok(()),
    };
    if let Err(e) = &started {
        error!("{e}");
        ok = false;
    } else {
        let request = phase.map_or(Request::Auto, crate::run::request_of);
        ok &= crate::run::drive(config, providers, &store, request, args.force, false).await;
    }
    let at = clock::now();
    let saved = store.update(|s| s.record_outcome(phase, ok, at)).await;
    renewer.abort();
    let final_state = store.into_inner();
    let result = match saved {
        Ok(()) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    // Its own rollovers count as deployed on this node.
    let record = record_of(&final_state, now, before);
    if record != recorded
        && let Err(e) = data.put_node(me, &record, &live, node_lease).await
    {
        error!("{}: {e}", describe(cluster));
        ok = false;
    }
    if let Err(e) = data.store.revoke(lease).await {
        warn!("giving up the coordinator lease: {e}; it expires by itself");
    }
    result.map(|()| ok)
}

/// The shared state and files again, and the node's deploys brought up to them.
async fn reread(
    config: &Config,
    data: &Data,
    local: state::State,
) -> Result<
    (
        Option<state::State>,
        BTreeMap<String, Vec<u8>>,
        state::State,
    ),
    StoreError,
> {
    let shared = data.load_state().await?;
    let files = data.load_files().await?;
    let local = match &shared {
        Some(shared) => {
            mirror_files(data, &files).map_err(StoreError)?;
            deploy::deploy_self(config, shared, local).await.0
        }
        None => local,
    };
    Ok((shared, files, local))
}

/// Logs the nodes that have not been in contact for `nodetimeout`.
fn report_gone(cluster: &ClusterConfig, nodes: &BTreeMap<String, NodeRecord>, now: DateTime<Utc>) {
    let timeout = chrono::Duration::from_std(cluster.nodetimeout).unwrap_or(chrono::Duration::MAX);
    for (name, record) in nodes {
        let gone = record.last_contact.is_none_or(|at| now - at > timeout);
        if gone {
            warn!(
                "node {name} has not been in contact since {}; it holds cleanup back until it runs again or is removed with --forget-node {name}",
                record
                    .last_contact
                    .map_or("ever".to_string(), |at| at.to_rfc3339())
            );
        }
    }
}
