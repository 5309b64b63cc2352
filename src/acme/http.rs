//! Our HTTP client for `instant-acme`, on `reqwest` with rustls (aws-lc-rs).
//!
//! It exists for three reasons: a `cacert` root can be trusted for the CA's own
//! TLS (private and test CAs), the `Retry-After` header and status of the last
//! response are kept for the caller's retry decisions (RFC 8555 §6.6 rate
//! limits, §7.4 polling), and response bodies are capped so a misbehaving server
//! cannot exhaust memory. Redirects are not followed: ACME never needs them.
//!
//! Several orders share one client (one account, one connection pool); each
//! order's work runs inside [`AcmeHttp::scoped`], so the last response it sees
//! is its own and not that of another order's request in between.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use instant_acme::{BodyWrapper, BytesBody, BytesResponse, HttpClient};

/// Largest response body accepted from a CA (certificate chains are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// Time allowed to open a connection to the CA.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

tokio::task_local! {
    /// The last response seen by the work inside [`AcmeHttp::scoped`].
    static SCOPED_LAST: std::cell::Cell<LastResponse>;
}

/// The status and `Retry-After` of the last response, shared with the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct LastResponse {
    pub status: Option<u16>,
    pub retry_after: Option<SystemTime>,
}

/// A failure below HTTP: connecting, TLS, reading, or a body over [`MAX_BODY`].
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct TransportError {
    pub url: String,
    pub reason: String,
    /// Nothing was sent: connection refused, no route, TLS handshake failure.
    pub connect: bool,
    /// The response was larger than [`MAX_BODY`] (not worth retrying).
    pub oversized: bool,
}

/// The HTTP client handed to `instant-acme`. Cheap to clone; clones share the
/// connection pool and the [`LastResponse`].
#[derive(Clone)]
pub struct AcmeHttp {
    client: reqwest::Client,
    last: Arc<Mutex<LastResponse>>,
}

/// The TLS configuration could not be built (`cacert` unreadable or not PEM).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpSetupError(pub String);

impl AcmeHttp {
    /// Builds a client. With `cacert`, only that PEM root (or roots) is trusted
    /// for the CA's TLS; without it, the system's roots are.
    ///
    /// # Errors
    /// When `cacert` cannot be read or holds no certificate, or the TLS setup fails.
    pub fn new(cacert: Option<&Path>) -> Result<Self, HttpSetupError> {
        // Several parts of the program may race to install it; "already" is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("cryptdomainmgr/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = cacert {
            let pem = std::fs::read(path).map_err(|e| {
                HttpSetupError(format!("cannot read cacert {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                HttpSetupError(format!("cacert {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(HttpSetupError(format!(
                    "cacert {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| HttpSetupError(format!("cannot set up HTTPS: {}", error_chain(&e))))?;
        Ok(AcmeHttp {
            client,
            last: Arc::new(Mutex::new(LastResponse::default())),
        })
    }

    /// Status and `Retry-After` of the most recent response: of the work
    /// running inside [`AcmeHttp::scoped`], else of the whole client.
    pub fn last(&self) -> LastResponse {
        SCOPED_LAST
            .try_with(std::cell::Cell::get)
            .unwrap_or_else(|_| self.last.lock().map(|l| *l).unwrap_or_default())
    }

    fn set_last(&self, last: LastResponse) {
        let _ = SCOPED_LAST.try_with(|l| l.set(last));
        if let Ok(mut l) = self.last.lock() {
            *l = last;
        }
    }

    /// Runs `work` with its own "last response", so that requests other work
    /// makes meanwhile on the same client do not show up in [`AcmeHttp::last`].
    pub async fn scoped<F: Future>(work: F) -> F::Output {
        SCOPED_LAST
            .scope(std::cell::Cell::new(LastResponse::default()), work)
            .await
    }

    /// A plain GET returning the status and the (capped) body, e.g. the directory.
    ///
    /// # Errors
    /// On a transport failure or an oversized body.
    pub async fn get(&self, url: &str) -> Result<(u16, Bytes), TransportError> {
        let rsp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        let status = rsp.status().as_u16();
        let body = read_capped(url, rsp).await?;
        Ok((status, body))
    }

    /// A plain GET returning the status, the raw `Retry-After` header and the
    /// (capped) body: ACME Renewal Information, which needs the header.
    ///
    /// # Errors
    /// On a transport failure or an oversized body.
    pub async fn get_with_retry_after(
        &self,
        url: &str,
    ) -> Result<(u16, Option<String>, Bytes), TransportError> {
        let rsp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        let status = rsp.status().as_u16();
        let retry_after = rsp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_capped(url, rsp).await?;
        Ok((status, retry_after, body))
    }

    async fn send(
        self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Result<BytesResponse, instant_acme::Error> {
        use http_body_util::BodyExt;
        let (parts, body) = req.into_parts();
        let url = parts.uri.to_string();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let rsp = self
            .client
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| instant_acme::Error::Other(Box::new(transport(&url, &e))))?;
        let status = rsp.status();
        let headers = rsp.headers().clone();
        let retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        self.set_last(LastResponse {
            status: Some(status.as_u16()),
            retry_after,
        });
        let bytes = read_capped(&url, rsp)
            .await
            .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
        let mut out = http::Response::new(());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        let (parts, ()) = out.into_parts();
        Ok(BytesResponse {
            parts,
            body: Box::new(bytes) as Box<dyn BytesBody>,
        })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        Box::pin(self.clone().send(req))
    }
}

/// Reads a response body, failing once it exceeds [`MAX_BODY`].
async fn read_capped(url: &str, mut rsp: reqwest::Response) -> Result<Bytes, TransportError> {
    if rsp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large(url));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = rsp.chunk().await.map_err(|e| transport(url, &e))? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_large(url));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn too_large(url: &str) -> TransportError {
    TransportError {
        url: url.to_string(),
        reason: format!("response larger than {MAX_BODY} bytes, refused"),
        connect: false,
        oversized: true,
    }
}

fn transport(url: &str, e: &reqwest::Error) -> TransportError {
    TransportError {
        url: url.to_string(),
        reason: error_chain(e),
        connect: e.is_connect(),
        oversized: false,
    }
}

/// An error and its sources on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return now.checked_add(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(now + Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn a_missing_cacert_is_a_clear_error() {
        let err = AcmeHttp::new(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(err.0.contains("/nonexistent/ca.pem"), "{err}");
    }
}
