//! Public address detection for `ip4 = auto` / `ip6 = auto`: an HTTP GET of a
//! URL that answers with the caller's address (`ip4lookup`, `ip6lookup`). The
//! answer must parse as an address of the right family; anything else is an
//! error, and the caller then leaves the key's records as they are.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

/// How long a lookup may take in all.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// An address is short; a longer answer is not an address.
const MAX_ANSWER: usize = 256;

/// Looks up the public IPv4 address at `url`.
///
/// # Errors
/// A message naming the URL and what went wrong.
pub(crate) async fn lookup_v4(url: &str) -> Result<Ipv4Addr, String> {
    lookup(url).await
}

/// Looks up the public IPv6 address at `url`.
///
/// # Errors
/// A message naming the URL and what went wrong.
pub(crate) async fn lookup_v6(url: &str) -> Result<Ipv6Addr, String> {
    lookup(url).await
}

async fn lookup<A: FromStr>(url: &str) -> Result<A, String> {
    let client = crate::http::client(LOOKUP_TIMEOUT).map_err(|e| format!("{url}: {e}"))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::http::describe(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", crate::http::describe(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(format!(
                "{url} answered with more than {MAX_ANSWER} bytes, not an address"
            ));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    text.parse().map_err(|_| {
        let shown: String = text.chars().take(60).collect();
        format!(
            "{url} answered \"{}\", which is not an address of the expected family",
            shown.escape_debug()
        )
    })
}
