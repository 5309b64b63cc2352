//! The coordinator's part (docs/cluster.md, "Lease and fencing"): every save
//! of the state goes to the store in transactions fenced by the coordinator
//! lease, material files first; a round does not start on a lease that may
//! have expired; cleanup waits until every node deployed the current material.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::data::{COORDINATOR, Data, FILES, NodeRecord, STATE, generations, local_files};
use super::store::{Lease, Op};
use crate::dns::record::RecordType;
use crate::plan::update::Action as LineAction;
use crate::plan::{Action, Plan, Section};
use crate::state::{Shared, State, StateError};

/// At most this many changes go in one transaction (etcd allows 128).
const OPS_PER_TXN: usize = 100;

/// The lease and what keeps it.
pub(super) struct Holding {
    pub lease: Lease,
    pub ttl: Duration,
    /// Set when etcd said the lease is gone, or a fenced write was refused.
    pub lost: AtomicBool,
    /// When the lease was last renewed (granted).
    pub renewed: Mutex<Instant>,
}

impl Holding {
    /// True while the lease is certainly still held.
    pub(super) fn held(&self) -> bool {
        let renewed = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        !self.lost.load(Ordering::SeqCst) && renewed.elapsed() < self.ttl
    }
}

pub(super) struct Coordinator {
    pub data: Arc<Data>,
    pub holding: Arc<Holding>,
    pub me: String,
    /// The other nodes' records as read when the run became coordinator.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// SHA-256 of each file as the store holds it.
    pub known: Mutex<BTreeMap<String, Vec<u8>>>,
    /// SHA-256 of the shared state as the store holds it (before sealing):
    /// a save that changes nothing shared writes nothing.
    pub written: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Coordinator({}, lease {})",
            self.me, self.holding.lease.0
        )
    }
}

pub(super) fn digest(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

pub(super) fn lost_message() -> String {
    "lost the coordinator lease (another node coordinates now, or etcd could not be reached in time); nothing more is written".into()
}

impl Coordinator {
    async fn write(&self, ops: &[Op]) -> Result<(), StateError> {
        if ops.is_empty() {
            return Ok(());
        }
        let written = self
            .data
            .store
            .fenced(COORDINATOR, self.holding.lease, ops)
            .await
            .map_err(|e| StateError::Shared(e.0))?;
        if !written {
            self.holding.lost.store(true, Ordering::SeqCst);
            return Err(StateError::Shared(lost_message()));
        }
        Ok(())
    }
}

#[async_trait]
impl Shared for Coordinator {
    async fn save(&self, state: &State) -> Result<(), StateError> {
        if !self.holding.held() {
            return Err(StateError::Shared(lost_message()));
        }
        let files = local_files(&self.data.statedir);
        let mut ops = Vec::new();
        let mut now_known = BTreeMap::new();
        {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for (rel, path) in &files {
                let bytes = std::fs::read(path).map_err(|e| {
                    StateError::Shared(format!("reading {} for the store: {e}", path.display()))
                })?;
                let hash = digest(&bytes);
                if known.get(rel) != Some(&hash) {
                    let key = format!("{FILES}{rel}");
                    let value = self
                        .data
                        .sealed(&key, &bytes)
                        .map_err(|e| StateError::Shared(e.0))?;
                    ops.push(Op::Put { key, value });
                }
                now_known.insert(rel.clone(), hash);
            }
            for rel in known.keys().filter(|r| !files.contains_key(*r)) {
                ops.push(Op::Delete {
                    key: format!("{FILES}{rel}"),
                });
            }
        }
        // Files first, so the state never names a file the store lacks.
        for chunk in ops.chunks(OPS_PER_TXN) {
            self.write(chunk).await?;
        }
        let plain = self
            .data
            .plain_state(state)
            .map_err(|e| StateError::Shared(e.0))?;
        let hash = digest(&plain);
        let unchanged = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| *h == hash);
        if !unchanged {
            let value = self
                .data
                .sealed(STATE, &plain)
                .map_err(|e| StateError::Shared(e.0))?;
            self.write(&[Op::Put {
                key: STATE.into(),
                value,
            }])
            .await?;
        }
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash);
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = now_known;
        Ok(())
    }

    fn before_round(&self, state: &State, plan: &mut Plan) -> Result<(), String> {
        if !self.holding.held() {
            return Err(lost_message());
        }
        hold_cleanup(plan, &lagging(&self.nodes, &self.me, state));
        Ok(())
    }
}

/// Which sections a node other than `me` has not deployed at their current
/// generation, with those nodes.
pub(super) fn lagging(
    nodes: &BTreeMap<String, NodeRecord>,
    me: &str,
    state: &State,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (section, generation) in generations(state) {
        for (node, record) in nodes.iter().filter(|(n, _)| *n != me) {
            let done = record
                .deployed
                .get(&section)
                .is_some_and(|d| d.generation == generation);
            if !done {
                out.entry(section.clone()).or_default().push(node.clone());
            }
        }
    }
    out
}

/// Keeps superseded material and old TLSA and DKIM records while a node has
/// not deployed the current generation of a section (docs/cluster.md, step 6).
pub(super) fn hold_cleanup(plan: &mut Plan, lagging: &BTreeMap<String, Vec<String>>) {
    if lagging.is_empty() {
        return;
    }
    let held: BTreeSet<&str> = lagging.keys().map(String::as_str).collect();
    let mut said = Vec::new();
    let mut holds = |section: &Section, plan_info: &mut Vec<(Section, String)>| {
        let key = section.key();
        if let Some(nodes) = lagging.get(&key)
            && !said.contains(&key)
        {
            said.push(key);
            plan_info.push((
                section.clone(),
                format!(
                    "cleanup waits until node{} {} deployed the current material",
                    if nodes.len() == 1 { "" } else { "s" },
                    nodes.join(", ")
                ),
            ));
        }
    };
    let mut info = Vec::new();
    plan.steps.retain(|step| {
        let keep = !(matches!(step.action, Action::Delete(_))
            && held.contains(step.section.key().as_str()));
        if !keep {
            holds(&step.section, &mut info);
        }
        keep
    });
    let certs = held.iter().any(|k| k.starts_with("cert:"));
    let dkim = held.iter().any(|k| k.starts_with("dkim:"));
    for step in &mut plan.steps {
        if let Action::ChangeZone(change) = &mut step.action {
            let before = change.changes.deletes.len();
            change.changes.deletes.retain(|r| {
                let tlsa = certs && r.record_type() == RecordType::Tlsa;
                let key = dkim
                    && r.record_type() == RecordType::Txt
                    && r.name.to_string().contains("._domainkey.");
                !(tlsa || key)
            });
            if change.changes.deletes.len() != before {
                for domain in &mut change.domains {
                    domain.lines.retain(|line| {
                        let delete = line.action == LineAction::Delete;
                        let tlsa = certs && delete && line.rtype == "TLSA";
                        let key = dkim
                            && delete
                            && line.rtype == "TXT"
                            && line.name.as_str().contains("._domainkey.");
                        !(tlsa || key)
                    });
                }
                for key in held.iter() {
                    if let Some(section) = section_of(key) {
                        holds(&section, &mut info);
                    }
                }
            }
        }
    }
    plan.info.extend(info);
}

fn section_of(key: &str) -> Option<Section> {
    let (module, name) = key.split_once(':')?;
    match module {
        "cert" => Some(Section::Cert(name.into())),
        "dkim" => Some(Section::Dkim(name.into())),
        "dhparam" => Some(Section::DhParam(name.into())),
        _ => None,
    }
}
