//! The state directory (docs/architecture.md, "State and crash safety"): `state.json`, versioned and replaced atomically,
//! and a lock file that stops a second concurrent run. Later modules add their
//! material (certificates, DKIM selectors, DH parameters) to [`State`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::apply::fs::{self as afs, FsError, PRIVATE_DIR, PRIVATE_FILE};
use crate::cli::Phase;

/// The version of the state format this program writes. Version 1 (the first
/// release) is read as it is: every field added since has a default.
pub(crate) const STATE_VERSION: u32 = 2;
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";

/// How a phase run ended (or that it did not end: `Running` after a crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseStatus {
    Running,
    Completed,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRun {
    pub phase: Phase,
    pub status: PhaseStatus,
    pub at: DateTime<Utc>,
}

/// Everything the program remembers between runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The last prepare, rollover or cleanup run.
    #[serde(default)]
    pub cycle: Option<PhaseRun>,
    /// The last update run.
    #[serde(default)]
    pub update: Option<PhaseRun>,
    /// Certificates by `[cert:NAME]` section name.
    #[serde(default)]
    pub certs: BTreeMap<String, CertState>,
    /// DKIM keys by `[dkim:NAME]` section name.
    #[serde(default)]
    pub dkim: BTreeMap<String, DkimState>,
    /// DH parameters by `[dhparam:NAME]` section name.
    #[serde(default)]
    pub dhparams: BTreeMap<String, DhState>,
    /// Services by `[service:NAME]` section name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceState>,
    /// The last `--auto` run.
    #[serde(default)]
    pub auto: Option<AutoRun>,
    /// Per section (`cert:web`, `dkim:mail`, ...): the last step that
    /// succeeded and the last that failed, for `--status` and monitoring.
    #[serde(default)]
    pub sections: BTreeMap<String, SectionLog>,
}

/// How the last `--auto` run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRun {
    pub at: DateTime<Utc>,
    /// False when a step failed.
    pub ok: bool,
}

/// The outcome of a section's last steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionLog {
    #[serde(default)]
    pub last_success: Option<LoggedStep>,
    #[serde(default)]
    pub last_error: Option<LoggedStep>,
}

/// One step of a section and when it ended; for an error, the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedStep {
    pub at: DateTime<Utc>,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// When the records of new material were first served by every authoritative
/// server, and the TTLs that decide how long resolvers may still hold answers
/// from before (docs/timing.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub at: DateTime<Utc>,
    /// The longest TTL the servers gave the new RRsets.
    pub ttl: u32,
    /// The zone's negative-caching TTL (RFC 2308 §5), the longest of its zones.
    pub negative_ttl: u32,
    /// How many servers were asked (all of them served the records).
    pub servers: u32,
}

/// The CA's ACME Renewal Information (RFC 9773) for the current certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriState {
    /// The serial of the certificate the answer is about.
    pub serial: String,
    /// Its RFC 9773 §4.1 identifier (`base64url(AKI).base64url(serial)`).
    pub cert_id: String,
    /// The suggested window; `None` while the CA gave no usable answer.
    #[serde(default)]
    pub window: Option<AriWindow>,
    /// The time chosen at random within the window: renewal starts then. It
    /// stays while later answers give a window that contains it.
    #[serde(default)]
    pub renew_at: Option<DateTime<Utc>>,
    /// Not asked again before this (the CA's `Retry-After`).
    pub next_fetch: DateTime<Utc>,
    #[serde(default)]
    pub explanation_url: Option<String>,
    /// Why the last request gave no answer (prepare then falls back to
    /// `renewdays`).
    #[serde(default)]
    pub error: Option<String>,
}

/// RFC 9773 §4.2 `suggestedWindow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What the program knows of one certificate section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertState {
    /// Deployed by the last rollover.
    #[serde(default)]
    pub current: Option<CertMaterial>,
    /// Issued by prepare, waiting for rollover.
    #[serde(default)]
    pub prepared: Option<CertMaterial>,
    /// An issuance under way (the journal entry a re-run after a crash continues).
    #[serde(default)]
    pub pending: Option<PendingIssue>,
    /// Replaced material whose files cleanup deletes.
    #[serde(default)]
    pub superseded: Vec<CertMaterial>,
    /// The CA's renewal information for the current certificate.
    #[serde(default)]
    pub ari: Option<AriState>,
    /// With `keystrategy = staged`: the key that becomes current at the next
    /// key rotation, its records published ahead (RFC 7671 §8.1).
    #[serde(default)]
    pub next_key: Option<NextKey>,
}

/// A certificate's next key (`keystrategy = staged`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextKey {
    /// Holds its privkey.pem (0600).
    pub dir: PathBuf,
    /// Its SubjectPublicKeyInfo (DER, hex): what its TLSA records hold.
    pub spki: String,
    /// `ecdsa-p256`, `rsa-4096`.
    pub key_type: String,
    /// When it was made; it becomes current `keyrotatedays` later.
    pub created: DateTime<Utc>,
}

/// An issued certificate kept in the state directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertMaterial {
    /// Holds privkey.pem, cert.pem, chain.pem and fullchain.pem.
    pub dir: PathBuf,
    pub names: Vec<String>,
    pub serial: String,
    /// SHA-256 of the certificate (DER), hex.
    pub fingerprint: String,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    #[serde(default)]
    pub deployed_at: Option<DateTime<Utc>>,
    /// When prepare first published the TLSA records of this certificate
    /// (docs/timing.md).
    #[serde(default)]
    pub tlsa_published_at: Option<DateTime<Utc>>,
    /// The longest TTL of the TLSA RRsets its records joined, as the zone held
    /// them before (a resolver may hold those until it expires).
    #[serde(default)]
    pub tlsa_joined_ttl: Option<u32>,
    /// When every authoritative server first served its TLSA records.
    #[serde(default)]
    pub tlsa_served: Option<Served>,
    /// The certificate key's type (`ecdsa-p256`, `rsa-4096`); `None` in state
    /// from before it was recorded.
    #[serde(default)]
    pub key_type: Option<String>,
}

/// An issuance started: the key is already in `dir`; `order_url` once the CA
/// created the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingIssue {
    pub dir: PathBuf,
    pub names: Vec<String>,
    #[serde(default)]
    pub order_url: Option<String>,
    pub started: DateTime<Utc>,
}

/// What the program knows of one DKIM section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimState {
    /// Installed by the last rollover: the key mail is signed with.
    #[serde(default)]
    pub current: Option<DkimKeyState>,
    /// Made by prepare, published next to the current one, waiting for rollover.
    #[serde(default)]
    pub prepared: Option<DkimKeyState>,
    /// Replaced keys whose records and files cleanup deletes once drained.
    #[serde(default)]
    pub retired: Vec<DkimKeyState>,
}

/// One DKIM key and its selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKeyState {
    pub selector: String,
    /// The key in the state directory (PKCS#8 PEM, 0600).
    pub key_file: PathBuf,
    /// `rsa-2048`, `ed25519`.
    pub key_type: String,
    /// The TXT record data.
    pub txt: String,
    pub created: DateTime<Utc>,
    /// The names whose `SELECTOR._domainkey` record was published.
    #[serde(default)]
    pub domains: Vec<String>,
    /// When the record was first published; `None` while prepare has not
    /// finished publishing (the journal entry a re-run continues).
    #[serde(default)]
    pub published: Option<DateTime<Utc>>,
    /// When rollover installed it.
    #[serde(default)]
    pub installed: Option<DateTime<Utc>>,
    /// The file the signing configuration names for this key
    /// (`keylocation/SELECTOR.key`). A key installed by a version that kept
    /// one `keylocation/keyname` for every key has none while it is current;
    /// the rollover that replaces it records that file here.
    #[serde(default)]
    pub installed_file: Option<PathBuf>,
    /// When a rollover (or a forced prepare) replaced it; the drain period
    /// counts from here.
    #[serde(default)]
    pub retired: Option<DateTime<Utc>>,
    /// The longest TTL of the RRsets its records joined, before they did.
    #[serde(default)]
    pub joined_ttl: Option<u32>,
    /// When every authoritative server first served its records.
    #[serde(default)]
    pub served: Option<Served>,
}

/// What the program knows of one `[dhparam:NAME]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhState {
    /// Deployed to `filename` by the last rollover.
    #[serde(default)]
    pub current: Option<DhMaterial>,
    /// Made by prepare, waiting for rollover.
    #[serde(default)]
    pub prepared: Option<DhMaterial>,
    /// Replaced files in the state directory that cleanup deletes.
    #[serde(default)]
    pub superseded: Vec<DhMaterial>,
}

/// DH parameters kept in the state directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhMaterial {
    /// The PEM file in the state directory.
    pub file: PathBuf,
    /// `openssl` (generated) or `ffdhe` (RFC 7919).
    pub handler: String,
    pub bits: usize,
    /// SHA-256 of the DER parameters, hex.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub deployed_at: Option<DateTime<Utc>>,
}

/// What the program knows of one `[service:NAME]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The last successful reload: material deployed later is still to be
    /// taken up (after a failed or interrupted reload).
    #[serde(default)]
    pub reloaded_at: Option<DateTime<Utc>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            cycle: None,
            update: None,
            certs: BTreeMap::new(),
            dkim: BTreeMap::new(),
            dhparams: BTreeMap::new(),
            services: BTreeMap::new(),
            auto: None,
            sections: BTreeMap::new(),
        }
    }
}

impl State {
    /// The phase `--next` runs: after a completed phase the next one in the
    /// cycle; after a failed or interrupted one, that phase again.
    pub fn next_phase(&self) -> Phase {
        match &self.cycle {
            None => Phase::Prepare,
            Some(run) if run.status == PhaseStatus::Completed => run.phase.next(),
            Some(run) => run.phase,
        }
    }

    /// Records the start or end of a phase.
    pub fn record(&mut self, phase: Phase, status: PhaseStatus, at: DateTime<Utc>) {
        let run = Some(PhaseRun { phase, status, at });
        if phase == Phase::Update {
            self.update = run;
        } else {
            self.cycle = run;
        }
    }

    /// Records how a run ended: the phase it ran (completed or failed), or for
    /// `--auto` its time and whether every step succeeded.
    pub fn record_outcome(&mut self, phase: Option<Phase>, ok: bool, at: DateTime<Utc>) {
        match phase {
            Some(phase) => {
                let status = if ok {
                    PhaseStatus::Completed
                } else {
                    PhaseStatus::Failed
                };
                self.record(phase, status, at);
            }
            None => self.auto = Some(AutoRun { at, ok }),
        }
    }
}

/// Why the state could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path} was written by a newer cryptdomainmgr (state version {found}, this one reads up to {STATE_VERSION}); refusing to touch it"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error(
        "{path} is the state of the Python cryptdomainmgr, which this version does not read; move it aside (mv {path} {path}.python) and run --adopt to take over the certificates and DKIM keys it deployed (docs/migrating.md)"
    )]
    Original { path: PathBuf },
    #[error(
        "another cryptdomainmgr run{holder} holds the lock {path}; try again when it has finished"
    )]
    Locked { path: PathBuf, holder: String },
    /// The shared store (docs/cluster.md) refused or failed the write.
    #[error("{0}")]
    Shared(String),
}

/// A shared store taking part in a run (docs/cluster.md): every save is
/// written through it before the state directory, and it may hold back a
/// round's cleanup or stop the round.
#[async_trait::async_trait]
pub trait Shared: Send + Sync + std::fmt::Debug {
    /// Writes the state (and the material files it names) to the shared store.
    async fn save(&self, state: &State) -> Result<(), StateError>;
    /// Adjusts a round's plan before it is carried out; `Err` stops the run.
    fn before_round(&self, state: &State, plan: &mut crate::plan::Plan) -> Result<(), String>;
}

/// Reads `STATEDIR/state.json`; a missing file is the empty state.
///
/// # Errors
/// When the file exists but cannot be read or parsed, or is from a newer version.
pub(crate) fn load(statedir: &Path) -> Result<State, StateError> {
    let path = statedir.join(STATE_FILE);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(FsError {
            action: "refusing to read",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "it is a symlink"),
        }
        .into());
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => {
            return Err(FsError {
                action: "reading",
                path,
                source,
            }
            .into());
        }
    };
    let version: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if version.get("version").is_none() && version.get("substate").is_some() {
        return Err(StateError::Original { path });
    }
    let found = version
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if found > u64::from(STATE_VERSION) {
        return Err(StateError::TooNew {
            path,
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let mut state: State = serde_json::from_value(version).map_err(|e| StateError::Corrupt {
        path,
        reason: e.to_string(),
    })?;
    // Older versions lack fields that have defaults: nothing else to convert.
    state.version = STATE_VERSION;
    Ok(state)
}

/// Replaces `STATEDIR/state.json` atomically (mode 0600).
///
/// # Errors
/// When writing fails; the previous state file is then unchanged.
pub(crate) fn save(statedir: &Path, state: &State) -> Result<(), StateError> {
    let path = statedir.join(STATE_FILE);
    let text = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    afs::write_atomic(&path, &text, PRIVATE_FILE)?;
    Ok(())
}

/// The exclusive lock on a state directory, held until dropped.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

/// Creates the state directory (0700) if needed and takes its lock without
/// waiting. The lock file holds the holder's pid, for the message a second run
/// prints.
///
/// # Errors
/// [`StateError::Locked`] naming the holder's pid when another run holds it.
pub(crate) fn lock(statedir: &Path) -> Result<StateLock, StateError> {
    afs::create_dir(statedir, PRIVATE_DIR)?;
    let path = statedir.join(LOCK_FILE);
    let fs_err = |action: &'static str| {
        let path = path.clone();
        move |source| FsError {
            action,
            path,
            source,
        }
    };
    // O_NOFOLLOW below closes the race; this check gives the clear message.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(fs_err("refusing to use the lock file")(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is a symlink",
        ))
        .into());
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(fs_err("opening the lock file"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            };
            return Err(StateError::Locked { path, holder });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(fs_err("locking")(e).into()),
    }
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| write!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all())
        .map_err(fs_err("writing the lock file"))?;
    Ok(StateLock { _file: file })
}

/// The state of a running phase, shared by concurrent tasks: every change is
/// saved at once, so a crash loses at most the step under way. In a dry run
/// nothing is saved.
#[derive(Debug)]
pub struct Store {
    statedir: PathBuf,
    dry_run: bool,
    state: tokio::sync::Mutex<State>,
    /// With `store = etcd`: where every save is written first.
    shared: Option<std::sync::Arc<dyn Shared>>,
}

impl Store {
    pub fn new(statedir: &Path, state: State, dry_run: bool) -> Self {
        Store {
            statedir: statedir.to_path_buf(),
            dry_run,
            state: tokio::sync::Mutex::new(state),
            shared: None,
        }
    }

    /// Writes every save through `shared` too (docs/cluster.md).
    #[must_use]
    pub fn with_shared(mut self, shared: std::sync::Arc<dyn Shared>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn shared(&self) -> Option<&std::sync::Arc<dyn Shared>> {
        self.shared.as_ref()
    }

    pub fn statedir(&self) -> &Path {
        &self.statedir
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// A copy of the state as it is now.
    pub async fn snapshot(&self) -> State {
        self.state.lock().await.clone()
    }

    /// Changes the state and saves it (atomically) before returning.
    ///
    /// # Errors
    /// When saving fails; the change is then kept in memory only.
    pub async fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        let mut state = self.state.lock().await;
        let result = change(&mut state);
        if !self.dry_run {
            if let Some(shared) = &self.shared {
                shared.save(&state).await?;
            }
            save(&self.statedir, &state)?;
        }
        Ok(result)
    }

    /// The final state.
    pub fn into_inner(self) -> State {
        self.state.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn next_phase_cycles_and_repeats_failures() {
        let mut state = State::default();
        assert_eq!(state.next_phase(), Phase::Prepare);
        let t = Utc::now();
        for (phase, status, next) in [
            (Phase::Prepare, PhaseStatus::Completed, Phase::Rollover),
            (Phase::Rollover, PhaseStatus::Running, Phase::Rollover),
            (Phase::Rollover, PhaseStatus::Failed, Phase::Rollover),
            (Phase::Rollover, PhaseStatus::Completed, Phase::Cleanup),
            (Phase::Update, PhaseStatus::Completed, Phase::Cleanup),
            (Phase::Cleanup, PhaseStatus::Completed, Phase::Prepare),
        ] {
            state.record(phase, status, t);
            assert_eq!(state.next_phase(), next, "after {phase:?} {status:?}");
        }
    }

    #[test]
    fn save_load_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::default();
        state.record(Phase::Update, PhaseStatus::Completed, Utc::now());
        save(dir.path(), &state).unwrap();
        assert_eq!(load(dir.path()).unwrap(), state);
        let mode = std::fs::metadata(dir.path().join(STATE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn state_without_later_fields_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"version": 1, "certs": {}}"#,
        )
        .unwrap();
        let state = load(dir.path()).unwrap();
        assert!(state.dkim.is_empty());
        assert!(state.dhparams.is_empty());
        assert!(state.services.is_empty());
    }

    /// Whether every value of `old` is in `new` unchanged (objects may have
    /// gained keys).
    fn kept(old: &serde_json::Value, new: &serde_json::Value, path: &str) -> Result<(), String> {
        use serde_json::Value;
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                for (key, value) in a {
                    let next = b.get(key).ok_or(format!("{path}.{key} is lost"))?;
                    kept(value, next, &format!("{path}.{key}"))?;
                }
                Ok(())
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .try_for_each(|(i, (x, y))| kept(x, y, &format!("{path}[{i}]"))),
            (a, b) if a == b => Ok(()),
            (a, b) => Err(format!("{path}: {a} became {b}")),
        }
    }

    #[test]
    fn a_state_of_the_first_version_is_read_without_loss() {
        // Written by the first release through a whole cycle: a deployed and
        // a superseded certificate, DKIM keys current and retired, DH
        // parameters, a service.
        let v1 = include_str!("../tests/fixtures/state/v1.json");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), v1).unwrap();
        let state = load(dir.path()).unwrap();
        assert_eq!(state.version, STATE_VERSION);
        let old: serde_json::Value = serde_json::from_str(v1).unwrap();
        let mut new = serde_json::to_value(&state).unwrap();
        // The version is the one thing that changes.
        new["version"] = old["version"].clone();
        kept(&old, &new, "state").unwrap();
        assert!(state.certs["web"].current.is_some());
        assert_eq!(state.certs["web"].superseded.len(), 1);
        // Saved again, it is the new version, and reads back the same.
        save(dir.path(), &state).unwrap();
        assert_eq!(load(dir.path()).unwrap(), state);
    }

    #[test]
    fn newer_or_corrupt_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), r#"{"version": 99}"#).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(StateError::TooNew { found: 99, .. })
        ));
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        assert!(matches!(load(dir.path()), Err(StateError::Corrupt { .. })));
        // The Python original's state.json in the same place.
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"opstate": "done", "result": {}, "config": {}, "substate": {}}"#,
        )
        .unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Original { .. }), "{err}");
        assert!(err.to_string().contains("--adopt"), "{err}");
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}
