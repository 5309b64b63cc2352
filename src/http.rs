//! The HTTP client setup shared by public-IP lookup and our API providers:
//! rustls with the ring provider (no OpenSSL), the platform's roots. The
//! `dns-update` crate brings aws-lc-rs too; installing ring as the process
//! default keeps every client on one provider.
//!
//! Also what went wrong with a request that got no HTTP answer ([`Failure`]):
//! read from a request error's cause chain ([`classify`]), or, for a library
//! that passes on only the error's text, found by asking the endpoint once
//! more ([`probe`]).

use std::time::Duration;

/// Installs rustls' aws-lc-rs provider once per process (later calls are no-ops).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client with an overall timeout.
///
/// # Errors
/// When the TLS setup fails.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("cryptdomainmgr/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(&e))
}

/// A one-line description of a request error, with its cause chain (reqwest's
/// own message alone often says only "error sending request").
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a request got no HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing accepts connections at the address (connection refused).
    Refused,
    /// The host name does not resolve; the resolver's words.
    Dns(String),
    /// The TLS handshake failed (an untrusted certificate, ...); rustls' words.
    Tls(String),
    /// No answer within the timeout.
    Timeout,
    /// Anything else (connection reset, ...), described.
    Other(String),
}

/// What went wrong with a request, from the error's causes: hyper's "dns
/// error", an I/O error's kind, a rustls error (nested in I/O errors).
pub(crate) fn classify(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let causes = causes(error);
    for (i, cause) in causes.iter().enumerate() {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Failure::Tls(tls.to_string());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                std::io::ErrorKind::TimedOut => return Failure::Timeout,
                _ => {}
            }
        }
        if cause.to_string() == "dns error" {
            let innermost = causes[i..].last().map(|c| c.to_string());
            return Failure::Dns(innermost.unwrap_or_default());
        }
    }
    Failure::Other(describe(error))
}

/// The error and its causes, looking into I/O errors that wrap another error
/// (their `source` skips the wrapped error itself).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        out.push(cause);
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    out
}

/// Asks `url` once (GET, `timeout`) to find out why a request to it failed,
/// for errors known only as text. `None` when it answered this time.
pub(crate) async fn probe(url: &str, timeout: Duration) -> Option<Failure> {
    let client = match client(timeout) {
        Ok(client) => client,
        Err(e) => return Some(Failure::Other(e)),
    };
    match client.get(url).send().await {
        Ok(_) => None,
        Err(e) => Some(classify(&e)),
    }
}

/// `scheme://host[:port]` of `url`: where a request went, without path or
/// query (which may hold a key).
pub(crate) fn endpoint(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
                None => format!("{}://{host}", parsed.scheme()),
            }
        }
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// The host of `url`, for messages about name resolution.
pub(crate) fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_leave_out_path_and_query() {
        assert_eq!(
            endpoint("https://api.example.com/v1/zones?token=secret"),
            "https://api.example.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8081/api"),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            host("http://api.example.invalid:8/x"),
            "api.example.invalid"
        );
    }

    /// A closed port, a name that does not resolve and a server that never
    /// answers, each classified as what it is.
    #[tokio::test]
    async fn failures_are_classified() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_url = format!("http://{}/", silent.local_addr().unwrap());
        let short = Duration::from_millis(500);
        assert_eq!(
            probe(&format!("http://{closed}/"), short).await,
            Some(Failure::Refused)
        );
        assert!(matches!(
            probe("http://api.example.invalid/", short).await,
            Some(Failure::Dns(_))
        ));
        assert_eq!(probe(&silent_url, short).await, Some(Failure::Timeout));
    }
}
