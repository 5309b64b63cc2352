//! DNS-01 challenge records (RFC 8555 §8.4) through the domains' own providers:
//! all records of an order go out in one change set per zone; the CA is told
//! only once every authoritative server of each zone serves them, asked
//! directly (never a recursive resolver, whose cache could lie); they are
//! removed afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use log::{debug, info};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::acme::{ChallengeRecord, Dns01, Dns01Error};
use crate::config::model::Domain;
use crate::dns::observe::served_by;
use crate::dns::provider::{ChangeSet, DnsProvider};
use crate::dns::record::{Name, RData, Record};
use crate::observe::authoritative_servers;

/// How long to wait for the authoritative servers to serve a challenge.
const SERVED_DEADLINE: Duration = Duration::from_secs(300);
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(5);

/// One zone's share of the challenge records.
struct ZoneBatch {
    provider: Arc<dyn DnsProvider>,
    zone: Name,
    nameservers: Vec<(String, u16)>,
    records: Vec<Record>,
}

/// Publishes challenges for the names of one certificate.
pub struct ProviderDns01 {
    domains: Vec<(Domain, Arc<dyn DnsProvider>)>,
    batches: Mutex<Vec<ZoneBatch>>,
}

impl ProviderDns01 {
    /// `domains`: the domain sections of the certificate's names, each with
    /// its provider.
    pub fn new(domains: Vec<(Domain, Arc<dyn DnsProvider>)>) -> Self {
        ProviderDns01 {
            domains,
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
                authoritative_servers(batch.provider.as_ref(), &batch.zone, &batch.nameservers)
                    .await?;
            wait_served(&batch.zone, &servers, &batch.records).await?;
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

/// Polls every server until all serve `records`, with a deadline.
async fn wait_served(
    zone: &Name,
    servers: &[SocketAddr],
    records: &[Record],
) -> Result<(), Dns01Error> {
    let deadline = Instant::now() + SERVED_DEADLINE;
    let mut pause = POLL_FIRST;
    for server in servers {
        loop {
            match served_by(*server, records).await {
                Ok(true) => break,
                Ok(false) => debug!("{server} does not serve the challenge records of {zone} yet"),
                Err(e) => debug!("asking {server}: {e}"),
            }
            if Instant::now() + pause > deadline {
                return Err(format!(
                    "{server} did not serve the challenge records of zone {zone} within {} s",
                    SERVED_DEADLINE.as_secs()
                )
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
    info!(
        "challenge records of zone {zone} are served by all {} authoritative server(s)",
        servers.len()
    );
    Ok(())
}
