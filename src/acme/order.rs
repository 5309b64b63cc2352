//! Issuance with DNS-01 (RFC 8555 §7.4 orders, §7.5 authorizations, §8.4 DNS-01).
//!
//! One order holds every name of a certificate. All DNS-01 TXT records are
//! published at once (the caller batches them per zone, across orders too),
//! the caller confirms every authoritative server serves them, then all
//! challenges are marked ready and the order is polled (the CA's
//! `Retry-After`, else a short first wait with backoff) with a deadline,
//! finalized with our CSR and the chain downloaded. The challenge records are
//! removed afterwards in every case, success or failure. [`AcmeClient::complete`]
//! does it for one order; a caller with many runs the steps
//! ([`AcmeClient::challenges`], [`AcmeClient::answer`],
//! [`AcmeClient::validated`], [`AcmeClient::finish`]) for all of them at once.
//!
//! Crash safety: [`AcmeClient::new_order`] returns a [`PendingOrder`] whose URL the
//! caller stores before calling [`AcmeClient::complete`]; after a crash,
//! [`AcmeClient::resume_order`] picks the order up in whatever state it is in (a
//! `valid` order is just downloaded). The key must be stored before `complete`,
//! since a `processing` or `valid` order belongs to the key of its CSR.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use instant_acme::{
    AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
};

use crate::acme::AcmeClient;
use crate::acme::error::{
    AcmeError, Decision, Dns01Error, classify, describe_problem, retry, sanitize, wait_before_retry,
};
use crate::acme::http::AcmeHttp;
use crate::dns::record::Name;
use crate::material::cert::{CertInfo, KeyPem, csr_der, key_matches_cert, parse_chain};

/// How often an order's status is polled when the CA gives no `Retry-After`:
/// soon at first (a CA close by has checked a challenge or signed a
/// certificate within tens of milliseconds), then less and less often.
/// Starts again when the order changes state.
const ORDER_POLL: crate::retry::Backoff = crate::retry::Backoff {
    first: Duration::from_millis(40),
    max: Duration::from_secs(5),
    attempts: u32::MAX,
};

/// The longest `Retry-After` an order poll waits for; a CA asking for more
/// is asked again then (the order's deadline still ends the poll).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// The waits of one order poll.
struct Poll {
    attempt: u32,
    deadline: Instant,
}

impl Poll {
    fn new(timeout: Duration) -> Self {
        Poll {
            attempt: 0,
            deadline: Instant::now() + timeout,
        }
    }

    /// The order changed state: the next wait is the short first one again.
    fn restart(&mut self) {
        self.attempt = 0;
    }

    /// How long to wait before the next poll, `None` once the deadline has
    /// passed. `retry_after`: the CA's answer to the last poll.
    fn next(&mut self, retry_after: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        self.attempt += 1;
        Some(poll_wait(self.attempt, retry_after, now).min(left))
    }
}

/// The wait before poll `attempt` (1 for the first): the CA's `Retry-After`
/// (RFC 8555 §7.4) when it names a time to come, at most
/// [`RETRY_AFTER_MAX`]; else [`ORDER_POLL`]'s backoff.
fn poll_wait(attempt: u32, retry_after: Option<SystemTime>, now: SystemTime) -> Duration {
    match retry_after.and_then(|t| t.duration_since(now).ok()) {
        Some(asked) if !asked.is_zero() => asked.min(RETRY_AFTER_MAX),
        _ => ORDER_POLL.delay(attempt),
    }
}

/// The DNS-01 records an order needs ([`AcmeClient::challenges`]).
#[derive(Debug, Default)]
pub struct Challenges {
    /// Of its pending challenges: to publish before [`AcmeClient::answer`].
    pub publish: Vec<ChallengeRecord>,
    /// Of its other challenges, when the order was picked up from an
    /// interrupted run, which may have published them: to remove.
    pub leftovers: Vec<ChallengeRecord>,
}

/// One DNS-01 TXT record to publish (RFC 8555 §8.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// The identifier as ordered (`*.example.org` for a wildcard).
    pub domain: String,
    /// `_acme-challenge.<domain>` (wildcard label removed).
    pub name: Name,
    /// The TXT value: base64url(SHA-256(key authorization)).
    pub value: String,
}

/// Publishes DNS-01 records; implemented by the caller on its DNS providers.
#[async_trait]
pub trait Dns01: Send + Sync {
    /// Publishes all TXT records, in one change set per zone.
    async fn publish(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error>;
    /// Waits (polling, with a deadline) until every authoritative server serves them.
    async fn wait_until_served(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error>;
    /// Removes the TXT records again. Called after success and after failure.
    async fn remove(&self, challenges: &[ChallengeRecord]) -> Result<(), Dns01Error>;
}

/// An order created or resumed, not yet completed. Store [`PendingOrder::url`]
/// before completing it.
pub struct PendingOrder {
    order: Order,
    names: Vec<String>,
    /// Picked up from an earlier, interrupted run, which may have left
    /// challenge records behind.
    resumed: bool,
}

impl PendingOrder {
    /// The order URL, to record in state for [`AcmeClient::resume_order`].
    pub fn url(&self) -> &str {
        self.order.url()
    }

    /// The status the CA last reported.
    pub fn status(&mut self) -> OrderStatus {
        self.order.state().status
    }
}

impl std::fmt::Debug for PendingOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOrder")
            .field("url", &self.order.url())
            .field("names", &self.names)
            .finish()
    }
}

/// An issued certificate.
#[derive(Debug)]
pub struct Issued {
    pub order_url: String,
    /// The chain as the CA sent it: leaf first, then issuers (PEM).
    pub chain_pem: String,
    pub key: KeyPem,
    pub info: CertInfo,
    /// Problems that did not stop issuance (e.g. a challenge record left behind).
    pub warnings: Vec<String>,
}

/// What an authorization needs from us, read from the CA.
struct AuthzInfo {
    domain: String,
    base: Option<String>,
    status: AuthorizationStatus,
    /// The dns-01 challenge's TXT value, status and token.
    dns01: Option<(String, ChallengeStatus, String)>,
}

async fn authz_infos(order: &mut Order) -> Result<Vec<AuthzInfo>, instant_acme::Error> {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(result) = authzs.next().await {
        let mut authz = result?;
        let status = authz.status;
        let id = authz.identifier();
        let domain = id.to_string();
        let base = match id.identifier {
            Identifier::Dns(name) => Some(name.clone()),
            _ => None,
        };
        let dns01 = authz
            .challenge(ChallengeType::Dns01)
            .map(|c| (c.key_authorization().dns_value(), c.status, c.token.clone()));
        out.push(AuthzInfo {
            domain,
            base,
            status,
            dns01,
        });
    }
    Ok(out)
}

/// The DNS-01 record of an authorization's dns-01 challenge, if it has one
/// with a well-formed token for a DNS name.
fn challenge_record(info: &AuthzInfo) -> Option<ChallengeRecord> {
    let (Some(base), Some((value, _, token))) = (&info.base, &info.dns01) else {
        return None;
    };
    let name = Name::parse(&format!("_acme-challenge.{base}")).ok()?;
    is_token(token).then(|| ChallengeRecord {
        domain: sanitize(&info.domain),
        name,
        value: value.clone(),
    })
}

/// A challenge token: base64url without padding, at least 128 bits (RFC 8555
/// §8.1, §8.4).
fn is_token(token: &str) -> bool {
    token.len() >= 22
        && token.len() <= 512
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AcmeClient {
    /// Creates an order for `names` (RFC 8555 §7.4). Store its URL, then call
    /// [`AcmeClient::complete`].
    ///
    /// # Errors
    /// When the CA refuses the order, rate-limits beyond the bound, or is unreachable.
    pub async fn new_order(&self, names: &[String]) -> Result<PendingOrder, AcmeError> {
        self.new_order_replacing(names, None).await
    }

    /// Creates an order for `names` that renews the certificate identified by
    /// `replaces` (RFC 9773 §5; the identifier of [`crate::acme::ari::cert_id`]).
    /// A CA that rejects `replaces` gets the order again without it.
    ///
    /// # Errors
    /// As [`AcmeClient::new_order`].
    pub async fn new_order_replacing(
        &self,
        names: &[String],
        replaces: Option<&str>,
    ) -> Result<PendingOrder, AcmeError> {
        if names.is_empty() {
            return Err(AcmeError::Config(
                "a certificate needs at least one name".into(),
            ));
        }
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let replaced = replaces.and_then(|id| {
            let (aki, serial) = id.split_once('.')?;
            Some(instant_acme::CertificateIdentifier {
                authority_key_identifier: aki.to_string().into(),
                serial: serial.to_string().into(),
            })
        });
        let mut order = None;
        if let Some(id) = replaced {
            let new = NewOrder::new(&ids).replaces(id);
            match retry!(
                self.http,
                self.limits,
                "create an order",
                self.account.new_order(&new).await
            ) {
                Ok(created) => order = Some(created),
                Err(e) if worth_ordering_without_replaces(&e) => log::warn!(
                    "the CA did not take the order as a renewal ({e}); ordering without \"replaces\""
                ),
                Err(e) => return Err(e),
            }
        }
        let order = match order {
            Some(order) => order,
            None => retry!(
                self.http,
                self.limits,
                "create an order",
                self.account.new_order(&NewOrder::new(&ids)).await
            )?,
        };
        log::info!(
            "created ACME order {} for {}",
            order.url(),
            names.join(", ")
        );
        Ok(PendingOrder {
            order,
            names: names.to_vec(),
            resumed: false,
        })
    }

    /// Picks up an order created by an earlier, interrupted run.
    ///
    /// # Errors
    /// When the order cannot be fetched (expired, other account) or is for other
    /// names; the caller then makes a new order.
    pub async fn resume_order(
        &self,
        url: &str,
        names: &[String],
    ) -> Result<PendingOrder, AcmeError> {
        let mut order = retry!(
            self.http,
            self.limits,
            "fetch the stored order",
            self.account.order(url.to_string()).await
        )?;
        let infos = retry!(
            self.http,
            self.limits,
            "fetch the authorizations",
            authz_infos(&mut order).await
        )?;
        let mut have: Vec<String> = infos
            .iter()
            .map(|i| i.domain.to_ascii_lowercase())
            .collect();
        let mut want: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        have.sort();
        want.sort();
        if have != want {
            return Err(AcmeError::Protocol(format!(
                "stored order {url} is for {} instead of {}",
                sanitize(&have.join(", ")),
                want.join(", ")
            )));
        }
        Ok(PendingOrder {
            order,
            names: names.to_vec(),
            resumed: true,
        })
    }

    /// Drives an order to a certificate: DNS-01 challenges through `dns`, finalize
    /// with a CSR signed by `key`, download and check the chain. Challenge records
    /// are always removed afterwards.
    ///
    /// Several orders at once go through the same steps one at a time for all
    /// of them ([`AcmeClient::challenges`], publishing, [`AcmeClient::answer`],
    /// [`AcmeClient::validated`], [`AcmeClient::finish`]), so that their records
    /// share one change per zone; this is those steps for one order.
    ///
    /// # Errors
    /// An invalid challenge names the domain and the CA's problem detail; DNS-01
    /// failures, timeouts, rate limits and unreachable CAs have their own variants.
    pub async fn complete(
        &self,
        mut pending: PendingOrder,
        key: &KeyPem,
        dns: &dyn Dns01,
    ) -> Result<Issued, AcmeError> {
        let mut published: Option<Vec<ChallengeRecord>> = None;
        let mut warnings = Vec::new();
        let result = AcmeHttp::scoped(async {
            let challenges = self.challenges(&mut pending).await;
            // What an interrupted run may have published: its records are the
            // ones this order's challenges ask for, and are removed below too.
            let mut leftovers = None;
            let result = match challenges {
                Ok(challenges) => {
                    leftovers = Some(challenges.leftovers).filter(|l| !l.is_empty());
                    self.answer_challenges(&mut pending, challenges.publish, dns, &mut published)
                        .await
                }
                Err(e) => Err(e),
            };
            let result = match result {
                Ok(()) => self.validated(&mut pending).await,
                Err(e) => Err(e),
            };
            remove_records(dns, &mut published, &mut warnings).await;
            remove_records(dns, &mut leftovers, &mut warnings).await;
            match result {
                Ok(()) => self.finish(&mut pending, key).await,
                Err(e) => Err(e),
            }
        })
        .await;
        remove_records(dns, &mut published, &mut warnings).await;
        let mut issued = result?;
        issued.warnings.extend(warnings);
        Ok(issued)
    }

    /// [`AcmeClient::new_order`] and [`AcmeClient::complete`] in one, for callers
    /// that keep no state between them.
    ///
    /// # Errors
    /// As those two.
    pub async fn issue(
        &self,
        names: &[String],
        key: &KeyPem,
        dns: &dyn Dns01,
    ) -> Result<Issued, AcmeError> {
        let pending = self.new_order(names).await?;
        self.complete(pending, key, dns).await
    }

    /// Publishes the records, waits until they are served, answers the challenges.
    async fn answer_challenges(
        &self,
        pending: &mut PendingOrder,
        records: Vec<ChallengeRecord>,
        dns: &dyn Dns01,
        published: &mut Option<Vec<ChallengeRecord>>,
    ) -> Result<(), AcmeError> {
        if records.is_empty() {
            return Ok(());
        }
        *published = Some(records.clone());
        dns.publish(&records)
            .await
            .map_err(|source| AcmeError::Dns01 {
                step: "publish",
                source,
            })?;
        dns.wait_until_served(&records)
            .await
            .map_err(|source| AcmeError::Dns01 {
                step: "wait until served",
                source,
            })?;
        self.answer(pending).await
    }

    /// The DNS-01 records the order needs (RFC 8555 §8.4): those of its
    /// pending challenges, to publish, and for an order picked up from an
    /// interrupted run the others it asked for, which that run may have left.
    /// The authorizations are fetched once and kept with the order.
    ///
    /// # Errors
    /// An authorization that is neither pending nor valid, a CA that offers
    /// no dns-01 challenge, asks for a name not ordered or sends a token that
    /// is not base64url; the CA cannot be asked.
    pub async fn challenges(&self, pending: &mut PendingOrder) -> Result<Challenges, AcmeError> {
        let mut out = Challenges::default();
        let status = pending.status();
        if status != OrderStatus::Pending {
            // Nothing to publish; an interrupted run may have left records.
            if pending.resumed
                && let Ok(infos) = authz_infos(&mut pending.order).await
            {
                out.leftovers = infos
                    .iter()
                    .filter(|info| {
                        pending
                            .names
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case(&info.domain))
                    })
                    .filter_map(challenge_record)
                    .collect();
            }
            return Ok(out);
        }
        let infos = retry!(
            self.http,
            self.limits,
            "fetch the authorizations",
            authz_infos(&mut pending.order).await
        )?;
        let ordered = &pending.names;
        for info in &infos {
            let domain = sanitize(&info.domain);
            // A CA must not make us publish for names we did not order (RFC
            // 8555 §7.1.4: an order's authorizations are for its identifiers).
            let is_ordered = ordered.iter().any(|n| n.eq_ignore_ascii_case(&info.domain));
            let record = challenge_record(info).filter(|_| is_ordered);
            match info.status {
                AuthorizationStatus::Valid => {
                    if pending.resumed {
                        out.leftovers.extend(record);
                    }
                    continue;
                }
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(AcmeError::ChallengeInvalid {
                        domain,
                        detail: format!("authorization is {other:?}"),
                    });
                }
            }
            let (Some(_), Some((_, status, token))) = (&info.base, &info.dns01) else {
                return Err(AcmeError::Protocol(format!(
                    "the CA offers no dns-01 challenge for {domain}"
                )));
            };
            if !is_ordered {
                return Err(AcmeError::Protocol(format!(
                    "the CA asks to authorize {domain}, which was not ordered"
                )));
            }
            if !is_token(token) {
                return Err(AcmeError::Protocol(format!(
                    "the dns-01 token for {domain} is not base64url (RFC 8555 §8.4)"
                )));
            }
            let Some(record) = record else {
                return Err(AcmeError::Protocol(format!(
                    "identifier {domain} is not a DNS name"
                )));
            };
            if *status == ChallengeStatus::Pending {
                out.publish.push(record);
            } else if pending.resumed {
                out.leftovers.push(record);
            }
        }
        Ok(out)
    }

    /// Tells the CA that every pending dns-01 challenge of the order may be
    /// checked now (RFC 8555 §7.5.1), once its records are served. Uses the
    /// authorizations [`AcmeClient::challenges`] fetched.
    ///
    /// # Errors
    /// The CA refuses or cannot be asked.
    pub async fn answer(&self, pending: &mut PendingOrder) -> Result<(), AcmeError> {
        let mut answered = 0;
        let mut authzs = pending.order.authorizations();
        while let Some(result) = authzs.next().await {
            let mut authz = result.map_err(|e| AcmeError::Protocol(sanitize(&e.to_string())))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) else {
                continue;
            };
            if challenge.status != ChallengeStatus::Pending {
                continue;
            }
            retry!(
                self.http,
                self.limits,
                "mark a challenge ready",
                challenge.set_ready().await
            )?;
            answered += 1;
        }
        if answered > 0 {
            log::info!(
                "the CA is checking the DNS-01 challenge(s) of {}; waiting for its answer (at most {} s)",
                pending.names.join(", "),
                self.limits.order_timeout.as_secs()
            );
        }
        Ok(())
    }

    /// Waits until the CA has checked the challenges: the order is no longer
    /// `pending` (RFC 8555 §7.1.6). Its challenge records may go then.
    ///
    /// # Errors
    /// The order became invalid (with the CA's reason), did not leave
    /// `pending` within the order timeout, or the CA cannot be asked.
    pub async fn validated(&self, pending: &mut PendingOrder) -> Result<(), AcmeError> {
        let mut poll = Poll::new(self.limits.order_timeout);
        loop {
            match pending.status() {
                OrderStatus::Pending => self.poll(&mut pending.order, &mut poll).await?,
                OrderStatus::Invalid => return Err(self.explain_invalid(&mut pending.order).await),
                OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid => {
                    return Ok(());
                }
            }
        }
    }

    /// Finalizes a validated order with a CSR signed by `key` and downloads
    /// and checks the certificate.
    ///
    /// # Errors
    /// The order became invalid, did not become valid in time, the CA cannot
    /// be asked, or the certificate is not for `key` and the ordered names.
    pub async fn finish(
        &self,
        pending: &mut PendingOrder,
        key: &KeyPem,
    ) -> Result<Issued, AcmeError> {
        let chain_pem = self.finalized(pending, key).await?;
        let info = parse_chain(&chain_pem)?;
        if !key_matches_cert(key, &chain_pem)? {
            return Err(AcmeError::Protocol(
                "the issued certificate is not for our key".into(),
            ));
        }
        for name in &pending.names {
            if !info.sans.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                return Err(AcmeError::Protocol(format!(
                    "the issued certificate does not cover {name}"
                )));
            }
        }
        Ok(Issued {
            order_url: pending.url().to_string(),
            chain_pem,
            key: key.clone(),
            info,
            warnings: Vec::new(),
        })
    }

    /// The rest of the order state machine (RFC 8555 §7.1.6) after
    /// validation, returning the chain PEM.
    async fn finalized(
        &self,
        pending: &mut PendingOrder,
        key: &KeyPem,
    ) -> Result<String, AcmeError> {
        let mut poll = Poll::new(self.limits.order_timeout);
        let mut finalize_attempts: u32 = 0;
        loop {
            let order = &mut pending.order;
            match order.state().status {
                OrderStatus::Pending => {
                    return Err(AcmeError::Protocol(format!(
                        "order {} is pending again after its challenges were checked",
                        order.url()
                    )));
                }
                OrderStatus::Processing => {}
                OrderStatus::Ready => {
                    let csr = csr_der(key, &pending.names)?;
                    finalize_attempts += 1;
                    // Not blindly retried: a finalize that failed in transit may
                    // have been accepted. On a transient error the order is polled
                    // again, and finalized again only if it is still `ready`.
                    match order.finalize_csr(&csr).await {
                        // The answer is the order in its new state: no poll
                        // before looking at it.
                        Ok(()) => {
                            poll.restart();
                            continue;
                        }
                        Err(e) => match classify("finalize the order", e, self.http.last()) {
                            Decision::Fail(err) => return Err(err),
                            decision => {
                                let wait = wait_before_retry(
                                    &self.limits,
                                    "finalize the order",
                                    finalize_attempts,
                                    decision,
                                )?;
                                tokio::time::sleep(wait).await;
                            }
                        },
                    }
                }
                OrderStatus::Valid => {
                    let chain = retry!(
                        self.http,
                        self.limits,
                        "download the certificate",
                        order.certificate().await
                    )?;
                    // None: still processing after all; poll again.
                    if let Some(chain) = chain {
                        return Ok(chain);
                    }
                }
                OrderStatus::Invalid => return Err(self.explain_invalid(order).await),
            }
            self.poll(order, &mut poll).await?;
        }
    }

    /// Waits as the CA asks (its `Retry-After`, RFC 8555 §7.4) or else as
    /// [`ORDER_POLL`] says, then asks for the order's state again.
    async fn poll(&self, order: &mut Order, poll: &mut Poll) -> Result<(), AcmeError> {
        let status = order.state().status;
        let wait = poll
            .next(self.http.last().retry_after, SystemTime::now())
            .ok_or_else(|| AcmeError::Timeout {
                what: format!("order {} (status {status:?})", order.url()),
                seconds: self.limits.order_timeout.as_secs(),
            })?;
        tokio::time::sleep(wait).await;
        retry!(
            self.http,
            self.limits,
            "poll the order",
            order.refresh().await.map(|_| ())
        )
    }

    /// Finds out why an order is invalid: the first invalid authorization's
    /// challenge error, else the order's own problem.
    async fn explain_invalid(&self, order: &mut Order) -> AcmeError {
        let mut authzs = order.authorizations();
        while let Some(result) = authzs.next().await {
            let Ok(mut authz) = result else { continue };
            let _ = authz.refresh().await;
            if authz.status != AuthorizationStatus::Invalid {
                continue;
            }
            let detail = authz
                .challenges
                .iter()
                .filter_map(|c| c.error.as_ref())
                .map(describe_problem)
                .next()
                .unwrap_or_else(|| "no detail from the CA".into());
            return AcmeError::ChallengeInvalid {
                domain: sanitize(&authz.identifier().to_string()),
                detail,
            };
        }
        let url = order.url().to_string();
        AcmeError::OrderInvalid {
            url,
            detail: order
                .state()
                .error
                .as_ref()
                .map(describe_problem)
                .unwrap_or_else(|| "no detail from the CA".into()),
        }
    }
}

/// Whether an order that failed with `e` while it carried `replaces` is sent
/// again without it: when the CA refused it (`alreadyReplaced`, malformed) or
/// answered in a way the client does not take (no ARI support, `replaces` not
/// reflected). Not after a rate limit, exhausted retries or an unreachable
/// CA: the same order would meet the same, after waiting again.
fn worth_ordering_without_replaces(e: &AcmeError) -> bool {
    matches!(e, AcmeError::Server { .. } | AcmeError::Protocol(_))
}

/// Removes published challenge records once; a failure becomes a warning.
async fn remove_records(
    dns: &dyn Dns01,
    published: &mut Option<Vec<ChallengeRecord>>,
    warnings: &mut Vec<String>,
) {
    if let Some(records) = published.take()
        && let Err(e) = dns.remove(&records).await
    {
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
        let text = format!(
            "removing the DNS-01 records {} failed: {e}",
            names.join(", ")
        );
        log::warn!("{text}");
        warnings.push(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_start_short_and_honour_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let waits: Vec<u128> = (1..=4)
            .map(|a| poll_wait(a, None, now).as_millis())
            .collect();
        assert_eq!(waits, [40, 80, 160, 320]);
        assert_eq!(poll_wait(20, None, now), ORDER_POLL.max);
        // The CA's Retry-After wins, longer or shorter than the backoff.
        let in_3s = Some(now + Duration::from_secs(3));
        assert_eq!(poll_wait(1, in_3s, now), Duration::from_secs(3));
        assert_eq!(
            poll_wait(9, Some(now + Duration::from_secs(1)), now),
            Duration::from_secs(1)
        );
        // A time already past, or far away, does not stall the order.
        assert_eq!(
            poll_wait(2, Some(now - Duration::from_secs(5)), now).as_millis(),
            80
        );
        assert_eq!(
            poll_wait(1, Some(now + Duration::from_secs(86_400)), now),
            RETRY_AFTER_MAX
        );
    }

    #[test]
    fn a_poll_ends_at_its_deadline() {
        let now = SystemTime::now();
        let mut poll = Poll::new(Duration::from_secs(3600));
        assert_eq!(poll.next(None, now), Some(Duration::from_millis(40)));
        assert_eq!(poll.next(None, now), Some(Duration::from_millis(80)));
        poll.restart();
        assert_eq!(poll.next(None, now), Some(Duration::from_millis(40)));
        let mut over = Poll::new(Duration::ZERO);
        assert_eq!(over.next(None, now), None);
    }

    #[test]
    fn replaces_is_dropped_only_when_the_ca_refused_it() {
        let refused = AcmeError::Server {
            what: "create an order",
            problem: "already replaced (urn:ietf:params:acme:error:alreadyReplaced)".into(),
        };
        assert!(worth_ordering_without_replaces(&refused));
        assert!(worth_ordering_without_replaces(&AcmeError::Protocol(
            "replaces field mismatch".into()
        )));
        let rate_limited = AcmeError::RateLimited {
            detail: "while trying to create an order".into(),
            retry_after: None,
        };
        let exhausted = AcmeError::RetriesExhausted {
            what: "create an order",
            attempts: 8,
            last: "5xx".into(),
        };
        let unreachable = AcmeError::Unreachable {
            url: "https://ca.test/order".into(),
            reason: "connection refused".into(),
        };
        for e in [rate_limited, exhausted, unreachable] {
            assert!(!worth_ordering_without_replaces(&e), "{e}");
        }
    }
}
