//! DNS-01 challenge records (RFC 8555 §8.4) through the domains' own providers:
//! all records of the orders of a round go out in one change set per zone;
//! the CA is told only once every authoritative server of each zone serves
//! them, asked directly (never a recursive resolver, whose cache could lie),
//! one wait per zone for all its records; they are removed afterwards, again
//! one change per zone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::future::join_all;
use log::info;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::wait::{self, Seen, Watch};
use crate::acme::{ChallengeRecord, Dns01, Dns01Error};
use crate::clock;
use crate::config::model::Domain;
use crate::dns::authoritative::authoritative;
use crate::dns::observe::{Server, served_by};
use crate::dns::provider::{ChangeSet, DnsProvider};
use crate::dns::record::{Name, RData, Record};
use crate::plan::timing::WHEN;

/// How often the servers are asked again (a poll gives up at its deadline).
const POLL: crate::retry::Backoff = crate::retry::Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(5),
    attempts: u32::MAX,
};
/// How often a wait without news says that it is still waiting.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// One zone's share of the challenge records.
struct ZoneBatch {
    provider: Arc<dyn DnsProvider>,
    zone: Name,
    nameservers: Vec<(String, u16)>,
    records: Vec<Record>,
    /// The challenges (their places in the list given) these records are for.
    members: Vec<usize>,
}

/// Publishes challenges for the names of one or more certificates: the
/// records of all of them in one change per zone.
pub(crate) struct ProviderDns01 {
    domains: Vec<(Domain, Arc<dyn DnsProvider>)>,
    /// How long to wait for the records to be served.
    timeout: Duration,
    /// How many zones are changed or asked at once.
    concurrency: usize,
    /// The zone of each domain section, where known: its challenge record
    /// (`_acme-challenge.<domain>`) is published there, as the `acme` records
    /// of the update phase are, without looking it up again.
    zones: Vec<(Name, Name)>,
    batches: Mutex<Vec<ZoneBatch>>,
}

impl ProviderDns01 {
    /// `domains`: the domain sections of the certificates' names, each with
    /// its provider; `timeout`: the certificate's `propagationtimeout`, if it
    /// sets one, else the longest of the domains'.
    pub(crate) fn new(
        domains: Vec<(Domain, Arc<dyn DnsProvider>)>,
        timeout: Option<Duration>,
        concurrency: usize,
    ) -> Self {
        let timeout = timeout.unwrap_or_else(|| {
            domains
                .iter()
                .map(|(d, _)| d.propagation_timeout)
                .max()
                .unwrap_or(crate::config::model::DEFAULT_PROPAGATION_TIMEOUT)
        });
        ProviderDns01 {
            domains,
            timeout,
            concurrency: concurrency.max(1),
            zones: Vec::new(),
            batches: Mutex::new(Vec::new()),
        }
    }

    /// Takes the zones of the domain sections as known (domain, zone):
    /// their challenge records need no lookup of their own.
    pub(crate) fn with_zones(mut self, zones: Vec<(Name, Name)>) -> Self {
        self.zones = zones;
        self
    }

    /// The zone of the domain section `domain`, if known.
    fn known_zone(&self, domain: &Name) -> Option<&Name> {
        self.zones
            .iter()
            .find(|(d, _)| d == domain)
            .map(|(_, zone)| zone)
    }

    fn domain_of(
        &self,
        challenge: &ChallengeRecord,
    ) -> Result<&(Domain, Arc<dyn DnsProvider>), String> {
        let wanted = challenge.domain.trim_start_matches("*.");
        self.domains
            .iter()
            .find(|(d, _)| d.name.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| format!("no [domain:{wanted}] section to publish its challenge through"))
    }

    /// The zone of `name` at provider `id`.
    async fn zone_of(&self, id: usize, name: &Name) -> Result<Name, String> {
        let instance = self
            .domains
            .iter()
            .find(|(d, _)| d.provider.id == id)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| format!("no provider for {name}"))?;
        instance.find_zone(name).await.map_err(|e| e.to_string())
    }

    /// Groups the challenge records by provider and zone (each distinct name
    /// looked up once, concurrently). Challenges that cannot be placed get
    /// their error, at their place in the list.
    async fn batches(
        &self,
        challenges: &[ChallengeRecord],
    ) -> (Vec<ZoneBatch>, Vec<Option<String>>) {
        let mut errors: Vec<Option<String>> = vec![None; challenges.len()];
        let mut lookups: Vec<(usize, Name)> = Vec::new();
        for (i, challenge) in challenges.iter().enumerate() {
            match self.domain_of(challenge) {
                Ok((domain, _)) if self.known_zone(&domain.name).is_some() => {}
                Ok((domain, _)) => {
                    let key = (domain.provider.id, challenge.name.clone());
                    if !lookups.iter().any(|(id, name)| (*id, name.clone()) == key) {
                        lookups.push(key);
                    }
                }
                Err(e) => errors[i] = Some(e),
            }
        }
        let zones: Vec<Result<Name, String>> = futures_util::stream::iter(0..lookups.len())
            .map(|i| self.zone_of(lookups[i].0, &lookups[i].1))
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut batches: Vec<(usize, ZoneBatch)> = Vec::new();
        for (i, challenge) in challenges.iter().enumerate() {
            let Ok((domain, instance)) = self.domain_of(challenge) else {
                continue;
            };
            let provider = &domain.provider;
            let looked_up = lookups
                .iter()
                .position(|(id, name)| *id == provider.id && *name == challenge.name)
                .and_then(|at| zones.get(at));
            let zone = match (self.known_zone(&domain.name), looked_up) {
                (Some(zone), _) => zone.clone(),
                (None, Some(Ok(zone))) => zone.clone(),
                (None, Some(Err(e))) => {
                    errors[i] = Some(e.clone());
                    continue;
                }
                (None, None) => continue,
            };
            let record = Record::new(
                challenge.name.clone(),
                domain.ttl,
                RData::Txt(challenge.value.clone()),
            );
            match batches
                .iter_mut()
                .find(|(id, b)| *id == provider.id && b.zone == zone)
            {
                Some((_, batch)) => {
                    if !batch.records.iter().any(|r| same(r, &record)) {
                        batch.records.push(record);
                    }
                    batch.members.push(i);
                }
                None => batches.push((
                    provider.id,
                    ZoneBatch {
                        provider: instance.clone(),
                        zone,
                        nameservers: domain.nameservers.clone(),
                        records: vec![record],
                        members: vec![i],
                    },
                )),
            }
        }
        (batches.into_iter().map(|(_, b)| b).collect(), errors)
    }

    /// Publishes the records of `challenges`, of any number of orders, in one
    /// change per zone, zones concurrently. One result per challenge: that of
    /// its zone's change. The batches are kept for [`Self::served_each`] and
    /// [`Dns01::remove`].
    pub(crate) async fn publish_each(
        &self,
        challenges: &[ChallengeRecord],
    ) -> Vec<Result<(), String>> {
        let (batches, errors) = self.batches(challenges).await;
        let applied: Vec<Result<(), String>> = futures_util::stream::iter(0..batches.len())
            .map(|i| change(&batches[i], true))
            .buffered(self.concurrency)
            .collect()
            .await;
        let results = per_challenge(&batches, &applied, errors);
        *self.batches.lock().await = batches;
        crate::crashpoint::reached("dns01:published");
        results
    }

    /// Waits until every authoritative server of each zone that
    /// [`Self::publish_each`] changed serves that zone's records: one wait
    /// per zone for the records of all orders, zones concurrently. One
    /// result per challenge given there: that of its zone. A zone whose
    /// change failed is not waited for.
    pub(crate) async fn served_each(
        &self,
        published: &[Result<(), String>],
    ) -> Vec<Result<(), String>> {
        let batches = self.batches.lock().await;
        let waits: Vec<Result<(), String>> = futures_util::stream::iter(0..batches.len())
            .map(|i| serve_batch(&batches[i], published, self.timeout))
            .buffered(self.concurrency)
            .collect()
            .await;
        per_challenge(
            &batches,
            &waits,
            published.iter().map(|r| r.clone().err()).collect(),
        )
    }
}

impl ProviderDns01 {
    /// How many zones the last [`Self::publish_each`] changed.
    pub(crate) async fn zones(&self) -> usize {
        self.batches.lock().await.len()
    }
}

/// Spreads each zone's result over the challenges of that zone; a challenge
/// with an error of its own keeps it.
fn per_challenge(
    batches: &[ZoneBatch],
    results: &[Result<(), String>],
    mut errors: Vec<Option<String>>,
) -> Vec<Result<(), String>> {
    for (batch, result) in batches.iter().zip(results) {
        if let Err(e) = result {
            for i in &batch.members {
                if let Some(slot) = errors.get_mut(*i) {
                    slot.get_or_insert_with(|| e.clone());
                }
            }
        }
    }
    errors.into_iter().map(|e| e.map_or(Ok(()), Err)).collect()
}

/// Adds (`add`) or deletes the records of a batch, in one change of its zone.
async fn change(batch: &ZoneBatch, add: bool) -> Result<(), String> {
    for record in &batch.records {
        if add {
            info!("add (new) ACME for {} : {}", record.name, record.data);
        } else {
            info!("delete ACME for {} : {}", record.name, record.data);
        }
    }
    let changes = if add {
        ChangeSet {
            adds: batch.records.clone(),
            deletes: Vec::new(),
        }
    } else {
        ChangeSet {
            adds: Vec::new(),
            deletes: batch.records.clone(),
        }
    };
    batch
        .provider
        .apply(&batch.zone, &changes)
        .await
        .map_err(|e| e.to_string())
}

/// Whether two records are the same (name and data).
fn same(a: &Record, b: &Record) -> bool {
    a.name == b.name && a.data == b.data
}

/// Waits until every authoritative server of the batch's zone serves its
/// records; not when the change of the zone failed (`published`).
async fn serve_batch(
    batch: &ZoneBatch,
    published: &[Result<(), String>],
    timeout: Duration,
) -> Result<(), String> {
    if let Some(Err(e)) = batch.members.first().and_then(|i| published.get(*i)) {
        return Err(e.clone());
    }
    let servers = authoritative(batch.provider.as_ref(), &batch.zone, &batch.nameservers).await?;
    if servers.is_empty() {
        return Err(format!(
            "no authoritative server of zone {} is known; set nameservers = host:port in [domain]",
            batch.zone
        ));
    }
    wait_served(
        &batch.zone,
        &servers,
        &batch.records,
        timeout,
        !batch.nameservers.is_empty(),
    )
    .await
    .map_err(|e| e.to_string())
}

#[async_trait]
impl Dns01 for ProviderDns01 {
    async fn publish(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let results = self.publish_each(challenges).await;
        first_error(results)
    }

    async fn wait_until_served(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let published = vec![Ok(()); challenges.len()];
        first_error(self.served_each(&published).await)
    }

    async fn remove(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let mut batches = std::mem::take(&mut *self.batches.lock().await);
        // Records this instance did not publish (left by an interrupted run)
        // join the change of their zone.
        let extra: Vec<ChallengeRecord> = challenges
            .iter()
            .filter(|c| {
                !batches.iter().any(|b| {
                    b.records
                        .iter()
                        .any(|r| r.name == c.name && r.data == RData::Txt(c.value.clone()))
                })
            })
            .cloned()
            .collect();
        let (found, errors) = self.batches(&extra).await;
        for batch in found {
            match batches
                .iter_mut()
                .find(|b| Arc::ptr_eq(&b.provider, &batch.provider) && b.zone == batch.zone)
            {
                Some(into) => {
                    for record in batch.records {
                        if !into.records.iter().any(|r| same(r, &record)) {
                            into.records.push(record);
                        }
                    }
                }
                None => batches.push(batch),
            }
        }
        let unplaced = errors.into_iter().flatten().next();
        let removed: Vec<Result<(), String>> = futures_util::stream::iter(0..batches.len())
            .map(|i| change(&batches[i], false))
            .buffered(self.concurrency)
            .collect()
            .await;
        first_error(removed)?;
        unplaced.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// The first error of a list of results, if any.
fn first_error(results: Vec<Result<(), String>>) -> Result<(), Dns01Error> {
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Polls every server until all serve `records`, logging at INFO what it
/// waits for, where, what each server said last, and until when. Ends early
/// when a server refuses or ignores every question for
/// [`wait::UNREACHABLE_LIMIT`], with advice.
async fn wait_served(
    zone: &Name,
    servers: &[Server],
    records: &[Record],
    timeout: Duration,
    configured: bool,
) -> Result<(), Dns01Error> {
    let started = Instant::now();
    let deadline = started + timeout;
    let until = (clock::now() + chrono::Duration::from_std(timeout).unwrap_or_default())
        .format(WHEN)
        .to_string();
    let listed: Vec<String> = servers.iter().map(ToString::to_string).collect();
    info!(
        "waiting until {until} (propagationtimeout {} s) for {} authoritative server(s) of zone {zone} to serve the challenge record(s) {}: {}",
        timeout.as_secs(),
        servers.len(),
        records
            .iter()
            .map(|r| r.name.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        listed.join(", ")
    );
    let mut watches: Vec<Watch> = servers.iter().cloned().map(Watch::new).collect();
    let mut pauses = POLL.waits();
    let mut last_report = started;
    loop {
        let tried_at = started.elapsed();
        let pending: Vec<usize> = (0..watches.len())
            .filter(|i| watches[*i].seen != Seen::Served)
            .collect();
        let answers = join_all(
            pending
                .iter()
                .map(|i| served_by(watches[*i].server.addr, records)),
        )
        .await;
        let mut news = false;
        for (i, answer) in pending.into_iter().zip(answers) {
            let watch = &mut watches[i];
            let seen = Seen::of(&answer);
            if seen == Seen::Served {
                info!(
                    "{} serves the challenge records of zone {zone}",
                    watch.server
                );
            }
            news |= watch.saw(seen, tried_at) && watch.seen != Seen::Served;
        }
        let waiting: Vec<&Watch> = watches.iter().filter(|w| w.seen != Seen::Served).collect();
        if waiting.is_empty() {
            info!(
                "challenge records of zone {zone} are served by all {} authoritative server(s)",
                servers.len()
            );
            return Ok(());
        }
        let now = started.elapsed();
        if let Some(hopeless) = waiting.iter().find(|w| w.hopeless(now)) {
            return Err(wait::unreachable_advice(zone.as_str(), hopeless, configured).into());
        }
        let pause = pauses.next().unwrap_or(POLL.max);
        if Instant::now() + pause > deadline {
            return Err(wait::timeout_message(zone.as_str(), &waiting, timeout).into());
        }
        if news || last_report.elapsed() >= REPORT_EVERY {
            last_report = Instant::now();
            for watch in &waiting {
                info!(
                    "still waiting for {} (zone {zone}): {}; asking again until {until}",
                    watch.server, watch.seen
                );
            }
        }
        tokio::time::sleep(pause).await;
    }
}
