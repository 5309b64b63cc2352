//! The HTTP client setup shared by public-IP lookup and our API providers:
//! rustls with the ring provider (no OpenSSL), the platform's roots. The
//! `dns-update` crate brings aws-lc-rs too; installing ring as the process
//! default keeps every client on one provider.

use std::time::Duration;

/// Installs rustls' ring provider once per process (later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client with an overall timeout.
///
/// # Errors
/// When the TLS setup fails.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
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
pub fn describe(error: &reqwest::Error) -> String {
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
