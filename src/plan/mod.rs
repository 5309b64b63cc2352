//! Pure planning: from the configuration, the state, what was observed and
//! `now` to the steps a run takes. Nothing here reads the clock, the disk or
//! the network; `tests/plan_is_pure.rs` checks the imports.
//!
//! A run is a few rounds of observe → [`plan`] → execute (`crate::run`). Each
//! round's plan holds every step that is due, each with its reason and the
//! earliest time it may run ([`When`]); steps whose results the next step needs
//! (a certificate before its TLSA records, records before "served") follow in
//! the next round, planned again from the new state. `--dry-run` prints the
//! first round's plan and stops.
//!
//! Every section moves through its own cycle (docs/timing.md):
//! nothing → prepared → records published → served everywhere → (2 × hold)
//! → deployed → services reloaded → old records and files removed.

pub(crate) mod cert;
pub(crate) mod dhparam;
pub(crate) mod dkim;
pub mod mtasts;
pub(crate) mod needs;
pub(crate) mod observed;
pub(crate) mod orders;
pub mod records;
pub(crate) mod render;
pub(crate) mod rrsets;
pub mod scope;
pub(crate) mod services;
pub(crate) mod timing;
pub(crate) mod tlsa;
pub mod update;
pub(crate) mod zones;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::config::model::Config;
use crate::dns::provider::ChangeSet;
use crate::dns::record::Name;
use crate::state::{AriState, CertMaterial, DhMaterial, DkimKeyState, PendingIssue, Served, State};
pub use observed::Observed;

/// What the run was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `--update`: the static records.
    Update,
    /// `--prepare`: new material where due, its records next to the old.
    Prepare,
    /// `--rollover`: deploy prepared material, reload services.
    Rollover,
    /// `--cleanup`: remove superseded records and files.
    Cleanup,
    /// `--auto`: everything that is due and safe, for every section.
    Auto,
}

impl Request {
    fn updates(self) -> bool {
        matches!(self, Request::Update | Request::Auto)
    }
    fn prepares(self) -> bool {
        matches!(self, Request::Prepare | Request::Auto)
    }
    fn rolls_over(self) -> bool {
        matches!(self, Request::Rollover | Request::Auto)
    }
    fn cleans_up(self) -> bool {
        matches!(self, Request::Cleanup | Request::Auto)
    }
}

/// What a plan is computed from.
pub struct Input<'a> {
    pub config: &'a Config,
    pub state: &'a State,
    pub observed: &'a Observed,
    pub request: Request,
    /// `--force`: renew what is not due; deploy what is not yet safe.
    pub force: bool,
    pub now: DateTime<Utc>,
    /// The first round of the run: the static records are planned only then
    /// (and in later rounds for domains whose records follow a file or an
    /// account the run changes: `zones::updates_in_round`).
    pub first_round: bool,
    /// Sections with a step that failed earlier in this run: not planned again.
    pub failed: &'a BTreeSet<Section>,
}

/// A configuration section that moves through its own cycle, or a zone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Cert(String),
    Dkim(String),
    DhParam(String),
    Service(String),
    /// A domain section (messages about its records).
    Domain(Name),
    /// A zone changed for several sections at once.
    Zone(Name),
}

impl Section {
    /// The key of this section in the state's `sections` log (`cert:web`).
    pub fn key(&self) -> String {
        match self {
            Section::Cert(n) => format!("cert:{n}"),
            Section::Dkim(n) => format!("dkim:{n}"),
            Section::DhParam(n) => format!("dhparam:{n}"),
            Section::Service(n) => format!("service:{n}"),
            Section::Domain(n) => format!("domain:{n}"),
            Section::Zone(n) => format!("zone:{n}"),
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Zone(zone) => write!(f, "zone {zone}"),
            other => write!(f, "[{}]", other.key()),
        }
    }
}

/// When a step may run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// In this round.
    Now,
    /// Not before this time (the timing rules).
    At(DateTime<Utc>),
    /// Not until something else has happened (records served, ...).
    Waiting(String),
}

/// One step of a plan.
#[derive(Clone, Debug)]
pub struct Step {
    pub section: Section,
    pub action: Action,
    /// Why it is due, in words for the log.
    pub reason: String,
    pub when: When,
}

impl Step {
    fn now(section: Section, action: Action, reason: impl Into<String>) -> Step {
        Step {
            section,
            action,
            reason: reason.into(),
            when: When::Now,
        }
    }

    pub fn is_now(&self) -> bool {
        self.when == When::Now
    }
}

/// What a step does. The executor (`crate::apply`) carries each out; the
/// effects are its only side effects.
#[derive(Clone, Debug)]
pub enum Action {
    /// Changes one zone: adds before deletes, in one message where the
    /// provider allows.
    ChangeZone(ZoneChange),
    /// Orders a certificate (or continues the order an interrupted run left).
    Issue(Issue),
    /// Makes a certificate's next key (`keystrategy = staged`).
    MakeNextKey,
    /// Makes a DKIM key (journalled before the key file is written).
    MakeDkimKey(NewDkimKey),
    /// Generates DH parameters (or writes the RFC 7919 group).
    MakeDhParams,
    /// Puts a prepared certificate in place at its destinations.
    DeployCert(CertMaterial),
    /// Installs a prepared DKIM key and its signing configuration.
    InstallDkim(DkimKeyState),
    /// Copies DH parameters to `filename`; `fresh` for prepared ones,
    /// otherwise the current ones are put back.
    DeployDh { material: DhMaterial, fresh: bool },
    /// Reloads a service after the material it uses was put in place.
    Reload(Reload),
    /// Deletes files of superseded material.
    Delete(Deletion),
    /// Records a fact in the state (records served, the CA's renewal window).
    Note(Note),
    /// Writes (or removes) a domain's MTA-STS policy file.
    MtaStsPolicy(mtasts::PolicyFile),
}

/// One zone's change set, with what each domain section's log shows.
#[derive(Clone, Debug)]
pub struct ZoneChange {
    /// The provider's identity in the configuration.
    pub provider: usize,
    pub zone: Name,
    pub changes: ChangeSet,
    /// Per domain section of the zone, in name order.
    pub domains: Vec<DomainLines>,
}

/// The log lines of one domain section's records, and the keys that could not
/// be planned.
#[derive(Clone, Debug)]
pub struct DomainLines {
    pub name: Name,
    /// Kept as records, not text: a run over thousands of names holds them all.
    pub lines: Vec<update::LogLine>,
    pub errors: Vec<String>,
}

/// A certificate order.
#[derive(Clone, Debug)]
pub struct Issue {
    /// Names in configuration order (the first is the CN).
    pub names: Vec<String>,
    /// The issuance an interrupted run left, to continue.
    pub resume: Option<PendingIssue>,
    /// RFC 9773 `replaces`: the identifier of the certificate this renews.
    pub replaces: Option<String>,
    /// `keystrategy = staged`: the directory whose `privkey.pem` the new
    /// certificate keeps (the current key, or the next key at a rotation);
    /// `None`: a new key.
    pub key: Option<PathBuf>,
}

/// A new DKIM key, or one an interrupted run journalled but never wrote.
#[derive(Clone, Debug)]
pub struct NewDkimKey {
    pub selector: String,
    /// The journalled key whose file is missing.
    pub resume: bool,
}

/// A service reload.
#[derive(Clone, Debug)]
pub struct Reload {
    /// The material whose deployment the reload takes up: planned in this
    /// round, or deployed before and not yet taken up.
    pub after: Vec<Section>,
    /// The traefik configuration file is missing (written even when nothing
    /// new was deployed).
    pub missing_file: bool,
}

/// Files of superseded material to delete.
#[derive(Clone, Debug)]
pub enum Deletion {
    /// A superseded certificate's directory in the state directory.
    CertFiles(CertMaterial),
    /// Old versions at a destination (`DESTINATION/<name>/..<serial>`).
    CertVersions {
        dir: PathBuf,
    },
    DhFile(DhMaterial),
    /// A retired DKIM key whose records are gone.
    DkimKey(DkimKeyState),
}

/// A fact for the state.
#[derive(Clone, Debug)]
pub enum Note {
    /// Every authoritative server serves the section's new records.
    Served(Served),
    /// The section's records were found in their zones (published by an
    /// interrupted run, or already there); `joined_ttl` as the zones show them.
    Published {
        joined_ttl: u32,
        domains: Vec<String>,
    },
    /// The CA's renewal information for the current certificate.
    Ari(AriState),
}

/// What a zone change publishes for a section: once every zone listed has
/// been changed, the section's new records count as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishMark {
    pub section: Section,
    /// `(provider, zone)` of each zone change the section's records are in.
    pub zones: Vec<(usize, Name)>,
    /// The longest TTL of the RRsets the records join, before the change.
    pub joined_ttl: u32,
    /// The domains the records went to (DKIM records the names).
    pub domains: Vec<String>,
}

/// The steps of one round.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Sections whose new records this round's zone changes publish.
    pub marks: Vec<PublishMark>,
    /// What the plan keeps as it is, and why (`[cert:web] kept: valid until ...`).
    pub info: Vec<(Section, String)>,
    /// Sections that cannot go on, and why (they fail this run).
    pub errors: Vec<(Section, String)>,
}

impl Plan {
    /// The steps to run in this round.
    pub fn runnable(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.is_now())
    }

    /// True when this round has nothing to do.
    pub fn is_idle(&self) -> bool {
        self.runnable().next().is_none()
    }
}

/// Plans one round.
pub fn plan(input: &Input<'_>) -> Plan {
    let mut plan = Plan::default();
    let skip = |section: &Section| input.failed.contains(section);
    if input.request.prepares() || input.request.rolls_over() || input.request.cleans_up() {
        for cert in &input.config.certs {
            let section = Section::Cert(cert.name.clone());
            if !skip(&section) {
                cert::plan(input, cert, &mut plan);
            }
        }
        for dkim in input.config.dkims.iter().filter(|d| !d.domains.is_empty()) {
            let section = Section::Dkim(dkim.name.clone());
            if !skip(&section) {
                dkim::plan(input, dkim, &mut plan);
            }
        }
        for dh in &input.config.dhparams {
            let section = Section::DhParam(dh.name.clone());
            if !skip(&section) {
                dhparam::plan(input, dh, &mut plan);
            }
        }
    }
    if input.request.rolls_over() {
        let deploying: Vec<Section> = plan
            .steps
            .iter()
            .filter(|s| s.is_now() && deploys(&s.action))
            .map(|s| s.section.clone())
            .collect();
        for service in &input.config.services {
            let section = Section::Service(service.name.clone());
            if !skip(&section) {
                services::plan(input, service, &deploying, &mut plan);
            }
        }
    }
    orders::limit(
        &mut plan,
        input.state,
        input.config.cdm.max_orders_per_hour,
        input.now,
    );
    zones::plan(input, &mut plan);
    plan
}

/// True for the steps that put material in place (services reload after them).
pub fn deploys(action: &Action) -> bool {
    matches!(
        action,
        Action::DeployCert(_) | Action::InstallDkim(_) | Action::DeployDh { .. }
    )
}
