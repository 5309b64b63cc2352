//! RFC 2136 dynamic updates with TSIG (RFC 8945), on `hickory-proto` messages
//! over TCP (see [`crate::dns::transport`]).
//!
//! Three messages, each signed with the configured key: an SOA query to find the
//! zone of a name (unless `zone` is configured), one AXFR (RFC 5936) to read the
//! zone, and one UPDATE (RFC 2136 §2.5, §3.4) per zone carrying all adds before all
//! deletes, so the server applies them atomically and a name never passes through
//! an empty RRset. Each message sent is logged at debug level
//! (`rfc2136: sent UPDATE example.com (2 adds, 1 deletes) to 192.0.2.1:53`).
//!
//! hickory-proto signs with hmac-sha256, hmac-sha384 and hmac-sha512 only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HickoryTsigAlgorithm;
use hickory_proto::rr::{DNSClass, RecordType, TSigner};

use super::{ChangeSet, DnsProvider, KeyError, KeySpec, KeyValues, ProviderError, ProviderSpec};
use crate::dns::observe::soa_owner;
use crate::dns::record::{Name, Record};
use crate::dns::transport::{DEFAULT_TIMEOUT, Exchange, is_bad_key, rcode_error};
use crate::dns::wire::{WireError, from_wire_all, to_wire, to_wire_name};
use crate::secret::Secret;

pub const SPEC: ProviderSpec = ProviderSpec {
    name: "rfc2136",
    aliases: &["nsupdate"],
    keys: &[
        KeySpec {
            name: "server",
            required: true,
            secret: false,
            doc: "host[:port] of the primary server accepting updates (port 53 by default)",
        },
        KeySpec {
            name: "keyname",
            required: true,
            secret: false,
            doc: "TSIG key name",
        },
        KeySpec {
            name: "keyalgorithm",
            required: false,
            secret: false,
            doc: "hmac-sha256 (default), hmac-sha384 or hmac-sha512",
        },
        KeySpec {
            name: "secret",
            required: true,
            secret: true,
            doc: "TSIG secret, base64",
        },
        KeySpec {
            name: "zone",
            required: false,
            secret: false,
            doc: "the zone to update (found by SOA lookup when not set)",
        },
    ],
    // One UPDATE message per zone (RFC 2136 §3.4: all or nothing).
    capabilities: super::capability::FULL_ATOMIC,
    build: |keys| Ok(Arc::new(Rfc2136::from_keys(keys)?)),
};

/// TSIG algorithms hickory-proto can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// A configured RFC 2136 server.
#[derive(Debug)]
pub struct Rfc2136 {
    pub host: String,
    pub port: u16,
    pub key_name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Secret,
    pub zone: Option<Name>,
    /// The time each network step may take (10 s; tests shorten it).
    pub timeout: Duration,
}

impl Rfc2136 {
    /// Builds the provider from its config keys.
    ///
    /// # Errors
    /// The key that is missing or invalid.
    pub fn from_keys(keys: &KeyValues) -> Result<Self, KeyError> {
        let required = |key: &str| {
            keys.get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| KeyError::new(key, "missing (required by handler rfc2136)"))
        };
        let (host, port) = crate::dns::parse_server(required("server")?)
            .map_err(|message| KeyError::new("server", message))?;
        let key_name = Name::parse(required("keyname")?)
            .map_err(|e| KeyError::new("keyname", format!("not a key name: {e}")))?;
        let algorithm = match keys
            .get("keyalgorithm")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => TsigAlgorithm::HmacSha256,
            Some(a) => match a.trim_end_matches('.') {
                "" | "hmac-sha256" => TsigAlgorithm::HmacSha256,
                "hmac-sha384" => TsigAlgorithm::HmacSha384,
                "hmac-sha512" => TsigAlgorithm::HmacSha512,
                other => {
                    return Err(KeyError::new(
                        "keyalgorithm",
                        format!(
                            "\"{other}\" is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
                        ),
                    ));
                }
            },
        };
        let secret_text = required("secret")?;
        if base64::engine::general_purpose::STANDARD
            .decode(secret_text)
            .map_or(true, |bytes| bytes.is_empty())
        {
            return Err(KeyError::new("secret", "not valid base64"));
        }
        let zone = match keys.get("zone").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => None,
            Some(z) => Some(
                Name::parse(z)
                    .map_err(|e| KeyError::new("zone", format!("not a zone name: {e}")))?,
            ),
        };
        Ok(Rfc2136 {
            host,
            port,
            key_name,
            algorithm,
            secret: Secret::new(secret_text),
            zone,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

impl Rfc2136 {
    /// The exchange context for one message to the configured server.
    fn exchange(&self, zone: &Name, what: &str, detail: String) -> Exchange {
        Exchange {
            host: self.host.clone(),
            port: self.port,
            zone: zone.to_string(),
            what: what.to_string(),
            detail,
            log_prefix: "rfc2136",
            timeout: self.timeout,
        }
    }

    /// The TSIG signer of the configured key (fudge 300 s, RFC 8945 §10).
    fn signer(&self) -> Result<TSigner, ProviderError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(self.secret.expose().trim())
            .map_err(|_| self.key_problem("the secret is not valid base64"))?;
        let name = to_wire_name(&self.key_name).map_err(|e| self.key_problem(&e.0))?;
        let algorithm = match self.algorithm {
            TsigAlgorithm::HmacSha256 => HickoryTsigAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryTsigAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryTsigAlgorithm::HmacSha512,
        };
        TSigner::new(key, algorithm, name, 300).map_err(|e| self.key_problem(&e.to_string()))
    }

    fn key_problem(&self, reason: &str) -> ProviderError {
        ProviderError::BadTsig {
            server: self.server(),
            key: self.key_name.to_string(),
            reason: reason.to_string(),
        }
    }

    /// `host:port` as used in log lines and errors.
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Knot answers NOTAUTH with TSIG error BADKEY both for an unknown key and for
    /// a known key the ACL does not allow (BIND answers REFUSED to the latter).
    /// After a BADKEY, one signed SOA query tells them apart: when the server
    /// answers it with a valid signature, the key is known and only lacks the
    /// right, so the error becomes `Refused`.
    async fn explain_bad_key(
        &self,
        zone: &Name,
        signer: &TSigner,
        error: ProviderError,
        what: &str,
    ) -> ProviderError {
        if !is_bad_key(&error) {
            return error;
        }
        let probe = self.exchange(zone, "SOA query", format!("QUERY SOA {zone}"));
        let Ok(wire_zone) = to_wire_name(zone) else {
            return error;
        };
        let mut query = Message::query();
        query.add_query(Query::query(wire_zone, RecordType::SOA));
        match probe.exchange(query, Some(signer)).await {
            Ok(answer) if answer.response_code == ResponseCode::NoError => ProviderError::Refused {
                server: self.server(),
                zone: zone.to_string(),
                what: format!("{what} (NOTAUTH/BADKEY for a key the server knows)"),
            },
            _ => error,
        }
    }

    fn encode_error(&self, e: WireError) -> ProviderError {
        ProviderError::Protocol {
            server: self.server(),
            reason: e.0,
        }
    }
}

#[async_trait]
impl DnsProvider for Rfc2136 {
    fn describe(&self) -> String {
        format!("rfc2136 {}", self.server())
    }

    /// One TSIG-signed SOA query for `name`: the SOA owner in the answer (the name
    /// is the apex) or in the authority section (below the apex, NXDOMAIN or
    /// NODATA; RFC 2308 §2) is the zone.
    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError> {
        if let Some(zone) = &self.zone {
            return Ok(zone.clone());
        }
        let signer = self.signer()?;
        let exchange = self.exchange(name, "SOA query", format!("QUERY SOA {name}"));
        let mut query = Message::query();
        query.add_query(Query::query(
            to_wire_name(name).map_err(|e| self.encode_error(e))?,
            RecordType::SOA,
        ));
        let no_zone = |reason: &str| ProviderError::NoZone {
            name: name.to_string(),
            server: self.server(),
            reason: reason.to_string(),
        };
        let refused = |code: &str| {
            no_zone(&format!(
                "the server answered {code} (it has no zone containing the name)"
            ))
        };
        let answer = match exchange.exchange(query, Some(&signer)).await {
            Ok(answer) => answer,
            // Knot and BIND answer unsigned REFUSED/NOTAUTH for names outside their zones.
            Err(ProviderError::Refused { .. }) => return Err(refused("REFUSED")),
            Err(ProviderError::NotAuthoritative { .. }) => return Err(refused("NOTAUTH")),
            Err(e) => return Err(e),
        };
        match answer.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            ResponseCode::Refused | ResponseCode::NotAuth => {
                return Err(refused(&answer.response_code.to_string()));
            }
            _ => return Err(rcode_error(&exchange, &answer, Some(&signer))),
        }
        soa_owner(&answer, name)
            .ok_or_else(|| no_zone("the answer holds no SOA record (is the server authoritative?)"))
    }

    /// One AXFR over TCP with TSIG (RFC 5936), every message verified; records of
    /// types the program does not handle are skipped.
    async fn read_zone(&self, zone: &Name) -> Result<Vec<Record>, ProviderError> {
        let signer = self.signer()?;
        let exchange = self.exchange(zone, "AXFR", format!("AXFR {zone}"));
        let mut query = Message::query();
        query.add_query(Query::query(
            to_wire_name(zone).map_err(|e| self.encode_error(e))?,
            RecordType::AXFR,
        ));
        match exchange.transfer(query, Some(&signer)).await {
            Ok(records) => Ok(from_wire_all(&records)),
            Err(e) => Err(self.explain_bad_key(zone, &signer, e, "AXFR").await),
        }
    }

    /// One UPDATE message (RFC 2136 §2.5, §3.4): zone section `zone SOA IN`, the
    /// adds first (class IN, the record's TTL; an SOA replaces the zone's SOA,
    /// §3.4.2.2), then the deletes as "delete an RR from an RRset" (class NONE,
    /// TTL 0, §2.5.4). Nothing is sent for an empty change set.
    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let signer = self.signer()?;
        let exchange = self.exchange(
            zone,
            "UPDATE",
            format!(
                "UPDATE {zone} ({} adds, {} deletes)",
                changes.adds.len(),
                changes.deletes.len()
            ),
        );
        let mut update = Message::query();
        update.metadata.op_code = OpCode::Update;
        update.add_query(Query::query(
            to_wire_name(zone).map_err(|e| self.encode_error(e))?,
            RecordType::SOA,
        ));
        for record in &changes.adds {
            let wire =
                to_wire(record, DNSClass::IN, record.ttl).map_err(|e| self.encode_error(e))?;
            update.add_authority(wire);
        }
        for record in &changes.deletes {
            let wire = to_wire(record, DNSClass::NONE, 0).map_err(|e| self.encode_error(e))?;
            update.add_authority(wire);
        }
        let answer = match exchange.exchange(update, Some(&signer)).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.explain_bad_key(zone, &signer, e, "UPDATE").await),
        };
        if answer.response_code != ResponseCode::NoError {
            return Err(rcode_error(&exchange, &answer, Some(&signer)));
        }
        Ok(())
    }

    async fn nameserver_hosts(
        &self,
        zone: &Name,
    ) -> Result<crate::dns::observe::NsHosts, ProviderError> {
        let server = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ProviderError::Unreachable {
                server: self.describe(),
                reason: format!("cannot resolve {}", self.host),
            })?;
        crate::dns::observe::ns_hosts_from(server, zone).await
    }
}
