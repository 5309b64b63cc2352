//! DNS: the record model, the providers that change zones, and observation of
//! what authoritative servers serve.

pub mod authoritative;
pub(crate) mod connections;
pub(crate) mod error;
pub mod observe;
pub(crate) mod presentation;
pub mod provider;
pub mod record;
pub(crate) mod transport;
pub mod wire;

/// A DNS server as `host`, `host:port`, `[v6]:port` or a bare IPv6 address
/// (port 53 by default).
///
/// # Errors
/// A message saying what is wrong with the text.
pub fn parse_server(text: &str) -> Result<(String, u16), String> {
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

#[cfg(test)]
mod tests {
    use super::parse_server;

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
