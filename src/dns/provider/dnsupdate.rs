//! The adapter from our provider trait to the `dns-update` crate, which speaks
//! to some seventy DNS hosting APIs through one RRset interface (`list_rrset`,
//! `add_to_rrset`, `remove_from_rrset`). The registry entries, one per crate
//! provider with its config keys and record types, are in
//! [`super::dnsupdate_registry`].
//!
//! The crate cannot list a zone, so the update reads only the RRsets in scope
//! ([`DnsProvider::read_rrsets`]) and has no SOA: `soa.*` keys are a
//! configuration error with these providers. The zone of a name is the `zone`
//! key, or else the longest of the name and its parents for which the API lists
//! the apex NS RRset; an answer that says nothing about the zone (no connection,
//! credentials refused, a server error) stops the search with that error.
//! Changes go RRset by RRset, every add before any delete; APIs have no
//! transaction across RRsets, so a refused RRset is named and the others still
//! go out (see [`super::partial`]); the next run completes what is missing.
//!
//! The crate passes on a failed request as text only, so when a request got no
//! answer the adapter asks the endpoint once more itself to say why
//! ([`crate::http::probe`]).
//!
//! The RRset calls go through `cryptdomainmgr_dns_update` (crates/dns-update),
//! which compiles the crate's generic client code once, outside this crate.

use std::time::Duration;

use async_trait::async_trait;
use cryptdomainmgr_dns_update as rrset;
use dns_update::{
    CAARecord, DnsRecord, DnsRecordType, DnsUpdater, KeyValue, MXRecord, SRVRecord, TLSARecord,
    TlsaCertUsage, TlsaMatching, TlsaSelector,
};
use log::debug;

use super::partial::{Steps, change_text};
use super::{ChangeSet, DnsProvider, KeyError, KeySpec, KeyValues, ProviderError, RRsetChange};
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::secret::Secret;

/// The time one API request may take.
pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// The `zone` key every crate provider accepts.
pub const ZONE_KEY: KeySpec = KeySpec {
    name: "zone",
    required: false,
    secret: false,
    doc: "the zone (as the provider names it); otherwise the longest of the name and its parents the API knows",
};

/// The prefix of the crate's message for a request that got no answer.
const NOT_SENT: &str = "Failed to send request to ";

/// A provider of the `dns-update` crate.
pub struct CrateProvider {
    handler: &'static str,
    updater: DnsUpdater,
    zone: Option<Name>,
    /// The configured secrets, to keep them out of error messages.
    secrets: Vec<Secret>,
    /// The timeout the crate's client was built with.
    timeout: Duration,
    /// The credential keys, named in an error when they are refused.
    credential_keys: String,
}

/// What a crate error says about the zone asked for.
enum Meaning {
    /// The request failed or was not allowed: it says nothing about the zone.
    Failure,
    /// The API answered: no such RRset or zone, or a refusal of the data.
    Answer,
}

impl CrateProvider {
    /// The adapter for `updater` (built with the crate's default timeout,
    /// [`TIMEOUT`]; see [`Self::with_timeout`]).
    pub fn new(handler: &'static str, updater: DnsUpdater, secrets: Vec<Secret>) -> Self {
        CrateProvider {
            handler,
            updater,
            zone: None,
            secrets,
            timeout: TIMEOUT.unwrap_or(Duration::from_secs(30)),
            credential_keys: "the provider's credential keys".into(),
        }
    }

    /// The zone all names are in (the `zone` key).
    pub fn with_zone(mut self, zone: Option<Name>) -> Self {
        self.zone = zone;
        self
    }

    /// The timeout the crate's client was built with.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The keys to check when the credentials are refused (`apitoken`).
    pub fn with_credential_keys(mut self, keys: String) -> Self {
        self.credential_keys = keys;
        self
    }

    fn redact(&self, text: String) -> String {
        crate::secret::redact(text, &self.secrets)
    }

    fn meaning(error: &dns_update::Error) -> Meaning {
        match error {
            dns_update::Error::Unauthorized | dns_update::Error::Client(_) => Meaning::Failure,
            dns_update::Error::Api(text)
                if text.starts_with(NOT_SENT)
                    || text.starts_with("Failed to read response")
                    || text.starts_with("HTTP 5")
                    || text.starts_with("HTTP 403") =>
            {
                Meaning::Failure
            }
            _ => Meaning::Answer,
        }
    }

    /// Our error for a crate error of a request made for `what`; for a
    /// request that got no answer, the endpoint is asked once more to say why.
    async fn error(&self, what: &str, error: &dns_update::Error) -> ProviderError {
        let provider = self.describe();
        let api = "its API".to_string();
        match error {
            dns_update::Error::Unauthorized => ProviderError::AuthRefused {
                provider,
                endpoint: api,
                what: what.to_string(),
                detail: "unauthorized".into(),
                keys: self.credential_keys.clone(),
            },
            dns_update::Error::Api(text) if text.starts_with(NOT_SENT) => {
                let rest = &text[NOT_SENT.len()..];
                let url = rest.split(": ").next().unwrap_or(rest);
                match crate::http::probe(url, self.timeout).await {
                    Some(crate::http::Failure::Other(reason)) => ProviderError::network(
                        &provider,
                        url,
                        what,
                        self.timeout,
                        crate::http::Failure::Other(self.redact(reason)),
                    ),
                    Some(failure) => {
                        ProviderError::network(&provider, url, what, self.timeout, failure)
                    }
                    None => ProviderError::Unreachable {
                        server: format!("{provider} at {}", crate::http::endpoint(url)),
                        reason: format!("{what}: {}", self.redact(text.clone())),
                    },
                }
            }
            dns_update::Error::Api(text) if text.starts_with("HTTP ") => {
                let (status, message) = split_status(&text[5..]);
                ProviderError::HttpStatus {
                    provider,
                    endpoint: api,
                    what: what.to_string(),
                    status,
                    message: self.redact(message),
                }
            }
            dns_update::Error::BadRequest => ProviderError::HttpStatus {
                provider,
                endpoint: api,
                what: what.to_string(),
                status: 400,
                message: "bad request".into(),
            },
            dns_update::Error::Api(text) if text.starts_with("BadRequest") => {
                ProviderError::HttpStatus {
                    provider,
                    endpoint: api,
                    what: what.to_string(),
                    status: 400,
                    message: self.redact(text["BadRequest".len()..].trim().to_string()),
                }
            }
            other => ProviderError::Api {
                provider,
                message: self.redact(format!("{what}: {other}")),
            },
        }
    }

    /// The records of one RRset, or the crate's error.
    async fn list(
        &self,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Vec<Record>, dns_update::Error> {
        let Some(crate_type) = crate_type(rtype) else {
            return Ok(Vec::new());
        };
        let listed =
            rrset::list_rrset(&self.updater, name.as_str(), crate_type, zone.as_str()).await?;
        let mut records = Vec::new();
        for record in listed {
            match from_crate(&record) {
                Ok(data) => records.push(Record::new(name.clone(), 0, data)),
                Err(e) => debug!("{}: {name} {rtype} skipped: {e}", self.handler),
            }
        }
        Ok(records)
    }
}

/// `422: {"error": ...}` as (422, the rest); a status-less text as (0, text).
fn split_status(text: &str) -> (u16, String) {
    let (code, rest) = text.split_once(':').unwrap_or((text, ""));
    match code.trim().parse() {
        Ok(status) => (status, rest.trim().to_string()),
        Err(_) => (0, text.to_string()),
    }
}

#[async_trait]
impl DnsProvider for CrateProvider {
    fn describe(&self) -> String {
        format!("{} (dns-update)", self.handler)
    }

    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError> {
        if let Some(zone) = &self.zone {
            return Ok(zone.clone());
        }
        let mut last_answer = String::new();
        let mut candidate = Some(name.clone());
        while let Some(zone) = candidate {
            if zone.parent().is_none() {
                break;
            }
            match rrset::list_rrset(
                &self.updater,
                zone.as_str(),
                DnsRecordType::NS,
                zone.as_str(),
            )
            .await
            {
                Ok(_) => return Ok(zone),
                Err(e) => match Self::meaning(&e) {
                    Meaning::Failure => {
                        return Err(self
                            .error(&format!("looking up the zone of {name}"), &e)
                            .await);
                    }
                    Meaning::Answer => last_answer = self.redact(e.to_string()),
                },
            }
            candidate = zone.parent();
        }
        Err(ProviderError::NoZone {
            name: name.to_string(),
            server: self.describe(),
            reason: format!(
                "the API knows none of its parent zones (last answer: {last_answer}); set zone = ... if the provider names it differently"
            ),
        })
    }

    async fn read_zone(&self, zone: &Name) -> Result<Vec<Record>, ProviderError> {
        Err(ProviderError::Api {
            provider: self.describe(),
            message: format!("reading zone {zone}: the API cannot list a whole zone"),
        })
    }

    /// One `list_rrset` per wanted RRset. NS RRsets below the apex (wanted to
    /// see delegations) that the API cannot list count as absent.
    async fn read_rrsets(
        &self,
        zone: &Name,
        wanted: &[(Name, RecordType)],
    ) -> Result<Vec<Record>, ProviderError> {
        let mut records = Vec::new();
        for (name, rtype) in wanted {
            match self.list(zone, name, *rtype).await {
                Ok(found) => records.extend(found),
                Err(e)
                    if *rtype == RecordType::Ns && matches!(Self::meaning(&e), Meaning::Answer) =>
                {
                    debug!(
                        "{}: NS of {name} not readable, taken as none: {e}",
                        self.handler
                    )
                }
                Err(e) => return Err(self.error(&format!("reading {name} {rtype}"), &e).await),
            }
        }
        Ok(records)
    }

    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError> {
        // Convert everything first: a record the crate cannot express changes nothing.
        let mut adds = Vec::new();
        let mut deletes = Vec::new();
        for (
            (name, rtype),
            RRsetChange {
                adds: a,
                deletes: d,
            },
        ) in changes.by_rrset()
        {
            let unsupported = |record: &Record, why: String| ProviderError::Api {
                provider: self.describe(),
                message: format!("zone {zone}: cannot write {record}: {why}; nothing was changed"),
            };
            let Some(crate_type) = crate_type(rtype) else {
                // Every group holds at least one record.
                if let Some(record) = a.iter().chain(&d).next() {
                    return Err(unsupported(
                        record,
                        format!("{rtype} records are not supported by {}", self.handler),
                    ));
                }
                continue;
            };
            let convert = |records: &[&Record]| -> Result<Vec<DnsRecord>, ProviderError> {
                records
                    .iter()
                    .map(|r| to_crate(&r.data).map_err(|why| unsupported(r, why)))
                    .collect()
            };
            if !a.is_empty() {
                adds.push((name.clone(), crate_type, convert(&a)?, a));
            }
            if !d.is_empty() {
                deletes.push((name, crate_type, convert(&d)?, d));
            }
        }
        let mut steps = Steps::new(self.describe(), zone);
        for (name, rtype, records, ours) in adds {
            debug!(
                "{}: add {} {name} {}",
                self.handler,
                records.len(),
                rtype.as_str()
            );
            let ttl = ours.first().map_or(300, |r| r.ttl);
            match rrset::add_to_rrset(
                &self.updater,
                name.as_str(),
                rtype,
                ttl,
                records,
                zone.as_str(),
            )
            .await
            {
                Ok(()) => steps.applied(),
                Err(e) => {
                    let what = change_text("adding", &ours);
                    match Self::meaning(&e) {
                        Meaning::Failure => return Err(steps.stop(self.error(&what, &e).await)),
                        Meaning::Answer => steps.refused_add(&ours, self.redact(e.to_string())),
                    }
                }
            }
        }
        for (name, rtype, records, ours) in deletes {
            if steps.hold_back(&ours) {
                continue;
            }
            debug!(
                "{}: remove {} {name} {}",
                self.handler,
                records.len(),
                rtype.as_str()
            );
            match rrset::remove_from_rrset(
                &self.updater,
                name.as_str(),
                rtype,
                records,
                zone.as_str(),
            )
            .await
            {
                Ok(()) => steps.applied(),
                Err(e) => {
                    let what = change_text("deleting", &ours);
                    match Self::meaning(&e) {
                        Meaning::Failure => return Err(steps.stop(self.error(&what, &e).await)),
                        Meaning::Answer => {
                            steps.refused(change_text("delete", &ours), self.redact(e.to_string()))
                        }
                    }
                }
            }
        }
        steps.finish()
    }
}

fn crate_type(rtype: RecordType) -> Option<DnsRecordType> {
    Some(match rtype {
        RecordType::A => DnsRecordType::A,
        RecordType::Aaaa => DnsRecordType::AAAA,
        RecordType::Mx => DnsRecordType::MX,
        RecordType::Srv => DnsRecordType::SRV,
        RecordType::Caa => DnsRecordType::CAA,
        RecordType::Txt => DnsRecordType::TXT,
        RecordType::Tlsa => DnsRecordType::TLSA,
        RecordType::Ns => DnsRecordType::NS,
        RecordType::Cname => DnsRecordType::CNAME,
        RecordType::Soa => return None,
    })
}

/// Our record data as the crate's.
fn to_crate(data: &RData) -> Result<DnsRecord, String> {
    Ok(match data {
        RData::A(addr) => DnsRecord::A(*addr),
        RData::Aaaa(addr) => DnsRecord::AAAA(*addr),
        RData::Mx {
            preference,
            exchange,
        } => DnsRecord::MX(MXRecord {
            exchange: exchange.to_string(),
            priority: *preference,
        }),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => DnsRecord::SRV(SRVRecord {
            target: target.to_string(),
            priority: *priority,
            weight: *weight,
            port: *port,
        }),
        RData::Txt(text) => DnsRecord::TXT(text.clone()),
        RData::Caa { flags, tag, value } => DnsRecord::CAA(to_crate_caa(*flags, tag, value)?),
        RData::Tlsa {
            usage,
            selector,
            matching,
            data,
        } => DnsRecord::TLSA(TLSARecord {
            cert_usage: match usage {
                0 => TlsaCertUsage::PkixTa,
                1 => TlsaCertUsage::PkixEe,
                2 => TlsaCertUsage::DaneTa,
                3 => TlsaCertUsage::DaneEe,
                _ => TlsaCertUsage::Private,
            },
            selector: match selector {
                0 => TlsaSelector::Full,
                1 => TlsaSelector::Spki,
                _ => TlsaSelector::Private,
            },
            matching: match matching {
                0 => TlsaMatching::Raw,
                1 => TlsaMatching::Sha256,
                2 => TlsaMatching::Sha512,
                _ => TlsaMatching::Private,
            },
            cert_data: data.clone(),
        }),
        RData::Ns(name) => DnsRecord::NS(name.to_string()),
        RData::Cname(name) => DnsRecord::CNAME(name.to_string()),
        RData::Soa(_) => return Err("SOA records are not supported".into()),
    })
}

/// CAA `issue`/`issuewild` values are `[domain] [; key=value ...]` (RFC 8659 §4.2).
fn to_crate_caa(flags: u8, tag: &str, value: &str) -> Result<CAARecord, String> {
    let issuer_critical = flags & 0x80 != 0;
    let issuer = || {
        let mut parts = value.split(';');
        let name = parts
            .next()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let options = parts
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (key, value) = p.split_once('=').unwrap_or((p, ""));
                KeyValue {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                }
            })
            .collect();
        (name, options)
    };
    Ok(match tag {
        "issue" => {
            let (name, options) = issuer();
            CAARecord::Issue {
                issuer_critical,
                name,
                options,
            }
        }
        "issuewild" => {
            let (name, options) = issuer();
            CAARecord::IssueWild {
                issuer_critical,
                name,
                options,
            }
        }
        "iodef" => CAARecord::Iodef {
            issuer_critical,
            url: value.to_string(),
        },
        other => return Err(format!("CAA tag {other} is not supported by dns-update")),
    })
}

/// The crate's record data as ours.
fn from_crate(record: &DnsRecord) -> Result<RData, String> {
    let name = |text: &str| Name::parse(text).map_err(|e| format!("{text}: {e}"));
    Ok(match record {
        DnsRecord::A(addr) => RData::A(*addr),
        DnsRecord::AAAA(addr) => RData::Aaaa(*addr),
        DnsRecord::CNAME(target) => RData::Cname(name(target)?),
        DnsRecord::NS(target) => RData::Ns(name(target)?),
        DnsRecord::MX(mx) => RData::Mx {
            preference: mx.priority,
            exchange: name(&mx.exchange)?,
        },
        DnsRecord::TXT(text) => RData::Txt(text.clone()),
        DnsRecord::SRV(srv) => RData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: name(&srv.target)?,
        },
        DnsRecord::TLSA(tlsa) => RData::Tlsa {
            usage: tlsa.cert_usage.into(),
            selector: tlsa.selector.into(),
            matching: tlsa.matching.into(),
            data: tlsa.cert_data.clone(),
        },
        DnsRecord::CAA(caa) => {
            let (flags, tag, value) = caa.clone().decompose();
            // The crate joins options with "; "; ours keep the text as written.
            RData::Caa {
                flags,
                tag,
                value: value.replace("; ", ";"),
            }
        }
    })
}

/// The values of a crate provider's keys, for its constructor.
pub struct Keys<'a> {
    handler: &'static str,
    values: &'a KeyValues,
    specs: &'static [KeySpec],
}

impl<'a> Keys<'a> {
    pub fn new(handler: &'static str, values: &'a KeyValues, specs: &'static [KeySpec]) -> Self {
        Keys {
            handler,
            values,
            specs,
        }
    }

    /// An optional key's value (empty counts as absent).
    pub fn opt(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A required key's value.
    ///
    /// # Errors
    /// When it is missing.
    pub fn req(&self, key: &str) -> Result<String, KeyError> {
        self.opt(key).ok_or_else(|| {
            KeyError::new(
                key,
                format!("missing (required by handler {})", self.handler),
            )
        })
    }

    /// A yes/no key (default `no`).
    ///
    /// # Errors
    /// When the value is neither.
    pub fn flag(&self, key: &str) -> Result<bool, KeyError> {
        match self.opt(key).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("no" | "false" | "0") => Ok(false),
            Some("yes" | "true" | "1") => Ok(true),
            Some(other) => Err(KeyError::new(key, format!("\"{other}\" is not yes or no"))),
        }
    }

    /// A number key.
    ///
    /// # Errors
    /// When the value is not a number.
    pub fn number(&self, key: &str) -> Result<Option<u32>, KeyError> {
        self.opt(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| KeyError::new(key, format!("\"{v}\" is not a number")))
            })
            .transpose()
    }

    /// The provider, from the crate's constructor result.
    ///
    /// # Errors
    /// When the constructor refused the values, or `zone` is not a name.
    pub fn finish(
        &self,
        built: dns_update::Result<DnsUpdater>,
    ) -> Result<std::sync::Arc<dyn DnsProvider>, KeyError> {
        let secrets: Vec<Secret> = self
            .specs
            .iter()
            .filter(|k| k.secret)
            .filter_map(|k| self.opt(k.name))
            .map(Secret::new)
            .collect();
        let redact = |text: String| crate::secret::redact(text, &secrets);
        let updater = built.map_err(|e| {
            KeyError::new(
                "handler",
                redact(format!("{} does not accept these keys: {e}", self.handler)),
            )
        })?;
        let zone = self
            .opt("zone")
            .map(|z| {
                Name::parse(&z).map_err(|e| KeyError::new("zone", format!("not a zone name: {e}")))
            })
            .transpose()?;
        let credential_keys: Vec<&str> = self
            .specs
            .iter()
            .filter(|k| k.secret)
            .map(|k| k.name)
            .collect();
        Ok(std::sync::Arc::new(
            CrateProvider::new(self.handler, updater, secrets)
                .with_zone(zone)
                .with_credential_keys(credential_keys.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_data_converts_both_ways() {
        let n = |s: &str| Name::parse(s).unwrap();
        for data in [
            RData::A("192.0.2.1".parse().unwrap()),
            RData::Aaaa("2001:db8::1".parse().unwrap()),
            RData::Mx {
                preference: 10,
                exchange: n("mail.example.com"),
            },
            RData::Srv {
                priority: 1,
                weight: 2,
                port: 443,
                target: n("www.example.com"),
            },
            RData::Txt("x".repeat(300)),
            RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into(),
            },
            RData::Caa {
                flags: 128,
                tag: "issuewild".into(),
                value: "ca.example;account=42".into(),
            },
            RData::Caa {
                flags: 0,
                tag: "iodef".into(),
                value: "mailto:sec@example.com".into(),
            },
            RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![1, 2, 3],
            },
            RData::Ns(n("ns1.example.com")),
            RData::Cname(n("www.example.com")),
        ] {
            assert_eq!(from_crate(&to_crate(&data).unwrap()).unwrap(), data);
        }
        assert!(
            to_crate(&RData::Caa {
                flags: 0,
                tag: "contactemail".into(),
                value: "x@example.com".into()
            })
            .is_err()
        );
    }
}
