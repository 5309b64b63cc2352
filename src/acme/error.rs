//! Typed ACME errors and the retry decision for a failed request.
//!
//! RFC 8555 §6.5 (`badNonce`: retry with the fresh nonce), §6.6 (`rateLimited`
//! with `Retry-After`), §6.7 (problem documents). Server-sent text is shown only
//! after [`sanitize`] (no control characters, bounded length) and never used as
//! anything but text.

use std::time::{Duration, SystemTime};

use crate::acme::http::{LastResponse, TransportError};
use crate::apply::fs::FsError;
use crate::material::cert::CertError;

/// The error a DNS-01 publisher returns.
pub type Dns01Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why talking to the CA failed. No variant ever holds key material or the EAB key.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("invalid ACME configuration: {0}")]
    Config(String),
    #[error("cannot reach the ACME CA at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the ACME CA rate-limits us ({detail}){}",
        retry_after.as_ref().map(|t| format!("; it asks to retry after {t}, later than we wait")).unwrap_or_default()
    )]
    RateLimited {
        detail: String,
        retry_after: Option<String>,
    },
    #[error("the ACME CA could not validate the DNS-01 challenge for {domain}: {detail}")]
    ChallengeInvalid { domain: String, detail: String },
    #[error("the ACME order {url} is invalid: {detail}")]
    OrderInvalid { url: String, detail: String },
    #[error("the ACME CA refused to {what}: {problem}")]
    Server { what: &'static str, problem: String },
    #[error("gave up to {what} after {attempts} attempts: {last}")]
    RetriesExhausted {
        what: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("DNS-01 {step} failed: {source}")]
    Dns01 {
        step: &'static str,
        #[source]
        source: Dns01Error,
    },
    #[error("ACME account file {path}: {reason}")]
    AccountFile { path: String, reason: String },
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Material(#[from] CertError),
    #[error("unexpected answer from the ACME CA: {0}")]
    Protocol(String),
}

/// What to do about a failed request.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Try again after the backoff (badNonce, 5xx, a timeout mid-request).
    Retry,
    /// Try again at this time if it is soon enough (rateLimited with Retry-After).
    RetryAt(Option<SystemTime>),
    /// Fail now with this error.
    Fail(AcmeError),
}

const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";
const SERVER_INTERNAL: &str = "urn:ietf:params:acme:error:serverInternal";

/// Classifies an `instant-acme` error using the last response seen.
pub(crate) fn classify(
    what: &'static str,
    err: instant_acme::Error,
    last: LastResponse,
) -> Decision {
    let server_error = last.status.is_some_and(|s| s >= 500);
    match err {
        instant_acme::Error::Api(problem) => {
            let kind = problem.r#type.as_deref().unwrap_or("");
            if kind == BAD_NONCE
                || kind == SERVER_INTERNAL
                || problem.status.is_some_and(|s| s >= 500)
            {
                Decision::Retry
            } else if kind == RATE_LIMITED || problem.status == Some(429) {
                Decision::RetryAt(last.retry_after)
            } else {
                Decision::Fail(AcmeError::Server {
                    what,
                    problem: describe_problem(&problem),
                })
            }
        }
        instant_acme::Error::Other(boxed) => match boxed.downcast::<TransportError>() {
            Ok(t) if t.connect => Decision::Fail(AcmeError::Unreachable {
                url: t.url,
                reason: t.reason,
            }),
            Ok(t) if t.oversized => Decision::Fail(AcmeError::Protocol(t.to_string())),
            Ok(_) => Decision::Retry,
            Err(other) => Decision::Fail(AcmeError::Protocol(sanitize(&other.to_string()))),
        },
        // A 5xx whose body is not a problem document (a proxy's error page).
        instant_acme::Error::Json(_) if server_error => Decision::Retry,
        other => Decision::Fail(AcmeError::Protocol(sanitize(&other.to_string()))),
    }
}

/// A problem document as one line: detail, type and subproblems (RFC 8555 §6.7.1).
pub fn describe_problem(problem: &instant_acme::Problem) -> String {
    let mut text = sanitize(problem.detail.as_deref().unwrap_or("no detail"));
    if let Some(kind) = &problem.r#type {
        text.push_str(&format!(" ({})", sanitize(kind)));
    }
    for sub in &problem.subproblems {
        text.push_str("; ");
        text.push_str(&sanitize(&sub.to_string()));
    }
    text
}

/// Server text made safe for a log line: control characters replaced, at most 500 characters.
pub fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    if text.chars().count() > 500 {
        out.push('…');
    }
    out
}

/// Bounds for retries and waiting. The defaults suit a CA on the internet.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Attempts per request for transient errors (badNonce, 5xx).
    pub max_attempts: u32,
    /// First backoff; doubled after each attempt, capped at 8 s.
    pub initial_backoff: Duration,
    /// Longest `Retry-After` we wait for on `rateLimited` before failing.
    pub max_retry_after: Duration,
    /// Deadline for an order to become ready and then valid.
    pub order_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(120),
            order_timeout: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// The retry policy these limits describe.
    pub(crate) fn policy(&self) -> crate::retry::Backoff {
        crate::retry::Backoff {
            first: self.initial_backoff,
            max: Duration::from_secs(8),
            attempts: self.max_attempts,
        }
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.policy().delay(attempt)
    }
}

/// Runs an ACME request, retrying transient failures within [`Limits`].
macro_rules! retry {
    ($http:expr, $limits:expr, $what:expr, $call:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match $call {
                Ok(v) => break Ok(v),
                Err(e) => {
                    let last = $http.last();
                    match $crate::acme::error::classify($what, e, last) {
                        $crate::acme::error::Decision::Fail(err) => break Err(err),
                        decision => {
                            match $crate::acme::error::wait_before_retry(
                                &$limits, $what, attempt, decision,
                            ) {
                                Ok(delay) => tokio::time::sleep(delay).await,
                                Err(err) => break Err(err),
                            }
                        }
                    }
                }
            }
        }
    }};
}
pub(crate) use retry;

/// How long to wait before the next attempt, or the error that ends retrying.
pub(crate) fn wait_before_retry(
    limits: &Limits,
    what: &'static str,
    attempt: u32,
    decision: Decision,
) -> Result<Duration, AcmeError> {
    if attempt >= limits.max_attempts {
        return Err(AcmeError::RetriesExhausted {
            what,
            attempts: attempt,
            last: match decision {
                Decision::RetryAt(_) => "rate limited".into(),
                _ => "transient server error (badNonce, 5xx or timeout)".into(),
            },
        });
    }
    match decision {
        Decision::RetryAt(at) => {
            let wait = at
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .unwrap_or_else(|| limits.backoff(attempt));
            if wait > limits.max_retry_after {
                let when = at.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
                return Err(AcmeError::RateLimited {
                    detail: format!("while trying to {what}"),
                    retry_after: when,
                });
            }
            log::info!(
                "ACME CA rate-limits {what}; waiting {} s as it asks (at most ratelimitwait = {} s), then trying again",
                wait.as_secs(),
                limits.max_retry_after.as_secs()
            );
            Ok(wait)
        }
        _ => {
            let wait = limits.backoff(attempt);
            log::debug!("transient ACME error on {what}; retry {attempt} in {wait:?}");
            Ok(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str, status: u16) -> instant_acme::Error {
        let json = format!(r#"{{"type":"{kind}","detail":"x\ny","status":{status}}}"#);
        instant_acme::Error::Api(serde_json::from_str(&json).unwrap())
    }

    #[test]
    fn bad_nonce_and_5xx_are_retried() {
        let last = LastResponse::default();
        assert!(matches!(
            classify("x", problem(BAD_NONCE, 400), last),
            Decision::Retry
        ));
        assert!(matches!(
            classify("x", problem(SERVER_INTERNAL, 500), last),
            Decision::Retry
        ));
        let fail = classify(
            "x",
            problem("urn:ietf:params:acme:error:malformed", 400),
            last,
        );
        match fail {
            Decision::Fail(AcmeError::Server { problem, .. }) => {
                assert_eq!(problem, "x y (urn:ietf:params:acme:error:malformed)")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limit_honours_retry_after_up_to_the_bound() {
        let limits = Limits {
            max_retry_after: Duration::from_secs(10),
            ..Limits::default()
        };
        let soon = SystemTime::now() + Duration::from_secs(3);
        let wait = wait_before_retry(&limits, "x", 1, Decision::RetryAt(Some(soon))).unwrap();
        assert!(wait <= Duration::from_secs(3) && wait > Duration::from_secs(1));
        let late = SystemTime::now() + Duration::from_secs(3600);
        let err = wait_before_retry(&limits, "create an order", 1, Decision::RetryAt(Some(late)))
            .unwrap_err();
        assert!(err.to_string().contains("rate-limits"), "{err}");
        assert!(err.to_string().contains("retry after"), "{err}");
    }

    #[test]
    fn retries_are_bounded() {
        let limits = Limits::default();
        let err =
            wait_before_retry(&limits, "x", limits.max_attempts, Decision::Retry).unwrap_err();
        assert!(matches!(err, AcmeError::RetriesExhausted { .. }));
        assert_eq!(limits.backoff(20), Duration::from_secs(8));
    }

    #[test]
    fn sanitize_strips_control_characters_and_bounds_length() {
        assert_eq!(sanitize("a\u{1b}[31mb\r\n"), "a [31mb  ");
        assert_eq!(sanitize(&"x".repeat(600)).chars().count(), 501);
    }
}
