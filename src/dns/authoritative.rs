//! Which servers to ask whether a zone's records are served: the configured
//! `nameservers`, or the NS hosts the zone's provider lists, with addresses
//! from [`crate::dns::observe::resolve_nameservers`]. Sits above both the
//! providers and the query code, so neither depends on the other.

use crate::dns::error::ProviderError;
use crate::dns::observe::{NameServer, Server, resolve_nameservers};
use crate::dns::provider::DnsProvider;
use crate::dns::record::Name;

/// The authoritative servers of `zone` that `provider` lists, each with its
/// addresses on port 53.
///
/// # Errors
/// As [`resolve_nameservers`], or the provider cannot list the NS set.
pub async fn zone_nameservers(
    provider: &dyn DnsProvider,
    zone: &Name,
) -> Result<Vec<NameServer>, ProviderError> {
    resolve_nameservers(zone, provider.nameserver_hosts(zone).await?).await
}

/// The authoritative servers to ask about `zone`: the configured
/// `nameservers` (host, port), or else the zone's NS set from the provider.
///
/// # Errors
/// A configured name does not resolve, or the provider cannot list the NS set.
pub async fn authoritative(
    provider: &dyn DnsProvider,
    zone: &Name,
    configured: &[(String, u16)],
) -> Result<Vec<Server>, String> {
    let mut servers = Vec::new();
    if configured.is_empty() {
        let named = zone_nameservers(provider, zone)
            .await
            .map_err(|e| e.to_string())?;
        for ns in named {
            for addr in ns.addrs {
                if !servers.iter().any(|s: &Server| s.addr == addr) {
                    servers.push(Server {
                        name: ns.host.to_string(),
                        addr,
                    });
                }
            }
        }
        return Ok(servers);
    }
    for (host, port) in configured {
        let addrs = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("nameserver {host}: {e}"))?;
        for addr in addrs {
            servers.push(Server {
                name: host.clone(),
                addr,
            });
        }
    }
    Ok(servers)
}
