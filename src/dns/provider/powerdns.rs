//! The PowerDNS Authoritative HTTP API (`/api/v1`), authenticated with the
//! `X-API-Key` header.
//!
//! The zone of a name is the longest zone of `GET /servers/{id}/zones` that
//! contains it; a zone is read with `GET /servers/{id}/zones/{zone}` (all its
//! RRsets) and changed with one `PATCH` carrying a `REPLACE` (or `DELETE`) of each
//! affected RRset. PowerDNS applies a PATCH in one transaction. When it refuses
//! the PATCH for its data (HTTP 400 or 422, e.g. "Conflicts with pre-existing
//! RRset"), every RRset is sent again in a PATCH of its own, REPLACEs before
//! DELETEs, so the others of the zone still go out and the refused one is
//! named; a refused REPLACE leaves its RRset (old records included) as it was.
//! The final content of each RRset is computed from the RRset as the server has
//! it just before the PATCH, plus the adds, minus the deletes: adding one record
//! keeps the others, and records the program does not understand (or that are
//! disabled) are kept as they are.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use log::{debug, warn};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::capability::{ALL_SOA_FIELDS, ALL_TYPES, Application, Capabilities};
use super::partial::{Steps, change_text};
use super::{
    ChangeSet, DnsProvider, KeyError, KeySpec, KeyValues, ProviderError, ProviderSpec, RRsetChange,
};
use crate::dns::presentation::{parse_presentation, parse_type, to_presentation};
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::secret::Secret;

pub(crate) const SPEC: ProviderSpec = ProviderSpec {
    name: "powerdns",
    aliases: &[],
    keys: &[
        KeySpec {
            name: "apiurl",
            required: true,
            secret: false,
            doc: "base URL of the PowerDNS API (the webserver), e.g. http://127.0.0.1:8081",
        },
        KeySpec {
            name: "apikey",
            required: true,
            secret: true,
            doc: "the API key (PowerDNS setting api-key)",
        },
        KeySpec {
            name: "serverid",
            required: false,
            secret: false,
            doc: "the server id in the API path (default localhost)",
        },
    ],
    capabilities: Capabilities {
        types: ALL_TYPES,
        soa: ALL_SOA_FIELDS,
        application: Application::PerRRset,
    },
    build: |keys| Ok(Arc::new(PowerDns::from_keys(keys)?)),
};

const TIMEOUT: Duration = Duration::from_secs(30);
const NAME: &str = "powerdns";

/// A configured PowerDNS API.
pub(crate) struct PowerDns {
    /// `http://host:port/api/v1/servers/{serverid}`.
    base: String,
    api_url: String,
    key: Secret,
    client: reqwest::Client,
}

impl PowerDns {
    /// Builds the provider from its config keys (no network).
    ///
    /// # Errors
    /// The key that is missing or invalid.
    pub(crate) fn from_keys(keys: &KeyValues) -> Result<Self, KeyError> {
        let required = |key: &str| {
            keys.get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| KeyError::new(key, "missing (required by handler powerdns)"))
        };
        let api_url = required("apiurl")?.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&api_url)
            .map_err(|e| KeyError::new("apiurl", format!("\"{api_url}\" is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(KeyError::new(
                "apiurl",
                format!("\"{api_url}\" is not an http or https URL"),
            ));
        }
        let key = Secret::new(required("apikey")?);
        let server_id = keys
            .get("serverid")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .unwrap_or("localhost");
        let root = api_url.strip_suffix("/api/v1").unwrap_or(&api_url);
        let client = crate::http::client(TIMEOUT).map_err(|e| KeyError::new("apiurl", e))?;
        Ok(PowerDns {
            base: format!("{root}/api/v1/servers/{}", encode_id(server_id)),
            api_url,
            key,
            client,
        })
    }

    /// An API error naming this provider.
    fn error(&self, message: String) -> ProviderError {
        ProviderError::Api {
            provider: self.describe(),
            message: self.redact(message),
        }
    }

    /// Never let the key through, even if a server echoes it.
    fn redact(&self, text: String) -> String {
        crate::secret::redact(text, [&self.key])
    }

    /// One API request; `what` says what it is for in errors. Returns the body of
    /// a 2xx answer.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&PatchBody<'_>>,
        what: &str,
    ) -> Result<String, ProviderError> {
        let url = format!("{}{path}", self.base);
        debug!("{NAME}: {method} {url} ({what})");
        let mut request = self
            .client
            .request(method, &url)
            .header("X-API-Key", self.key.expose())
            .header("Accept", "application/json");
        if let Some(body) = body {
            let json = serde_json::to_vec(body).map_err(|e| ProviderError::Protocol {
                server: self.describe(),
                reason: format!("{what}: cannot encode the request: {e}"),
            })?;
            request = request
                .header("Content-Type", "application/json")
                .body(json);
        }
        let response = request.send().await.map_err(|e| {
            let failure = match crate::http::classify(&e) {
                crate::http::Failure::Other(reason) => {
                    crate::http::Failure::Other(self.redact(reason))
                }
                failure => failure,
            };
            ProviderError::network(NAME, &self.api_url, what, TIMEOUT, failure)
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.error(format!("{what}: reading the answer failed: {e}")))?;
        if status.is_success() {
            return Ok(text);
        }
        let endpoint = crate::http::endpoint(&self.api_url);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::AuthRefused {
                provider: NAME.into(),
                endpoint,
                what: what.to_string(),
                detail: format!("HTTP {}", status.as_u16()),
                keys: "apikey".into(),
            },
            _ => ProviderError::HttpStatus {
                provider: NAME.into(),
                endpoint,
                what: what.to_string(),
                status: status.as_u16(),
                message: self.redact(api_error_text(&text)),
            },
        })
    }

    fn is_not_found(error: &ProviderError) -> bool {
        matches!(error, ProviderError::HttpStatus { status: 404, .. })
    }

    /// True for a PATCH PowerDNS refused for its data (not for a fault).
    fn is_refusal(error: &ProviderError) -> bool {
        matches!(
            error,
            ProviderError::HttpStatus {
                status: 400 | 422,
                ..
            }
        )
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<T, ProviderError> {
        let text = self.request(Method::GET, path, None, what).await?;
        serde_json::from_str(&text).map_err(|e| ProviderError::Protocol {
            server: self.describe(),
            reason: format!("{what}: the answer is not the expected JSON ({e})"),
        })
    }

    async fn zone_rrsets(&self, zone: &Name) -> Result<Vec<RRSet>, ProviderError> {
        let path = format!("/zones/{}", encode_id(&zone.to_fqdn()));
        let what = format!("reading zone {zone}");
        match self.get_json::<ZoneDetail>(&path, &what).await {
            Ok(detail) => Ok(detail.rrsets),
            Err(e) if Self::is_not_found(&e) => Err(ProviderError::NoZone {
                name: zone.to_string(),
                server: self.describe(),
                reason: "the server has no such zone".into(),
            }),
            Err(e) => Err(e),
        }
    }
}

/// An RRset as the API shows it.
#[derive(Deserialize, Debug)]
struct RRSet {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    records: Vec<ApiRecord>,
}

#[derive(Deserialize, Serialize, Debug, Clone)]
struct ApiRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Deserialize)]
struct ZoneDetail {
    #[serde(default)]
    rrsets: Vec<RRSet>,
}

#[derive(Deserialize)]
struct ZoneSummary {
    name: String,
}

#[derive(Serialize, Debug)]
struct PatchBody<'a> {
    rrsets: Vec<&'a PatchRRSet>,
}

/// The change of one RRset: what is sent, and how it reads in a refusal.
#[derive(Debug)]
struct Patch {
    rrset: PatchRRSet,
    change: String,
}

#[derive(Serialize, Debug)]
struct PatchRRSet {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    changetype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<ApiRecord>>,
}

#[async_trait]
impl DnsProvider for PowerDns {
    fn describe(&self) -> String {
        format!("{NAME} {}", self.api_url)
    }

    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError> {
        let zones: Vec<ZoneSummary> = self
            .get_json("/zones", &format!("listing zones for {name}"))
            .await?;
        zones
            .iter()
            .filter_map(|z| Name::parse(&z.name).ok())
            .filter(|zone| name.is_at_or_below(zone))
            .max_by_key(|zone| zone.as_str().len())
            .ok_or_else(|| ProviderError::NoZone {
                name: name.to_string(),
                server: self.describe(),
                reason: format!(
                    "none of the server's {} zones contains it (is the zone created in PowerDNS, and is serverid right?)",
                    zones.len()
                ),
            })
    }

    async fn read_zone(&self, zone: &Name) -> Result<Vec<Record>, ProviderError> {
        let rrsets = self.zone_rrsets(zone).await?;
        let mut records = Vec::new();
        for rrset in rrsets {
            let (Ok(name), Some(rtype)) = (Name::parse(&rrset.name), parse_type(&rrset.rtype))
            else {
                continue;
            };
            for record in rrset.records.iter().filter(|r| !r.disabled) {
                match parse_presentation(rtype, &record.content) {
                    Ok(data) => records.push(Record::new(name.clone(), rrset.ttl, data)),
                    Err(e) => warn!("{NAME}: zone {zone}: {name} {rtype} skipped: {e}"),
                }
            }
        }
        Ok(records)
    }

    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let current = self.zone_rrsets(zone).await?;
        let patches = patch_rrsets(&current, changes);
        if patches.is_empty() {
            return Ok(());
        }
        debug!(
            "{NAME}: PATCH zone {zone} ({} RRsets; {} adds, {} deletes)",
            patches.len(),
            changes.adds.len(),
            changes.deletes.len()
        );
        let all: Vec<&PatchRRSet> = patches.iter().map(|p| &p.rrset).collect();
        match self.patch(zone, all).await {
            Err(e) if Self::is_refusal(&e) && patches.len() > 1 => {
                debug!("{NAME}: {e}; sending zone {zone} RRset by RRset");
                self.patch_each(zone, patches).await
            }
            Err(e) if Self::is_refusal(&e) => {
                let mut steps = Steps::new(self.describe(), zone);
                steps.refused(patches[0].change.clone(), refusal_text(&e));
                steps.finish()
            }
            other => other,
        }
    }
}

impl PowerDns {
    async fn patch(&self, zone: &Name, rrsets: Vec<&PatchRRSet>) -> Result<(), ProviderError> {
        let path = format!("/zones/{}", encode_id(&zone.to_fqdn()));
        self.request(
            Method::PATCH,
            &path,
            Some(&PatchBody { rrsets }),
            &format!("changing zone {zone}"),
        )
        .await
        .map(|_| ())
    }

    /// One PATCH per RRset, REPLACEs first: a refused one is named and the
    /// others still go out.
    async fn patch_each(&self, zone: &Name, mut patches: Vec<Patch>) -> Result<(), ProviderError> {
        patches.sort_by_key(|p| p.rrset.changetype == "DELETE");
        let mut steps = Steps::new(self.describe(), zone);
        for patch in &patches {
            match self.patch(zone, vec![&patch.rrset]).await {
                Ok(()) => steps.applied(),
                Err(e) if Self::is_refusal(&e) => {
                    steps.refused(patch.change.clone(), refusal_text(&e));
                }
                Err(e) => return Err(steps.stop(e)),
            }
        }
        steps.finish()
    }
}

/// PowerDNS's words in a refusal of a PATCH.
fn refusal_text(error: &ProviderError) -> String {
    match error {
        ProviderError::HttpStatus {
            status, message, ..
        } => format!("HTTP {status}: {message}"),
        other => other.to_string(),
    }
}

/// The REPLACE/DELETE of every RRset the changes touch: each RRset's records
/// as the server has them, minus the deletes, plus the adds not already there.
fn patch_rrsets(current: &[RRSet], changes: &ChangeSet) -> Vec<Patch> {
    let mut out = Vec::new();
    for ((name, rtype), RRsetChange { adds, deletes }) in changes.by_rrset() {
        let change = match (adds.is_empty(), deletes.is_empty()) {
            (false, true) => change_text("add", &adds),
            (true, _) => change_text("delete", &deletes),
            (false, false) => format!(
                "{}; {}",
                change_text("add", &adds),
                change_text("delete", &deletes)
            ),
        };
        let existing = current.iter().find(|s| {
            Name::parse(&s.name).is_ok_and(|n| n == name) && parse_type(&s.rtype) == Some(rtype)
        });
        let parsed = |r: &ApiRecord| parse_presentation(rtype, &r.content).ok();
        let mut records: Vec<ApiRecord> = match existing {
            // An SOA add replaces the SOA.
            Some(_) if rtype == RecordType::Soa && !adds.is_empty() => Vec::new(),
            Some(set) => set
                .records
                .iter()
                .filter(|r| parsed(r).is_none_or(|data| !deletes.iter().any(|d| d.data == data)))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        for add in &adds {
            let present: Vec<RData> = records.iter().filter_map(parsed).collect();
            if !present.contains(&add.data) {
                records.push(ApiRecord {
                    content: to_presentation(&add.data),
                    disabled: false,
                });
            }
        }
        let ttl = adds
            .first()
            .map(|r| r.ttl)
            .or(existing.map(|s| s.ttl))
            .unwrap_or(300);
        let (changetype, records, ttl) = if records.is_empty() {
            if existing.is_none() {
                continue;
            }
            ("DELETE", None, None)
        } else {
            ("REPLACE", Some(records), Some(ttl))
        };
        out.push(Patch {
            rrset: PatchRRSet {
                name: name.to_fqdn(),
                rtype: rtype.to_string(),
                ttl,
                changetype,
                records,
            },
            change,
        });
    }
    out
}

/// A zone or server id in an API path: PowerDNS keeps letters, digits, `.` and
/// `-`, and writes every other byte as `=XX`.
fn encode_id(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            }
        })
        .collect()
}

/// The `error` of a PowerDNS error body, or the start of whatever came.
fn api_error_text(body: &str) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        error: String,
    }
    match serde_json::from_str::<ApiError>(body) {
        Ok(e) => e.error,
        Err(_) => {
            let trimmed: String = body.trim().chars().take(200).collect();
            if trimmed.is_empty() {
                "(empty answer)".into()
            } else {
                trimmed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> KeyValues {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn record(name: &str, data: RData) -> Record {
        Record::new(Name::parse(name).unwrap(), 300, data)
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(
            PowerDns::from_keys(&keys(&[("apikey", "k")]))
                .err()
                .unwrap()
                .key,
            "apiurl"
        );
        assert_eq!(
            PowerDns::from_keys(&keys(&[("apiurl", "ftp://x"), ("apikey", "k")]))
                .err()
                .unwrap()
                .key,
            "apiurl"
        );
        let p = PowerDns::from_keys(&keys(&[
            ("apiurl", "http://127.0.0.1:8081/"),
            ("apikey", "k"),
        ]))
        .unwrap();
        assert_eq!(p.base, "http://127.0.0.1:8081/api/v1/servers/localhost");
    }

    #[test]
    fn ids_are_encoded_like_powerdns() {
        assert_eq!(encode_id("example.com."), "example.com.");
        assert_eq!(encode_id("_x.example."), "=5Fx.example.");
    }

    #[test]
    fn an_add_keeps_the_other_records_of_the_rrset() {
        let current = vec![RRSet {
            name: "www.example.com.".into(),
            rtype: "A".into(),
            ttl: 600,
            records: vec![
                ApiRecord {
                    content: "192.0.2.1".into(),
                    disabled: false,
                },
                ApiRecord {
                    content: "192.0.2.2".into(),
                    disabled: true,
                },
            ],
        }];
        let changes = ChangeSet {
            adds: vec![
                record("www.example.com", RData::A("192.0.2.3".parse().unwrap())),
                record("www.example.com", RData::A("192.0.2.1".parse().unwrap())),
            ],
            deletes: vec![record("new.example.com", RData::Txt("gone".into()))],
        };
        let patch = patch_rrsets(&current, &changes);
        assert_eq!(
            patch.len(),
            1,
            "deleting from an absent RRset sends nothing"
        );
        let contents: Vec<&str> = patch[0]
            .rrset
            .records
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.content.as_str())
            .collect();
        assert_eq!(contents, vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        assert_eq!(patch[0].rrset.changetype, "REPLACE");
    }

    #[test]
    fn deleting_the_last_record_deletes_the_rrset() {
        let current = vec![RRSet {
            name: "_acme-challenge.example.com.".into(),
            rtype: "TXT".into(),
            ttl: 60,
            records: vec![ApiRecord {
                content: "\"token\"".into(),
                disabled: false,
            }],
        }];
        let changes = ChangeSet {
            adds: vec![],
            deletes: vec![record(
                "_acme-challenge.example.com",
                RData::Txt("token".into()),
            )],
        };
        let patch = patch_rrsets(&current, &changes);
        assert_eq!(patch[0].rrset.changetype, "DELETE");
        assert!(patch[0].rrset.records.is_none());
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(api_error_text("{\"error\": \"Not Found\"}"), "Not Found");
        assert_eq!(api_error_text(""), "(empty answer)");
        assert_eq!(api_error_text(&"x".repeat(500)).len(), 200);
    }
}
