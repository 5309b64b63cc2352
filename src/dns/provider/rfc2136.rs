//! RFC 2136 dynamic updates with TSIG (RFC 8945), on `hickory-proto` messages.
//! Reads a zone with one AXFR and applies all of a zone's changes in one UPDATE.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;

use super::{ChangeSet, DnsProvider, KeyError, KeySpec, KeyValues, ProviderError, ProviderSpec};
use crate::dns::record::{Name, Record};
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
        let (host, port) = parse_server(required("server")?)
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
        })
    }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn parse_server(text: &str) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("\"{p}\" is not a port number");
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("\"{text}\" lacks the closing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port(p))?,
            None if after.is_empty() => 53,
            None => return Err(format!("\"{text}\" is not host[:port]")),
        };
        return Ok((host.to_string(), port));
    }
    if text.matches(':').count() > 1 {
        return Ok((text.to_string(), 53));
    }
    match text.split_once(':') {
        Some((host, p)) => Ok((host.to_string(), p.parse().map_err(|_| bad_port(p))?)),
        None => Ok((text.to_string(), 53)),
    }
}

#[async_trait]
impl DnsProvider for Rfc2136 {
    fn describe(&self) -> String {
        format!("rfc2136 {}:{}", self.host, self.port)
    }

    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError> {
        if let Some(zone) = &self.zone {
            return Ok(zone.clone());
        }
        Err(ProviderError::NoZone {
            name: name.to_string(),
            server: self.describe(),
            reason: "SOA lookup not available yet".into(),
        })
    }

    async fn read_zone(&self, _zone: &Name) -> Result<Vec<Record>, ProviderError> {
        Err(ProviderError::Protocol {
            server: self.describe(),
            reason: "AXFR not available yet".into(),
        })
    }

    async fn apply(&self, _zone: &Name, _changes: &ChangeSet) -> Result<(), ProviderError> {
        Err(ProviderError::Protocol {
            server: self.describe(),
            reason: "UPDATE not available yet".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(parse_server("127.0.0.1"), Ok(("127.0.0.1".into(), 53)));
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Ok(("127.0.0.1".into(), 5353))
        );
        assert_eq!(parse_server("[::1]:5353"), Ok(("::1".into(), 5353)));
        assert_eq!(parse_server("::1"), Ok(("::1".into(), 53)));
        assert!(parse_server("ns:x").is_err());
    }
}
