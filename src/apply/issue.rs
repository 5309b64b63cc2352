//! Issuing the certificates of a round together. Each certificate has its own
//! key and its own order, but the steps are taken for all of them at once, so
//! that what can be shared is done once:
//!
//! 1. one ACME account (connection, directory, nonce) for the certificates of
//!    one CA and account settings;
//! 2. keys written and journalled (one state write), orders created or
//!    resumed (one state write for every order URL), their authorizations
//!    read, at most `[cdm] maxconcurrency` requests in flight;
//! 3. the zones of the domains looked up once per zone, the challenge
//!    records of every order in one change per zone, and one wait per zone
//!    until every authoritative server serves them;
//! 4. each order answered at once, then polled as the CA asks ([`crate::acme`]),
//!    finalized and downloaded; the challenge records go (one change per zone)
//!    while the last orders finalize;
//! 5. the files of every certificate, then one state write for all of them.
//!
//! The journal is that of a single issuance (docs/architecture.md): the key on
//! disk and the pending issuance in the state before an order is created, its
//! URL in the state before its challenges are published, so a re-run after a
//! crash resumes each order. A failure of one certificate (its order, its
//! zone) is its own; the others go on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use log::{info, warn};

use super::cert::{
    CERT_FILE, CHAIN_FILE, FULLCHAIN_FILE, KEY_FILE, new_material_dir, pem_blocks, read_key,
    timestamp,
};
use super::dns01::ProviderDns01;
use super::error::StepError;
use super::fs::{self as afs, PRIVATE_FILE, PUBLIC_FILE};
use crate::acme::http::AcmeHttp;
use crate::acme::{
    AcmeClient, AcmeConfig, AcmeError, Challenges, Dns01, Issued, Limits, PendingOrder,
};
use crate::clock;
use crate::config::cert::CertSection;
use crate::config::model::{Config, Domain};
use crate::crashpoint;
use crate::dns::provider::{DnsProvider, Providers};
use crate::dns::record::Name;
use crate::material::cert::{KeyPem, generate_key};
use crate::plan::Issue;
use crate::plan::cert::key_type_name;
use crate::state::{CertMaterial, PendingIssue, Store};

/// A certificate to issue: its section and what the plan decided.
pub(crate) struct Request<'a> {
    pub cert: &'a CertSection,
    pub issue: &'a Issue,
}

/// Issues every requested certificate; one result per request, in order.
pub(crate) async fn issue_all(
    config: &Config,
    providers: &Providers,
    store: &Store,
    requests: &[Request<'_>],
) -> Vec<Result<(), StepError>> {
    let mut results: Vec<Option<Result<(), StepError>>> = requests.iter().map(|_| None).collect();
    // Certificates of one CA with the same account settings share the account.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|g| same_account(requests[g[0]].cert, request.cert))
        {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    // One group after the other: groups of the same CA share its account file.
    for group in groups {
        let members: Vec<&Request<'_>> = group.iter().map(|i| &requests[*i]).collect();
        let outcomes = issue_group(config, providers, store, &members).await;
        for (i, outcome) in group.into_iter().zip(outcomes) {
            results[i] = Some(outcome);
        }
    }
    results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
}

/// Whether two certificate sections use the same ACME account.
fn same_account(a: &CertSection, b: &CertSection) -> bool {
    let eab = |c: &CertSection| {
        c.eab
            .as_ref()
            .map(|e| (e.kid.clone(), e.hmac_key.expose().to_string()))
    };
    a.directory == b.directory
        && a.email == b.email
        && a.cacert == b.cacert
        && a.rate_limit_wait == b.rate_limit_wait
        && eab(a) == eab(b)
}

/// One certificate on its way.
struct Job<'a> {
    request: &'a Request<'a>,
    dir: PathBuf,
    key: KeyPem,
    /// A new key and directory, not yet journalled.
    fresh: bool,
    order: Option<PendingOrder>,
    challenges: Challenges,
    issued: Option<Issued>,
    failed: Option<StepError>,
}

impl Job<'_> {
    fn name(&self) -> &str {
        &self.request.cert.name
    }

    fn live(&self) -> bool {
        self.failed.is_none()
    }
}

/// How long each step of a group took (wall time), for the log.
#[derive(Default)]
struct Timings(Vec<(&'static str, Duration)>);

impl Timings {
    fn lap(&mut self, step: &'static str, since: &mut Instant) {
        let now = Instant::now();
        self.0.push((step, now - *since));
        *since = now;
    }
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(step, took)| format!("{step} {} ms", took.as_millis()))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

async fn issue_group(
    config: &Config,
    providers: &Providers,
    store: &Store,
    requests: &[&Request<'_>],
) -> Vec<Result<(), StepError>> {
    let started = Instant::now();
    let mut lap = started;
    let mut timings = Timings::default();
    let concurrency = config.cdm.max_concurrency.max(1);
    let first = requests[0].cert;
    let acme_config = AcmeConfig {
        ca: first.directory.clone(),
        email: first.email.clone(),
        eab: first.eab.clone(),
        cacert: first.cacert.clone(),
        account_dir: store.statedir().join("accounts"),
        limits: Limits {
            max_retry_after: first.rate_limit_wait,
            ..Limits::default()
        },
    };
    let client = match AcmeClient::connect(&acme_config).await {
        Ok(client) => client,
        Err(e) => {
            let text = e.to_string();
            let mut first_error = Some(StepError::from(e));
            return requests
                .iter()
                .map(|_| {
                    Err(first_error
                        .take()
                        .unwrap_or_else(|| StepError::Shared(text.clone())))
                })
                .collect();
        }
    };
    timings.lap("account", &mut lap);

    // Keys first, each on disk before its issuance is journalled.
    let keys: Vec<Result<(PathBuf, KeyPem, bool), StepError>> =
        futures_util::stream::iter(requests)
            .map(|request| key_for(store.statedir().to_path_buf(), request))
            .buffered(concurrency)
            .collect()
            .await;
    let mut jobs: Vec<Job<'_>> = Vec::new();
    let mut failed: Vec<(usize, StepError)> = Vec::new();
    for (i, (request, key)) in requests.iter().zip(keys).enumerate() {
        match key {
            Ok((dir, key, fresh)) => jobs.push(Job {
                request,
                dir,
                key,
                fresh,
                order: None,
                challenges: Challenges::default(),
                issued: None,
                failed: None,
            }),
            Err(e) => failed.push((i, e)),
        }
    }
    if jobs.iter().any(|j| j.fresh) {
        crashpoint::reached("prepare:key-written");
        let now = clock::now();
        let journalled = store
            .update(|s| {
                for job in jobs.iter().filter(|j| j.fresh) {
                    s.certs.entry(job.name().to_string()).or_default().pending =
                        Some(PendingIssue {
                            dir: job.dir.clone(),
                            names: job.request.issue.names.clone(),
                            order_url: None,
                            started: now,
                        });
                }
            })
            .await;
        if let Err(e) = journalled {
            return fail_all(requests, e.into());
        }
    }
    timings.lap("keys", &mut lap);

    // Orders (new or resumed), their URLs journalled at once.
    let ordered: Vec<Result<PendingOrder, AcmeError>> = futures_util::stream::iter(&jobs)
        .map(|job| AcmeHttp::scoped(order_for(&client, job)))
        .buffered(concurrency)
        .collect()
        .await;
    for (job, result) in jobs.iter_mut().zip(ordered) {
        match result {
            Ok(order) => job.order = Some(order),
            Err(e) => job.failed = Some(e.into()),
        }
    }
    let urls: Vec<(String, String)> = jobs
        .iter()
        .filter_map(|j| Some((j.name().to_string(), j.order.as_ref()?.url().to_string())))
        .collect();
    if !urls.is_empty() {
        let recorded = store
            .update(|s| {
                for (name, url) in &urls {
                    if let Some(p) = s.certs.entry(name.clone()).or_default().pending.as_mut() {
                        p.order_url = Some(url.clone());
                    }
                }
            })
            .await;
        if let Err(e) = recorded {
            return fail_all(requests, e.into());
        }
        crashpoint::reached("prepare:order-created");
    }
    // What each order's challenges need (its authorizations, read once).
    let read: Vec<Option<Result<Challenges, AcmeError>>> =
        futures_util::stream::iter(jobs.iter_mut())
            .map(|job| AcmeHttp::scoped(challenges_of(&client, job)))
            .buffered(concurrency)
            .collect()
            .await;
    for (job, read) in jobs.iter_mut().zip(read) {
        match read {
            Some(Ok(challenges)) => job.challenges = challenges,
            Some(Err(e)) => job.failed = Some(e.into()),
            None => {}
        }
    }
    timings.lap("orders", &mut lap);

    // Every challenge record in one change per zone, one wait per zone.
    let domains = group_domains(config, providers, requests);
    let dns = ProviderDns01::new(
        domains.clone(),
        Some(group_timeout(config, requests)),
        concurrency,
    )
    .with_zones(domain_zones(providers, &domains, concurrency).await);
    let mut records = Vec::new();
    let mut owners = Vec::new();
    for (at, job) in jobs.iter().enumerate().filter(|(_, j)| j.live()) {
        records.extend(job.challenges.publish.iter().cloned());
        owners.extend(std::iter::repeat_n(at, job.challenges.publish.len()));
    }
    let leftovers: Vec<_> = jobs
        .iter()
        .flat_map(|j| j.challenges.leftovers.iter().cloned())
        .collect();
    let zones_changed;
    if records.is_empty() {
        zones_changed = 0;
    } else {
        let published = dns.publish_each(&records).await;
        timings.lap("publish", &mut lap);
        let served = dns.served_each(&published).await;
        timings.lap("served", &mut lap);
        zones_changed = dns.zones().await;
        for (at, (publish, serve)) in owners.iter().zip(published.iter().zip(&served)) {
            let job = &mut jobs[*at];
            if job.failed.is_some() {
                continue;
            }
            let (step, e) = match (publish, serve) {
                (Err(e), _) => ("publish", e),
                (Ok(()), Err(e)) => ("wait until served", e),
                _ => continue,
            };
            job.failed = Some(
                AcmeError::Dns01 {
                    step,
                    source: e.clone().into(),
                }
                .into(),
            );
        }
    }

    // Answer, wait for the CA, finalize; the records go once every order
    // has been checked.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let live: Vec<&mut Job<'_>> = jobs.iter_mut().filter(|j| j.live()).collect();
    let senders: Vec<_> = live.iter().map(|_| done_tx.clone()).collect();
    drop(done_tx);
    let finishing = futures_util::stream::iter(live.into_iter().zip(senders))
        .map(|(job, done)| {
            let client = &client;
            AcmeHttp::scoped(async move {
                let Some(order) = job.order.as_mut() else {
                    return;
                };
                let checked = match client.answer(order).await {
                    Ok(()) => client.validated(order).await,
                    Err(e) => Err(e),
                };
                drop(done);
                let result = match checked {
                    Ok(()) => client.finish(order, &job.key).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(issued) => job.issued = Some(issued),
                    Err(e) => job.failed = Some(e.into()),
                }
            })
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>();
    let removing = async {
        while done_rx.recv().await.is_some() {}
        let validated = Instant::now();
        if (!records.is_empty() || !leftovers.is_empty())
            && let Err(e) = dns.remove(&leftovers).await
        {
            warn!("removing DNS-01 challenge records failed: {e}; they stay in the zone");
        }
        validated
    };
    let (_, validated) = futures_util::future::join(finishing, removing).await;
    timings.0.push(("answer and validation", validated - lap));
    timings.lap("finalize and download", &mut lap);

    // Files, then one state write for all.
    let issued_any = jobs.iter().any(|j| j.issued.is_some());
    if issued_any {
        crashpoint::reached("prepare:issued");
    }
    let written: Vec<Option<Result<CertMaterial, StepError>>> = futures_util::stream::iter(&jobs)
        .map(|job| async move {
            let issued = job.issued.as_ref()?;
            Some(write_files(job, issued).await)
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut materials = Vec::new();
    for (job, written) in jobs.iter_mut().zip(written) {
        match written {
            Some(Ok(material)) => materials.push((job.name().to_string(), material)),
            Some(Err(e)) => job.failed = Some(e),
            None => {}
        }
    }
    let dead: Vec<String> = jobs
        .iter()
        .filter(|j| {
            matches!(
                j.failed,
                Some(StepError::Acme(
                    AcmeError::ChallengeInvalid { .. } | AcmeError::OrderInvalid { .. }
                ))
            )
        })
        .map(|j| j.name().to_string())
        .collect();
    if !materials.is_empty() || !dead.is_empty() {
        let saved = store
            .update(|s| {
                for (name, material) in &materials {
                    let entry = s.certs.entry(name.clone()).or_default();
                    if let Some(old) = entry.prepared.replace(material.clone()) {
                        entry.superseded.push(old);
                    }
                    entry.pending = None;
                }
                // A dead order cannot be resumed; the next run starts a new one.
                for name in &dead {
                    if let Some(p) = s.certs.get_mut(name).and_then(|c| c.pending.as_mut()) {
                        p.order_url = None;
                    }
                }
            })
            .await;
        if let Err(e) = saved {
            let text = e.to_string();
            for job in jobs
                .iter_mut()
                .filter(|j| j.issued.is_some() && j.failed.is_none())
            {
                job.failed = Some(StepError::Shared(format!("saving the state: {text}")));
            }
        }
    }
    for (name, material) in &materials {
        info!(
            "[cert:{name}] issued: serial {}, valid until {}, for {}",
            material.serial,
            material.not_after.format("%Y-%m-%d %H:%M:%S UTC"),
            material.names.join(", ")
        );
    }
    for job in &jobs {
        for warning in job.issued.iter().flat_map(|i| &i.warnings) {
            warn!("[cert:{}] {warning}", job.name());
        }
    }
    timings.lap("files and state", &mut lap);
    info!(
        "{} of {} certificate(s) issued in {} ms ({} zone change(s) for the challenges): {timings}",
        materials.len(),
        requests.len(),
        started.elapsed().as_millis(),
        zones_changed,
    );

    // Results in request order.
    let mut by_request: Vec<Result<(), StepError>> = Vec::new();
    let mut jobs = jobs.into_iter().peekable();
    let mut failed = failed.into_iter().peekable();
    for (i, _) in requests.iter().enumerate() {
        if failed.peek().is_some_and(|(at, _)| *at == i) {
            if let Some((_, e)) = failed.next() {
                by_request.push(Err(e));
            }
            continue;
        }
        match jobs.next() {
            Some(job) => by_request.push(match job.failed {
                Some(e) => Err(e),
                None => Ok(()),
            }),
            None => by_request.push(Ok(())),
        }
    }
    by_request
}

/// The same error for every request (the first gets it as it is).
fn fail_all(requests: &[&Request<'_>], e: StepError) -> Vec<Result<(), StepError>> {
    let text = e.to_string();
    let mut first = Some(e);
    requests
        .iter()
        .map(|_| {
            Err(first
                .take()
                .unwrap_or_else(|| StepError::Shared(text.clone())))
        })
        .collect()
}

/// The challenges of a job's order; an invalid order's reason instead.
/// `None` for a job without an order.
async fn challenges_of(
    client: &AcmeClient,
    job: &mut Job<'_>,
) -> Option<Result<Challenges, AcmeError>> {
    let order = job.order.as_mut()?;
    if order.status() == crate::acme::OrderStatus::Invalid {
        return Some(Err(match client.validated(order).await {
            Err(e) => e,
            Ok(()) => AcmeError::Protocol(format!("order {} is invalid", order.url())),
        }));
    }
    Some(client.challenges(order).await)
}

/// The key of a request and its directory: those of the issuance an
/// interrupted run left, or a new directory with a new (or kept) key,
/// written (0600) before anything else. `true`: new.
async fn key_for(
    statedir: PathBuf,
    request: &Request<'_>,
) -> Result<(PathBuf, KeyPem, bool), StepError> {
    if let Some((pending, key)) = request
        .issue
        .resume
        .as_ref()
        .and_then(|p| read_key(&p.dir).map(|key| (p.clone(), key)))
    {
        return Ok((pending.dir, key, false));
    }
    let name = request.cert.name.clone();
    let kept = request.issue.key.clone();
    let key_type = request.cert.key_type;
    // Key generation (RSA above all) and the synchronous write are blocking work.
    tokio::task::spawn_blocking(move || {
        let dir = new_material_dir(&statedir, &name)?;
        let key = match kept {
            // `keystrategy = staged`: the key is kept (or the next one
            // taken up); a copy goes with the new certificate.
            Some(source) => read_key(&source).ok_or_else(|| {
                StepError::Mismatch(format!(
                    "the key to keep, {}, cannot be read",
                    source.join(KEY_FILE).display()
                ))
            })?,
            None => generate_key(key_type)?,
        };
        afs::write_atomic(&dir.join(KEY_FILE), key.expose().as_bytes(), PRIVATE_FILE)?;
        Ok((dir, key, true))
    })
    .await
    .unwrap_or_else(|e| Err(StepError::Panicked(e.to_string())))
}

/// Resumes the order an interrupted run recorded, else creates one.
async fn order_for(client: &AcmeClient, job: &Job<'_>) -> Result<PendingOrder, AcmeError> {
    let names = &job.request.issue.names;
    let recorded = job
        .request
        .issue
        .resume
        .as_ref()
        .filter(|p| p.dir == job.dir)
        .and_then(|p| p.order_url.as_deref());
    let mut order = None;
    if let Some(url) = recorded {
        match client.resume_order(url, names).await {
            Ok(resumed) => {
                info!("[cert:{}] resuming order {url}", job.name());
                order = Some(resumed);
            }
            Err(e) => warn!(
                "[cert:{}] cannot resume order {url} ({e}); making a new one",
                job.name()
            ),
        }
    }
    match order {
        Some(order) => Ok(order),
        None => {
            client
                .new_order_replacing(names, job.request.issue.replaces.as_deref())
                .await
        }
    }
}

/// The domain sections (with their providers) of the names of `requests`.
fn group_domains(
    config: &Config,
    providers: &Providers,
    requests: &[&Request<'_>],
) -> Vec<(Domain, Arc<dyn DnsProvider>)> {
    config
        .domains
        .iter()
        .filter(|d| requests.iter().any(|r| r.cert.domains.contains(&d.name)))
        .filter_map(|d| Some((d.clone(), providers.get(d.provider.id)?.clone())))
        .collect()
}

/// The zone of each domain section, with one lookup per zone as the update
/// phase does (a domain whose lookup fails is left out: its challenge
/// record's own lookup names the problem).
async fn domain_zones(
    providers: &Providers,
    domains: &[(Domain, Arc<dyn DnsProvider>)],
    concurrency: usize,
) -> Vec<(Name, Name)> {
    let sections: Vec<&Domain> = domains.iter().map(|(d, _)| d).collect();
    let mut errors = std::collections::BTreeMap::new();
    crate::observe::assign_zones(providers, &sections, concurrency, &mut errors)
        .await
        .into_iter()
        .flat_map(|(_, _, zone, members)| {
            members
                .into_iter()
                .map(move |d| (d.name.clone(), zone.clone()))
        })
        .collect()
}

/// How long the group waits for its records to be served: the longest that
/// any of its certificates would wait on its own (its `propagationtimeout`,
/// else the longest of its domains').
fn group_timeout(config: &Config, requests: &[&Request<'_>]) -> Duration {
    requests
        .iter()
        .map(|r| {
            r.cert.propagation_timeout.unwrap_or_else(|| {
                config
                    .domains
                    .iter()
                    .filter(|d| r.cert.domains.contains(&d.name))
                    .map(|d| d.propagation_timeout)
                    .max()
                    .unwrap_or(crate::config::model::DEFAULT_PROPAGATION_TIMEOUT)
            })
        })
        .max()
        .unwrap_or(crate::config::model::DEFAULT_PROPAGATION_TIMEOUT)
}

/// Writes the certificate files of an issued job into its directory.
async fn write_files(job: &Job<'_>, issued: &Issued) -> Result<CertMaterial, StepError> {
    let blocks = pem_blocks(&issued.chain_pem);
    let leaf = blocks.first().cloned().unwrap_or_default();
    let issuers: String = blocks.iter().skip(1).cloned().collect();
    let files = [
        (job.dir.join(CERT_FILE), leaf),
        (job.dir.join(CHAIN_FILE), issuers),
        (job.dir.join(FULLCHAIN_FILE), issued.chain_pem.clone()),
    ];
    tokio::task::spawn_blocking(move || {
        for (path, contents) in &files {
            afs::write_atomic(path, contents.as_bytes(), PUBLIC_FILE)?;
        }
        Ok::<(), StepError>(())
    })
    .await
    .unwrap_or_else(|e| Err(StepError::Panicked(e.to_string())))?;
    let cert = job.request.cert;
    Ok(CertMaterial {
        dir: job.dir.clone(),
        names: job.request.issue.names.clone(),
        serial: issued.info.serial.clone(),
        fingerprint: issued.info.sha256_fingerprint.clone(),
        not_after: timestamp(issued.info.not_after),
        issued_at: clock::now(),
        deployed_at: None,
        tlsa_published_at: None,
        tlsa_joined_ttl: None,
        tlsa_served: None,
        key_type: Some(key_type_name(cert.key_type)),
    })
}
