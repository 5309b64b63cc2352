//! Carrying out a plan: the only module with side effects. Each step's own
//! module journals its intent in the state before the effect and the result
//! after it; this one runs a round's steps in a fixed order: state notes, zone
//! changes (concurrently, one per zone), new material (concurrently), deploys
//! (concurrently), service reloads (in configuration order, after the deploys),
//! deletions. A step that fails is reported with its section; the others go on.

pub(crate) mod cert;
pub(crate) mod command;
pub(crate) mod dhparam;
pub(crate) mod dkim;
pub(crate) mod dns01;
pub(crate) mod error;
pub(crate) mod fs;
pub(crate) mod issue;
pub(crate) mod mtasts;
pub(crate) mod services;
pub(crate) mod wait;
pub mod zones;

use futures_util::StreamExt;
use futures_util::future::join_all;
use log::{error, info};

use crate::clock;
use crate::config::model::Config;
use crate::crashpoint;
use crate::dns::provider::{ProviderError, Providers};
use crate::plan::{Action, Deletion, Note, Plan, PublishMark, Section, Step, deploys};
use crate::progress;
use crate::state::{State, Store};
pub use error::StepError;

/// What became of one step.
#[derive(Debug)]
pub struct Outcome {
    pub step: Step,
    pub result: Result<(), StepError>,
}

/// Runs the steps of `plan` that are due now, in the order described above.
pub async fn execute(
    config: &Config,
    providers: &Providers,
    store: &Store,
    plan: &Plan,
) -> Vec<Outcome> {
    let runnable: Vec<&Step> = plan.runnable().collect();
    let of = |pick: fn(&Action) -> bool| -> Vec<&Step> {
        runnable
            .iter()
            .copied()
            .filter(|s| pick(&s.action))
            .collect()
    };
    let mut outcomes = Vec::new();
    let steps = progress::Steps::start("steps of this round", runnable.len());

    for step in of(|a| matches!(a, Action::Note(_))) {
        let result = note(store, step).await;
        outcomes.push(outcome(step, result));
        progress::step_done(&steps);
    }

    let zone_steps = of(|a| matches!(a, Action::ChangeZone(_)));
    let results = zones::apply_all(config, providers, &zone_steps).await;
    let mut changed_ok = Vec::new();
    for (step, result) in zone_steps.into_iter().zip(results) {
        if let (Action::ChangeZone(change), Ok(())) = (&step.action, &result) {
            changed_ok.push((change.provider, change.zone.clone()));
        }
        outcomes.push(outcome(step, result));
        progress::step_done(&steps);
    }
    for mark in &plan.marks {
        if mark.zones.iter().all(|z| changed_ok.contains(z)) {
            let saved = store.update(|s| publish(s, mark, clock::now())).await;
            if let Err(e) = saved {
                error!("{} {e}", mark.section);
            }
        }
    }

    // Policy files after the zone changes: a change of this round publishes
    // only the id of a policy already in place (plan::mtasts).
    for step in of(|a| matches!(a, Action::MtaStsPolicy(_))) {
        let Action::MtaStsPolicy(file) = &step.action else {
            continue;
        };
        let result = mtasts::apply(file);
        outcomes.push(outcome(step, result));
        progress::step_done(&steps);
    }

    // Certificates are issued together (apply::issue), beside the other new
    // material, which is made in plan order, at most `maxconcurrency` at once.
    let issuing = of(|a| matches!(a, Action::Issue(_)));
    let making = of(|a| {
        matches!(
            a,
            Action::MakeDkimKey(_) | Action::MakeDhParams | Action::MakeNextKey
        )
    });
    let made = futures_util::stream::iter(&making)
        .map(|step| async {
            let result = guarded(&step.section, make(config, store, step)).await;
            progress::step_done(&steps);
            result
        })
        .buffered(config.cdm.max_concurrency)
        .collect::<Vec<Result<(), StepError>>>();
    let (issued, made) = futures_util::future::join(
        issue_certs(config, providers, store, &issuing, &steps),
        made,
    )
    .await;
    for (step, result) in issuing.into_iter().zip(issued) {
        outcomes.push(outcome(step, result));
    }
    for (step, result) in making.into_iter().zip(made) {
        outcomes.push(outcome(step, result));
    }

    let deploying = of(deploys);
    let results = join_all(deploying.iter().map(|step| async {
        let result = guarded(&step.section, deploy(config, store, step)).await;
        progress::step_done(&steps);
        result
    }))
    .await;
    let mut deployed = Vec::new();
    for (step, result) in deploying.into_iter().zip(results) {
        if result.is_ok() {
            deployed.push(step.section.clone());
        }
        outcomes.push(outcome(step, result));
    }

    let reloads = of(|a| matches!(a, Action::Reload(_)));
    if !deployed.is_empty() && !reloads.is_empty() {
        crashpoint::reached("services:before-reload");
    }
    let failed_deploys: Vec<Section> = outcomes
        .iter()
        .filter(|o| deploys(&o.step.action) && o.result.is_err())
        .map(|o| o.step.section.clone())
        .collect();
    for step in reloads {
        let Action::Reload(reload) = &step.action else {
            continue;
        };
        let after: Vec<&Section> = reload
            .after
            .iter()
            .filter(|s| !failed_deploys.contains(s))
            .collect();
        if after.is_empty() && !reload.missing_file {
            info!(
                "{} nothing it uses was rolled over; not reloaded",
                step.section
            );
            continue;
        }
        let why = if after.is_empty() {
            "its configuration file is missing".to_string()
        } else {
            format!(
                "after {}",
                after
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let result = match config
            .services
            .iter()
            .find(|s| Section::Service(s.name.clone()) == step.section)
        {
            Some(service) => {
                guarded(
                    &step.section,
                    services::reload(config, store, service, &why),
                )
                .await
            }
            None => Ok(()),
        };
        outcomes.push(outcome(step, result));
        progress::step_done(&steps);
    }

    for step in of(|a| matches!(a, Action::Delete(_))) {
        let result = guarded(&step.section, delete(config, store, step)).await;
        outcomes.push(outcome(step, result));
        progress::step_done(&steps);
    }
    outcomes
}

/// Runs one step's work so that a panic in it (a bug) becomes that step's
/// error, logged with its section like any other failure, instead of ending
/// the whole run.
pub async fn guarded<T>(
    section: &Section,
    work: impl std::future::Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without message".into());
            log::debug!("{section}: the step panicked");
            Err(StepError::Panicked(message))
        }
    }
}

fn outcome(step: &Step, result: Result<(), StepError>) -> Outcome {
    if let Err(e) = &result {
        for line in failure_message(step, e).lines() {
            error!("{line}");
        }
    }
    Outcome {
        step: step.clone(),
        result,
    }
}

/// The log line of a failed step: its section, what failed, and what stays.
pub fn failure_message(step: &Step, e: &StepError) -> String {
    let section = &step.section;
    match &step.action {
        Action::ChangeZone(change) => match e {
            StepError::Partial(message) => format!("zone {}: {message}", change.zone),
            StepError::Provider(ProviderError::Partial {
                server,
                applied,
                refused,
                ..
            }) => {
                let mut lines: Vec<String> = refused
                    .iter()
                    .map(|r| {
                        format!(
                            "zone {}: {server} did not make the change \"{}\": {}",
                            change.zone, r.change, r.answer
                        )
                    })
                    .collect();
                lines.push(format!(
                    "zone {}: {} change(s) not made, {applied} made; the next run retries what is missing",
                    change.zone,
                    refused.len()
                ));
                lines.join("\n")
            }
            _ => format!(
                "zone {}: {e}; none of the changes above were made",
                change.zone
            ),
        },
        Action::Issue(_) => {
            format!("{section}: {e}; the current certificate and its files are unchanged")
        }
        Action::MakeDkimKey(_) => {
            format!("{section} {e}; the current key and its configuration are unchanged")
        }
        Action::MakeDhParams => format!("{section}: {e}"),
        Action::MakeNextKey => format!("{section}: the next key: {e}"),
        Action::DeployCert(_) | Action::DeployDh { .. } => {
            format!("{section} rollover failed: {e}")
        }
        Action::InstallDkim(_) => format!(
            "{section} rollover failed: {e}; the current key and its configuration stay in place"
        ),
        Action::Reload(_) => {
            format!("{section} reload failed: {e}; the next rollover tries again")
        }
        Action::Delete(_) | Action::Note(_) => format!("{section} {e}"),
        Action::MtaStsPolicy(_) => format!(
            "{section} MTA-STS policy: {e}; its TXT record and the MX records are left as they are"
        ),
    }
}

/// Records a new fact in the state.
async fn note(store: &Store, step: &Step) -> Result<(), StepError> {
    let Action::Note(note) = &step.action else {
        return Ok(());
    };
    let section = step.section.clone();
    let note = note.clone();
    store
        .update(move |s| match (&section, note) {
            (Section::Cert(name), Note::Served(served)) => {
                if let Some(p) = s.certs.get_mut(name).and_then(|c| c.prepared.as_mut()) {
                    p.tlsa_served = Some(served);
                }
            }
            (Section::Dkim(name), Note::Served(served)) => {
                if let Some(p) = s.dkim.get_mut(name).and_then(|d| d.prepared.as_mut()) {
                    p.served = Some(served);
                }
            }
            (Section::Cert(name), Note::Ari(ari)) => {
                s.certs.entry(name.clone()).or_default().ari = Some(ari);
            }
            (
                section,
                Note::Published {
                    joined_ttl,
                    domains,
                },
            ) => {
                let mark = PublishMark {
                    section: section.clone(),
                    zones: Vec::new(),
                    joined_ttl,
                    domains,
                };
                publish(s, &mark, clock::now());
            }
            _ => {}
        })
        .await?;
    Ok(())
}

/// Records that a section's new records are published.
fn publish(state: &mut State, mark: &PublishMark, now: chrono::DateTime<chrono::Utc>) {
    match &mark.section {
        Section::Cert(name) => {
            if let Some(p) = state.certs.get_mut(name).and_then(|c| c.prepared.as_mut()) {
                p.tlsa_joined_ttl = Some(p.tlsa_joined_ttl.unwrap_or(0).max(mark.joined_ttl));
                if p.tlsa_published_at.is_none() {
                    p.tlsa_published_at = Some(now);
                }
            }
        }
        Section::Dkim(name) => {
            let Some(entry) = state.dkim.get_mut(name) else {
                return;
            };
            if let Some(current) = entry.current.as_mut() {
                merge(&mut current.domains, &mark.domains);
            }
            if let Some(p) = entry.prepared.as_mut() {
                p.joined_ttl = Some(p.joined_ttl.unwrap_or(0).max(mark.joined_ttl));
                // A domain added later: its record must be served long enough too.
                if merge(&mut p.domains, &mark.domains) || p.published.is_none() {
                    p.published = Some(now);
                    p.served = None;
                }
            }
        }
        _ => {}
    }
}

/// Adds `names` to `into`; true when any was new.
fn merge(into: &mut Vec<String>, names: &[String]) -> bool {
    let mut grew = false;
    for name in names {
        if !into.contains(name) {
            into.push(name.clone());
            grew = true;
        }
    }
    grew
}

/// Issues the certificates of the `Issue` steps, all together; one result per step.
async fn issue_certs(
    config: &Config,
    providers: &Providers,
    store: &Store,
    steps: &[&Step],
    progress: &Option<progress::Steps>,
) -> Vec<Result<(), StepError>> {
    let mut requests = Vec::new();
    let mut placed = Vec::new();
    for step in steps {
        let (Action::Issue(issue), Section::Cert(name)) = (&step.action, &step.section) else {
            placed.push(None);
            continue;
        };
        let Some(cert) = config.certs.iter().find(|c| &c.name == name) else {
            placed.push(None);
            continue;
        };
        info!(
            "[cert:{name}] issuing a certificate for {}: {}",
            issue.names.join(", "),
            step.reason
        );
        placed.push(Some(requests.len()));
        requests.push(issue::Request { cert, issue });
    }
    let all = Section::Cert(
        requests
            .iter()
            .map(|r| r.cert.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut results: Vec<Option<Result<(), StepError>>> = if requests.is_empty() {
        Vec::new()
    } else {
        match guarded(&all, async {
            Ok(issue::issue_all(config, providers, store, &requests).await)
        })
        .await
        {
            Ok(results) => results.into_iter().map(Some).collect(),
            Err(e) => {
                let text = e.to_string();
                requests
                    .iter()
                    .map(|_| Some(Err(StepError::Panicked(text.clone()))))
                    .collect()
            }
        }
    };
    placed
        .into_iter()
        .map(|at| {
            progress::step_done(progress);
            at.and_then(|i| results.get_mut(i)?.take())
                .unwrap_or(Ok(()))
        })
        .collect()
}

async fn make(config: &Config, store: &Store, step: &Step) -> Result<(), StepError> {
    match (&step.action, &step.section) {
        (Action::MakeNextKey, Section::Cert(name)) => {
            match config.certs.iter().find(|c| &c.name == name) {
                Some(cert) => cert::make_next_key(store, cert).await,
                None => Ok(()),
            }
        }
        (Action::MakeDkimKey(key), Section::Dkim(name)) => {
            match config.dkims.iter().find(|d| &d.name == name) {
                Some(dkim) => dkim::make(store, dkim, key, &step.reason).await,
                None => Ok(()),
            }
        }
        (Action::MakeDhParams, Section::DhParam(name)) => {
            match config.dhparams.iter().find(|d| &d.name == name) {
                Some(dh) => dhparam::make(store, dh, &step.reason).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

async fn deploy(config: &Config, store: &Store, step: &Step) -> Result<(), StepError> {
    match (&step.action, &step.section) {
        (Action::DeployCert(prepared), Section::Cert(name)) => {
            if step.reason.contains("(--force)") {
                log::warn!("[cert:{name}] deploying {}", step.reason);
            }
            match config.certs.iter().find(|c| &c.name == name) {
                Some(c) => cert::deploy(store, c, prepared).await,
                None => Ok(()),
            }
        }
        (Action::InstallDkim(prepared), Section::Dkim(name)) => {
            if step.reason.contains("(--force)") {
                log::warn!("[dkim:{name}] installing {}", step.reason);
            }
            match config.dkims.iter().find(|d| &d.name == name) {
                Some(d) => dkim::install(config, store, d, prepared).await,
                None => Ok(()),
            }
        }
        (Action::DeployDh { material, fresh }, Section::DhParam(name)) => {
            match config.dhparams.iter().find(|d| &d.name == name) {
                Some(dh) => dhparam::deploy(store, dh, material, *fresh).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

async fn delete(config: &Config, store: &Store, step: &Step) -> Result<(), StepError> {
    let Action::Delete(deletion) = &step.action else {
        return Ok(());
    };
    match (deletion, &step.section) {
        (Deletion::CertFiles(old), Section::Cert(name)) => cert::delete(store, name, old).await,
        (Deletion::CertVersions { dir }, _) => cert::prune_versions(dir),
        (Deletion::DhFile(old), Section::DhParam(name)) => dhparam::delete(store, name, old).await,
        (Deletion::DkimKey(old), Section::Dkim(name)) => {
            match config.dkims.iter().find(|d| &d.name == name) {
                Some(d) => dkim::delete(config, store, d, old).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_step_becomes_its_error() {
        let section = Section::Cert("web".into());
        let result: Result<(), StepError> = guarded(&section, async {
            let answers: Vec<u8> = Vec::new();
            if answers.is_empty() {
                panic!("an impossible state");
            }
            Ok(())
        })
        .await;
        match result {
            Err(StepError::Panicked(message)) => assert_eq!(message, "an impossible state"),
            other => panic!("expected Panicked, got {other:?}"),
        }
        let fine: Result<u8, StepError> = guarded(&section, async { Ok(7) }).await;
        assert_eq!(fine.ok(), Some(7));
    }
}
