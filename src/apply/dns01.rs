//! DNS-01 challenge records (RFC 8555 §8.4) through the domains' own providers:
//! all records of an order go out in one change set per zone; the CA is told
//! only once every authoritative server of each zone serves them, asked
//! directly (never a recursive resolver, whose cache could lie); they are
//! removed afterwards.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
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
}

/// Publishes challenges for the names of one certificate.
pub(crate) struct ProviderDns01 {
    domains: Vec<(Domain, Arc<dyn DnsProvider>)>,
    /// How long to wait for the records to be served.
    timeout: Duration,
    batches: Mutex<Vec<ZoneBatch>>,
}

impl ProviderDns01 {
    /// `domains`: the domain sections of the certificate's names, each with
    /// its provider; `timeout`: the certificate's `propagationtimeout`, if it
    /// sets one, else the longest of the domains'.
    pub(crate) fn new(
        domains: Vec<(Domain, Arc<dyn DnsProvider>)>,
        timeout: Option<Duration>,
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
            batches: Mutex::new(Vec::new()),
        }
    }

    fn domain_of(
        &self,
        challenge: &ChallengeRecord,
    ) -> Result<&(Domain, Arc<dyn DnsProvider>), Dns01Error> {
        let wanted = challenge.domain.trim_start_matches("*.");
        self.domains
            .iter()
            .find(|(d, _)| d.name.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                format!("no [domain:{wanted}] section to publish its challenge through").into()
            })
    }

    /// Groups the challenge records by provider and zone.
    async fn batches(&self, challenges: &[ChallengeRecord]) -> Result<Vec<ZoneBatch>, Dns01Error> {
        let mut batches: Vec<(usize, ZoneBatch)> = Vec::new();
        for challenge in challenges {
            let (domain, instance) = self.domain_of(challenge)?;
            let provider = &domain.provider;
            let zone = instance.find_zone(&challenge.name).await?;
            let record = Record::new(
                challenge.name.clone(),
                domain.ttl,
                RData::Txt(challenge.value.clone()),
            );
            match batches
                .iter_mut()
                .find(|(id, b)| *id == provider.id && b.zone == zone)
            {
                Some((_, batch)) => batch.records.push(record),
                None => batches.push((
                    provider.id,
                    ZoneBatch {
                        provider: instance.clone(),
                        zone,
                        nameservers: domain.nameservers.clone(),
                        records: vec![record],
                    },
                )),
            }
        }
        Ok(batches.into_iter().map(|(_, b)| b).collect())
    }
}

#[async_trait]
impl Dns01 for ProviderDns01 {
    async fn publish(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let batches = self.batches(challenges).await?;
        for batch in &batches {
            for record in &batch.records {
                info!("add (new) ACME for {} : {}", record.name, record.data);
            }
            let changes = ChangeSet {
                adds: batch.records.clone(),
                deletes: Vec::new(),
            };
            batch.provider.apply(&batch.zone, &changes).await?;
        }
        *self.batches.lock().await = batches;
        crate::crashpoint::reached("dns01:published");
        Ok(())
    }

    async fn wait_until_served(&self, _challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let batches = self.batches.lock().await;
        for batch in batches.iter() {
            let servers =
                authoritative(batch.provider.as_ref(), &batch.zone, &batch.nameservers).await?;
            if servers.is_empty() {
                return Err(format!(
                    "no authoritative server of zone {} is known; set nameservers = host:port in [domain]",
                    batch.zone
                )
                .into());
            }
            wait_served(
                &batch.zone,
                &servers,
                &batch.records,
                self.timeout,
                !batch.nameservers.is_empty(),
            )
            .await?;
        }
        Ok(())
    }

    async fn remove(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error> {
        let mut batches = std::mem::take(&mut *self.batches.lock().await);
        // Records this instance did not publish (left by an interrupted run).
        if batches.is_empty() {
            batches = self.batches(challenges).await?;
        }
        let mut first_error: Option<Dns01Error> = None;
        for batch in batches {
            for record in &batch.records {
                info!("delete ACME for {} : {}", record.name, record.data);
            }
            let changes = ChangeSet {
                adds: Vec::new(),
                deletes: batch.records.clone(),
            };
            if let Err(e) = batch.provider.apply(&batch.zone, &changes).await {
                first_error.get_or_insert(e.into());
            }
        }
        first_error.map_or(Ok(()), Err)
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
