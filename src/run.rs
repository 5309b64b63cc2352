//! One invocation: read the configuration, hold the state lock, and run the
//! request in rounds of observe → plan → execute until nothing more is due
//! now. Exit status 0 success, 1 a step failed, 2 usage or configuration
//! error (docs/cli.md).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use log::{error, info, warn};

use crate::apply;
use crate::cli::{Action as CliAction, Args, Phase};
use crate::clock;
use crate::cluster::Work;
use crate::config::cert;
use crate::config::ini::{self, Ini};
use crate::config::model::{self, Config};
use crate::dns::provider::{self, Providers};
use crate::dns::record::Name;
use crate::observe;
use crate::plan::observed::ZoneView;
use crate::plan::render;
use crate::plan::timing::refusal;
use crate::plan::{self, Action, Input, Plan, Request, Section, When};
use crate::state::{self, LoggedStep, PhaseStatus, Store};
use crate::status;

/// The process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    PhaseFailed = 1,
    ConfigError = 2,
}

/// A run has at most this many rounds; each round's steps change the state
/// so that they are not planned again, so a run needs about five.
const MAX_ROUNDS: usize = 12;

/// Runs the invocation described by `args`.
pub async fn run(args: &Args) -> Exit {
    let Some(config) = load_config(args) else {
        return Exit::ConfigError;
    };
    let providers = match Providers::build(&config) {
        Ok(providers) => providers,
        Err(e) => {
            error!("{e}");
            return Exit::ConfigError;
        }
    };
    let exit = match (args.action(), &config.cdm.cluster) {
        (CliAction::Check | CliAction::Status, _) | (_, None) => {
            run_action(&config, &providers, args).await
        }
        (CliAction::Auto, Some(cluster)) => {
            crate::cluster::run(&config, &providers, cluster, args, Work::Auto).await
        }
        (CliAction::Run(phase), Some(cluster)) => {
            crate::cluster::run(&config, &providers, cluster, args, Work::Phase(phase)).await
        }
        (CliAction::Next, Some(cluster)) => {
            crate::cluster::run(&config, &providers, cluster, args, Work::Next).await
        }
        (CliAction::ForgetNode, Some(cluster)) => {
            let name = args.forget_node.as_deref().unwrap_or_default();
            crate::cluster::forget_node(&config, cluster, name).await
        }
        (CliAction::Adopt, Some(_)) => {
            error!(
                "--adopt is not available with store = etcd: adopt on one host with store = local, then switch it to store = etcd; the first node to coordinate takes its state and material into the store, and the other nodes deploy them (docs/cluster.md)"
            );
            Exit::ConfigError
        }
    };
    providers.close().await;
    exit
}

/// The actions of a single host (`store = local`), and --check and --status.
async fn run_action(config: &Config, providers: &Providers, args: &Args) -> Exit {
    match args.action() {
        CliAction::Check => {
            print!("{}", crate::check::render_config(config, providers));
            print!("{}", crate::check::render_dnssec(config, providers).await);
            Exit::Success
        }
        CliAction::Status => {
            // With store = etcd: the nodes too, after the text or in the document.
            let nodes = match &config.cdm.cluster {
                Some(cluster) => Some(crate::cluster::status(config, cluster).await),
                None => None,
            };
            let exit = status::print(config, providers, args.json, nodes.as_ref()).await;
            match nodes {
                Some(Err(e)) => {
                    error!("{e}");
                    Exit::PhaseFailed
                }
                _ => exit,
            }
        }
        CliAction::ForgetNode => {
            error!("--forget-node is for store = etcd (docs/cluster.md)");
            Exit::ConfigError
        }
        CliAction::Adopt => run_adopt(config, providers, args).await,
        CliAction::Auto => run_request(config, providers, Request::Auto, None, args).await,
        CliAction::Next => match state::load(&config.cdm.statedir) {
            Ok(state) => {
                let phase = state.next_phase();
                run_request(config, providers, request_of(phase), Some(phase), args).await
            }
            Err(e) => {
                error!("{e}");
                Exit::PhaseFailed
            }
        },
        CliAction::Run(phase) => {
            run_request(config, providers, request_of(phase), Some(phase), args).await
        }
    }
}

pub(crate) fn request_of(phase: Phase) -> Request {
    match phase {
        Phase::Update => Request::Update,
        Phase::Prepare => Request::Prepare,
        Phase::Rollover => Request::Rollover,
        Phase::Cleanup => Request::Cleanup,
    }
}

/// Reads, merges and checks the configuration; logs every error and warning.
fn load_config(args: &Args) -> Option<Config> {
    let sources = match args.sources() {
        Ok(sources) => sources,
        Err(e) => {
            error!("{e}");
            return None;
        }
    };
    let built = ini::read(&sources).and_then(|ini| {
        warn_readable_secrets(&ini);
        model::build(&ini)
    });
    match built {
        Ok(config) => {
            for warning in &config.warnings {
                warn!("{warning}");
            }
            info!("Interpreting config sections");
            for module in &config.modules {
                info!("  - {module}");
            }
            Some(config)
        }
        Err(errors) => {
            for e in &errors {
                error!("{e}");
            }
            error!(
                "configuration invalid ({} error{}); nothing was changed",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            None
        }
    }
}

/// Warns about configuration files that hold a secret and are readable by others.
fn warn_readable_secrets(ini: &Ini) {
    let mut warned = Vec::new();
    for (_, section) in ini.sections() {
        for (key, value) in &section.entries {
            let source = value.span.source.as_ref();
            let secret = provider::is_secret_key(key)
                || cert::SECRET_KEYS.contains(&key.as_str())
                || key == "storepassword";
            if !secret || source == "--config-content" || warned.contains(&source) {
                continue;
            }
            let readable = std::fs::metadata(Path::new(source))
                .map(|m| m.permissions().mode() & 0o004 != 0)
                .unwrap_or(false);
            if readable {
                warn!(
                    "{source} holds a secret (key \"{key}\") and is readable by others; restrict it with chmod 600"
                );
                warned.push(source);
            }
        }
    }
}

/// `--adopt` under the state lock (with `--dry-run`: checks only, no lock).
async fn run_adopt(config: &Config, providers: &Providers, args: &Args) -> Exit {
    let statedir = &config.cdm.statedir;
    let _lock = if args.dry_run {
        None
    } else {
        match state::lock(statedir) {
            Ok(lock) => Some(lock),
            Err(e) => {
                error!("{e}");
                return Exit::PhaseFailed;
            }
        }
    };
    let state = match state::load(statedir) {
        Ok(state) => state,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let store = Store::new(statedir, state, args.dry_run);
    if crate::adopt::adopt(config, providers, &store, args.force).await {
        Exit::Success
    } else {
        Exit::PhaseFailed
    }
}

/// Runs `request` (a phase, or `--auto`) under the state lock.
async fn run_request(
    config: &Config,
    providers: &Providers,
    request: Request,
    phase: Option<Phase>,
    args: &Args,
) -> Exit {
    let statedir = &config.cdm.statedir;
    // A dry run takes no lock and writes nothing; it reads the state if there is one.
    let _lock = if args.dry_run {
        None
    } else {
        match state::lock(statedir) {
            Ok(lock) => Some(lock),
            Err(e) => {
                error!("{e}");
                return Exit::PhaseFailed;
            }
        }
    };
    let state = match state::load(statedir) {
        Ok(state) => state,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let store = Store::new(statedir, state, args.dry_run);
    if let Some(phase) = phase
        && let Err(e) = store
            .update(|s| s.record(phase, PhaseStatus::Running, clock::now()))
            .await
    {
        error!("{e}");
        return Exit::PhaseFailed;
    }
    let name = phase.map_or("auto", Phase::name);
    if args.dry_run {
        info!("Running phase: {name} (dry run: nothing will be changed)");
    } else {
        info!("Running phase: {name}");
    }
    if config.domains.iter().all(|d| !plan::zones::has_static(d)) && request == Request::Update {
        info!("No static records configured");
    }
    let ok = drive(config, providers, &store, request, args.force, args.dry_run).await;
    let now = clock::now();
    let saved = store.update(|s| s.record_outcome(phase, ok, now)).await;
    if let Err(e) = &saved {
        error!("{e}");
    }
    if phase.is_some() && !config.cdm.postwait.is_zero() && !args.dry_run {
        info!("Waiting {} s (postwait)", config.cdm.postwait.as_secs_f64());
        tokio::time::sleep(config.cdm.postwait).await;
    }
    if ok && saved.is_ok() {
        Exit::Success
    } else {
        match phase {
            Some(phase) => error!("phase {} failed", phase.name()),
            None => error!("some steps failed; the next run tries them again"),
        }
        Exit::PhaseFailed
    }
}

/// The rounds of a run. Returns true when nothing failed.
pub(crate) async fn drive(
    config: &Config,
    providers: &Providers,
    store: &Store,
    request: Request,
    force: bool,
    dry_run: bool,
) -> bool {
    let mut ok = true;
    let mut failed: BTreeSet<Section> = BTreeSet::new();
    let mut said: BTreeSet<String> = BTreeSet::new();
    let mut zones: Option<(Vec<ZoneView>, std::collections::BTreeMap<Name, String>)> = None;
    for round in 0..MAX_ROUNDS {
        let first_round = round == 0;
        // --force is for this run's first decision on each section, not for
        // the material that decision made.
        let force = force && first_round;
        let now = clock::now();
        let state = store.snapshot().await;
        let mut observed = observe::material(config, &state);
        let needs = {
            let input = Input {
                config,
                state: &state,
                observed: &observed,
                request,
                force,
                now,
                first_round,
                failed: &failed,
            };
            let needs = plan::needs::needs(&input);
            if zones.is_none() && !needs.domains.is_empty() {
                let read = observe::zones(&input, providers, &needs.domains).await;
                for (domain, e) in &read.1 {
                    error!("[domain:{domain}]: {e}; its records are left as they are");
                    ok = false;
                }
                for view in &read.0 {
                    if let Err(e) = &view.records {
                        error!("zone {}: {e}; nothing in this zone was changed", view.zone);
                        ok = false;
                    }
                }
                zones = Some(read);
            }
            needs
        };
        if let Some((views, errors)) = &zones {
            observed.zones = views.clone();
            observed.zone_errors = errors.clone();
        }
        {
            let input = Input {
                config,
                state: &state,
                observed: &observed,
                request,
                force,
                now,
                first_round,
                failed: &failed,
            };
            let mut network = observed.clone();
            observe::network(&input, providers, &needs, &mut network).await;
            observed = network;
        }
        let input = Input {
            config,
            state: &state,
            observed: &observed,
            request,
            force,
            now,
            first_round,
            failed: &failed,
        };
        let mut plan = plan::plan(&input);
        if let Some(shared) = store.shared()
            && let Err(e) = shared.before_round(&state, &mut plan)
        {
            error!("{e}");
            return false;
        }
        ok &= report(&plan, request, &mut failed, &mut said);
        if dry_run {
            for line in render::dry_run(config, &plan) {
                println!("{line}");
            }
            return ok;
        }
        let progress = plan.runnable().any(|s| !log_only(s));
        if !progress && !first_round {
            break;
        }
        let outcomes = apply::execute(config, providers, store, &plan).await;
        let stamp = clock::now();
        let mut log: Vec<(String, LoggedStep, bool)> = Vec::new();
        for outcome in &outcomes {
            let step = render::verb(&outcome.step.action).to_string();
            match &outcome.result {
                Ok(()) => {
                    if let (Action::ChangeZone(change), Some((views, _))) =
                        (&outcome.step.action, zones.as_mut())
                    {
                        remember(views, change);
                    }
                    log.push((
                        outcome.step.section.key(),
                        LoggedStep {
                            at: stamp,
                            step,
                            error: None,
                        },
                        true,
                    ));
                }
                Err(e) => {
                    ok = false;
                    failed.insert(outcome.step.section.clone());
                    log.push((
                        outcome.step.section.key(),
                        LoggedStep {
                            at: stamp,
                            step,
                            error: Some(e.to_string()),
                        },
                        false,
                    ));
                }
            }
        }
        if !log.is_empty()
            && let Err(e) = store
                .update(|s| {
                    for (key, entry, success) in log {
                        let slot = s.sections.entry(key).or_default();
                        if success {
                            slot.last_success = Some(entry);
                        } else {
                            slot.last_error = Some(entry);
                        }
                    }
                })
                .await
        {
            error!("{e}");
            ok = false;
        }
        if !progress {
            break;
        }
        if round + 1 == MAX_ROUNDS {
            warn!("stopping after {MAX_ROUNDS} rounds; the next run goes on");
        }
    }
    ok
}

/// A zone step that only logs (nothing to change).
fn log_only(step: &plan::Step) -> bool {
    matches!(&step.action, Action::ChangeZone(c) if c.changes.is_empty())
}

/// Logs what the plan keeps and why, its errors, and (for an explicit
/// rollover) the deploys it refuses. Returns false when any of that is a
/// failure of the run.
fn report(
    plan: &Plan,
    request: Request,
    failed: &mut BTreeSet<Section>,
    said: &mut BTreeSet<String>,
) -> bool {
    let mut ok = true;
    let mut once = |line: String, level: log::Level| {
        if said.insert(line.clone()) {
            log::log!(level, "{line}");
        }
    };
    for (section, message) in &plan.info {
        once(format!("{section} {message}"), log::Level::Info);
    }
    for (section, message) in &plan.errors {
        error!("{section} {message}");
        failed.insert(section.clone());
        ok = false;
    }
    for step in plan.steps.iter().filter(|s| !s.is_now()) {
        let refused = request == Request::Rollover && plan::deploys(&step.action);
        if !refused {
            once(render::summary(step), log::Level::Info);
            continue;
        }
        let why = match &step.when {
            When::Waiting(why) => why.clone(),
            when => refusal(when, &step.reason),
        };
        match &step.action {
            Action::DeployCert(prepared) => error!(
                "{} not rolled over: DANE clients might find no TLSA record for serial {}: {why}. Run --rollover again then, or deploy anyway with --force",
                step.section, prepared.serial
            ),
            Action::InstallDkim(prepared) => error!(
                "{} not rolled over: mail signed with selector {} might not be verified yet: {why}. Run --rollover again then, or install it anyway with --force",
                step.section, prepared.selector
            ),
            _ => error!("{} not rolled over: {why}", step.section),
        }
        failed.insert(step.section.clone());
        ok = false;
    }
    ok
}

/// Applies a zone change that succeeded to the records observed, so later
/// rounds plan against the zone as it is now without reading it again.
fn remember(views: &mut [ZoneView], change: &plan::ZoneChange) {
    let Some(view) = views
        .iter_mut()
        .find(|v| v.provider == change.provider && v.zone == change.zone)
    else {
        return;
    };
    let Ok(records) = view.records.as_mut() else {
        return;
    };
    records.retain(|r| !change.changes.deletes.iter().any(|d| d.same_as(r)));
    for add in &change.changes.adds {
        if add.record_type() == crate::dns::record::RecordType::Soa {
            records.retain(|r| r.record_type() != crate::dns::record::RecordType::Soa);
        }
        if !records.iter().any(|r| r.same_as(add)) {
            records.push(add.clone());
        }
    }
}
