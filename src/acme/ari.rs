//! ACME Renewal Information (RFC 9773): the CA's suggested window for renewing
//! a certificate. A plain GET of `renewalInfo/<certID>` (no account, no nonce);
//! the answer's `Retry-After` says when to ask again.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::http::{AcmeHttp, parse_retry_after};

/// How long an answer without `Retry-After` (or a failed request) is kept
/// before asking again.
pub(crate) const DEFAULT_RETRY: Duration = Duration::from_secs(6 * 3600);
/// Bounds on the CA's `Retry-After`, so that a broken value neither makes
/// every run ask nor stops asking for months.
pub(crate) const MIN_RETRY: Duration = Duration::from_secs(60);
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The CA's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RenewalInfo {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub explanation_url: Option<String>,
}

/// A request and what came of it: the window (or why there is none) and how
/// long to wait before asking again.
#[derive(Clone, Debug)]
pub(crate) struct Fetched {
    pub result: Result<RenewalInfo, String>,
    pub retry_after: Duration,
}

/// The RFC 9773 §4.1 identifier of a certificate: the base64url of its
/// Authority Key Identifier's keyIdentifier, a dot, the base64url of its
/// DER serial number's bytes.
///
/// # Errors
/// When the certificate cannot be parsed or has no Authority Key Identifier.
pub(crate) fn cert_id(leaf_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(leaf_der)
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .ok_or("the certificate has no Authority Key Identifier")?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki.0),
        URL_SAFE_NO_PAD.encode(cert.tbs_certificate.raw_serial())
    ))
}

/// Asks the CA for the renewal window of `cert_id`, with the CA's
/// `renewalInfo` URL (or why there is none) already known: several
/// certificates of one CA ask the directory once. Failures are part of the
/// result (the caller falls back to `renewdays` and asks again later), never
/// an error of the run.
pub(crate) async fn fetch_at(
    http: &AcmeHttp,
    base: Result<String, String>,
    cert_id: &str,
) -> Fetched {
    let failed = |reason: String, retry: Option<Duration>| Fetched {
        result: Err(reason),
        retry_after: retry.unwrap_or(DEFAULT_RETRY).clamp(MIN_RETRY, MAX_RETRY),
    };
    let base = match base {
        Ok(url) => url,
        Err(reason) => return failed(reason, None),
    };
    let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
    let (status, retry_after, body) = match http.get_with_retry_after(&url).await {
        Ok(answer) => answer,
        Err(e) => return failed(format!("cannot ask {url}: {}", e.reason), None),
    };
    let retry = retry_after.as_deref().and_then(|v| {
        let now = SystemTime::now();
        parse_retry_after(v, now).map(|at| at.duration_since(now).unwrap_or_default())
    });
    if status != 200 {
        return failed(format!("{url} answered HTTP {status}"), retry);
    }
    match parse(&body) {
        Ok(info) => Fetched {
            result: Ok(info),
            retry_after: retry.unwrap_or(DEFAULT_RETRY).clamp(MIN_RETRY, MAX_RETRY),
        },
        Err(reason) => failed(format!("{url}: {reason}"), retry),
    }
}

/// The `renewalInfo` URL of the CA's directory.
///
/// # Errors
/// The directory cannot be fetched or names none.
pub(crate) async fn renewal_info_url(
    http: &AcmeHttp,
    directory_url: &str,
) -> Result<String, String> {
    let (status, body) = http
        .get(directory_url)
        .await
        .map_err(|e| format!("cannot fetch the directory {directory_url}: {}", e.reason))?;
    if status != 200 {
        return Err(format!(
            "the directory {directory_url} answered HTTP {status}"
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("the directory {directory_url} is not JSON: {e}"))?;
    doc.get("renewalInfo")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            format!("the CA offers no renewal information (no renewalInfo in {directory_url})")
        })
}

/// Parses a renewalInfo document (RFC 9773 §4.2).
///
/// # Errors
/// When it is not the expected JSON, or the window ends before it starts.
pub(crate) fn parse(body: &[u8]) -> Result<RenewalInfo, String> {
    #[derive(serde::Deserialize)]
    struct Window {
        start: String,
        end: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        suggested_window: Window,
        #[serde(rename = "explanationURL")]
        explanation_url: Option<String>,
    }
    let doc: Doc =
        serde_json::from_slice(body).map_err(|e| format!("not a renewalInfo document: {e}"))?;
    let time = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
    };
    let start = time(&doc.suggested_window.start)?;
    let end = time(&doc.suggested_window.end)?;
    if end < start {
        return Err(format!(
            "the window ends ({end}) before it starts ({start})"
        ));
    }
    // A URL the CA gives is only shown to the operator, never followed; keep it
    // printable.
    let explanation_url = doc.explanation_url.filter(|u| {
        u.len() <= 512 && u.starts_with("https://") && !u.chars().any(char::is_control)
    });
    Ok(RenewalInfo {
        start,
        end,
        explanation_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_info_documents() {
        let ok = br#"{"suggestedWindow":{"start":"2026-01-02T04:00:00Z","end":"2026-01-03T04:00:00Z"},"explanationURL":"https://ca.example/why"}"#;
        let info = parse(ok).unwrap();
        assert_eq!(info.start.to_rfc3339(), "2026-01-02T04:00:00+00:00");
        assert_eq!(
            info.explanation_url.as_deref(),
            Some("https://ca.example/why")
        );
        let backwards =
            br#"{"suggestedWindow":{"start":"2026-01-03T04:00:00Z","end":"2026-01-02T04:00:00Z"}}"#;
        assert!(parse(backwards).unwrap_err().contains("before it starts"));
        assert!(parse(b"{}").is_err());
        assert!(parse(br#"{"suggestedWindow":{"start":"soon","end":"later"}}"#).is_err());
        let odd_url = br#"{"suggestedWindow":{"start":"2026-01-02T04:00:00Z","end":"2026-01-03T04:00:00Z"},"explanationURL":"javascript:x"}"#;
        assert_eq!(parse(odd_url).unwrap().explanation_url, None);
    }

    #[test]
    fn cert_id_of_the_fixture() {
        // Computed independently from `openssl x509 -ext authorityKeyIdentifier
        // -serial` of the fixture: keyid 23:53:90:..., serial 5CD8AADF...
        let chain = include_str!("../../tests/fixtures/tlsa/chain.pem");
        let der = crate::material::cert::pem_chain_to_der(chain).unwrap();
        assert_eq!(
            cert_id(&der[0]).unwrap(),
            "I1OQSVEPgj1C0wPWeGAU99I5xvw.XNiq33sBk4Bsj5ER0WxsD797R7A"
        );
        assert!(cert_id(b"not a certificate").is_err());
    }
}
