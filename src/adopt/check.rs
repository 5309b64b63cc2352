//! The pure checks of `--adopt`: whether the certificate and key found at a
//! destination, or the DKIM key found at `keylocation/keyname`, can become a
//! section's current material. Files' contents, the configuration, what DNS
//! publishes and the time come in; the material to record, or why not, goes
//! out.

use chrono::{DateTime, Utc};

use crate::config::cert::CertSection;
use crate::config::dkim::DkimSection;
use crate::dns::record::Name;
use crate::material::cert::{
    CertInfo, KeyPem, issued_by, key_matches_cert, key_to_pkcs8, key_type_of, parse_chain,
};
use crate::material::dkim;
use crate::plan::timing::WHEN;

/// A certificate and key as found on disk.
#[derive(Clone, Debug)]
pub(crate) struct FoundCert {
    /// Where they were found, for messages (`/etc/letsencrypt/live/example.com`).
    pub place: String,
    /// The leaf first, then the issuers.
    pub chain_pem: String,
    pub key_pem: String,
}

/// A certificate that passed every check.
#[derive(Clone, Debug)]
pub(crate) struct AdoptedCert {
    pub key: KeyPem,
    pub info: CertInfo,
    /// `ecdsa-p256`, `rsa-4096`.
    pub key_type: String,
    /// The leaf and the issuers as PEM.
    pub leaf_pem: String,
    pub issuers_pem: String,
    /// Notes for the log (renewal due soon, another key type than configured).
    pub notes: Vec<String>,
}

/// Checks a certificate found for `cert`: readable, the key is the leaf's,
/// the chain belongs to it, it is valid `now` and covers every configured name.
///
/// # Errors
/// What is wrong, naming the place.
pub(crate) fn check_cert(
    cert: &CertSection,
    found: &FoundCert,
    now: DateTime<Utc>,
) -> Result<AdoptedCert, String> {
    let place = &found.place;
    let info =
        parse_chain(&found.chain_pem).map_err(|e| format!("{place}: the certificate: {e}"))?;
    let key = key_to_pkcs8(&found.key_pem).map_err(|e| format!("{place}: the private key: {e}"))?;
    let matches = key_matches_cert(&key, &found.chain_pem)
        .map_err(|e| format!("{place}: the private key: {e}"))?;
    if !matches {
        return Err(format!(
            "{place}: the private key does not belong to the certificate (serial {}); a server using them together would fail every TLS handshake",
            info.serial
        ));
    }
    let at = |unix: i64| {
        DateTime::from_timestamp(unix, 0)
            .map_or_else(|| unix.to_string(), |t| t.format(WHEN).to_string())
    };
    if info.not_after <= now.timestamp() {
        return Err(format!(
            "{place}: the certificate (serial {}) expired on {}; let --prepare issue a new one instead",
            info.serial,
            at(info.not_after)
        ));
    }
    if info.not_before > now.timestamp() {
        return Err(format!(
            "{place}: the certificate (serial {}) is not valid before {}",
            info.serial,
            at(info.not_before)
        ));
    }
    let Some(issuer) = info.issuers_der.first() else {
        return Err(format!(
            "{place}: only the certificate, no issuer certificate (chain.pem): DANE-TA records and clients need the chain"
        ));
    };
    if !issued_by(&info.leaf_der, issuer) {
        return Err(format!(
            "{place}: the chain does not belong to the certificate (its first issuer certificate did not sign it)"
        ));
    }
    let missing: Vec<String> = cert
        .domains
        .iter()
        .filter(|name| !covers(&info.sans, name))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{place}: the certificate is for {}, not for {} that [cert:{}] names; let --prepare issue one for all its names instead",
            info.sans.join(", "),
            missing.join(", "),
            cert.name
        ));
    }
    let key_type = adopted_key_type(&key, &info)?;
    let mut notes = Vec::new();
    let wanted = crate::plan::cert::key_type_name(cert.key_type);
    if key_type != wanted {
        notes.push(format!(
            "its key is {key_type} but [cert:{}] asks for {wanted}, so the next --prepare renews it at once; set keytype (and keysize) to keep it until it is due",
            cert.name
        ));
    }
    let renew_from = info.not_after - i64::from(cert.renew_days) * 86_400;
    if renew_from <= now.timestamp() {
        notes.push(format!(
            "it expires on {}, within renewdays = {}: the next --prepare or --auto renews it",
            at(info.not_after),
            cert.renew_days
        ));
    }
    let blocks = pem_blocks(&found.chain_pem);
    Ok(AdoptedCert {
        key,
        key_type,
        leaf_pem: blocks.first().cloned().unwrap_or_default(),
        issuers_pem: blocks.iter().skip(1).cloned().collect(),
        info,
        notes,
    })
}

/// The key type name the state records (`rsa-4096`, `ecdsa-p256`).
fn adopted_key_type(key: &KeyPem, info: &CertInfo) -> Result<String, String> {
    let kind = key_type_of(key).map_err(|e| format!("the private key: {e}"))?;
    if kind != "rsa" {
        return Ok(kind.to_string());
    }
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let bits = match x509_parser::x509::SubjectPublicKeyInfo::from_der(&info.leaf_spki_der)
        .map_err(|e| format!("the certificate's RSA key: {e}"))?
        .1
        .parsed()
    {
        Ok(PublicKey::RSA(key)) => key.key_size(),
        _ => return Err("the certificate's key is not the RSA key of the private key".into()),
    };
    Ok(format!("rsa-{bits}"))
}

/// Whether a certificate with `sans` covers `name`: listed, or matched by a
/// wildcard for exactly one label (RFC 6125 §6.4.3).
pub(crate) fn covers(sans: &[String], name: &Name) -> bool {
    let name = name.as_str();
    sans.iter().any(|san| {
        let san = san.to_ascii_lowercase();
        san == name
            || san.strip_prefix("*.").is_some_and(|base| {
                name.split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && label != "*" && rest == base)
            })
    })
}

/// The `CERTIFICATE` blocks of a PEM text, each ending with a newline.
pub(crate) fn pem_blocks(chain: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    chain
        .split_inclusive(END)
        .filter_map(|block| {
            block
                .find("-----BEGIN CERTIFICATE-----")
                .map(|at| &block[at..])
        })
        .map(|block| format!("{block}\n"))
        .collect()
}

/// A DKIM key that passed every check.
#[derive(Clone, Debug)]
pub(crate) struct AdoptedDkim {
    pub selector: String,
    pub key: KeyPem,
    pub key_type: String,
    /// The record data to keep publishing: as published, when it is.
    pub txt: String,
    /// The domains that publish it already.
    pub published: Vec<Name>,
    pub created: DateTime<Utc>,
    pub notes: Vec<String>,
}

/// What a DKIM adoption knows besides the key: the selector the signing
/// configuration names (if it names one), and the DKIM records the zones
/// publish below `_domainkey` of each domain (owner and text).
pub(crate) struct DkimContext<'a> {
    pub place: String,
    pub configured_selector: Option<String>,
    pub records: &'a [(Name, String)],
    /// When the key file was last changed, for a selector without a time.
    pub file_time: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Checks the DKIM key at `keylocation/keyname` of `dkim`: readable, of a
/// type the program signs with, and either published under the selector the
/// signing configuration names, or found in DNS by its public key.
///
/// # Errors
/// What is wrong, naming the place.
pub(crate) fn check_dkim(
    dkim_section: &DkimSection,
    key_pem: &str,
    context: &DkimContext<'_>,
) -> Result<AdoptedDkim, String> {
    let place = &context.place;
    let key = key_to_pkcs8(key_pem).map_err(|e| format!("{place}: {e}"))?;
    let made =
        dkim::from_pem(key.expose()).map_err(|e| format!("{place}: {e} (RSA or Ed25519 keys)"))?;
    let ours = public_key_of(&made.txt);
    // Records at SELECTOR._domainkey.DOMAIN, by selector.
    let at_selector = |selector: &str| -> Vec<(&Name, &String)> {
        context
            .records
            .iter()
            .filter(|(owner, _)| {
                dkim_section
                    .domains
                    .iter()
                    .any(|d| dkim::record_name(selector, d).is_ok_and(|wanted| &wanted == owner))
            })
            .map(|(o, t)| (o, t))
            .collect()
    };
    let selector = match &context.configured_selector {
        Some(selector) => selector.clone(),
        None => {
            let mut found: Vec<String> = context
                .records
                .iter()
                .filter(|(_, text)| public_key_of(text) == ours)
                .filter_map(|(owner, _)| selector_of(owner, &dkim_section.domains))
                .collect();
            found.sort();
            found.dedup();
            match found.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(format!(
                        "{place}: cannot tell its selector: the signing configuration names none, and no DKIM record of {} publishes this key",
                        domains_text(&dkim_section.domains)
                    ));
                }
                many => {
                    return Err(format!(
                        "{place}: the key is published under several selectors ({}); keep one",
                        many.join(", ")
                    ));
                }
            }
        }
    };
    let mut txt = made.txt.clone();
    let mut published = Vec::new();
    for (owner, text) in at_selector(&selector) {
        if public_key_of(text) != ours {
            return Err(format!(
                "{place}: {owner} publishes another key than this one, so mail signed with it would fail verification; the signing configuration and the DNS do not agree"
            ));
        }
        if published.is_empty() {
            txt = text.clone();
        }
        if let Some(domain) = dkim_section
            .domains
            .iter()
            .find(|d| dkim::record_name(&selector, d).is_ok_and(|n| &n == owner))
        {
            published.push(domain.clone());
        }
    }
    let mut notes = Vec::new();
    let unpublished: Vec<Name> = dkim_section
        .domains
        .iter()
        .filter(|d| !published.contains(d))
        .cloned()
        .collect();
    if !unpublished.is_empty() {
        notes.push(format!(
            "selector {selector} is not published for {}: the next run publishes it; until then mail signed with it fails verification there",
            domains_text(&unpublished)
        ));
    }
    let created = created_from_selector(&selector)
        .or(context.file_time)
        .unwrap_or(context.now);
    Ok(AdoptedDkim {
        selector,
        key,
        key_type: made.key_type.to_string(),
        txt,
        published,
        created,
        notes,
    })
}

fn domains_text(domains: &[Name]) -> String {
    domains
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `p=` tag of a DKIM record, without spaces (RFC 6376 §3.6.1).
pub(crate) fn public_key_of(text: &str) -> Option<String> {
    text.split(';').find_map(|tag| {
        let (name, value) = tag.split_once('=')?;
        (name.trim() == "p").then(|| value.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// The selector of a DKIM record owner `SELECTOR._domainkey.DOMAIN` for one
/// of `domains`.
fn selector_of(owner: &Name, domains: &[Name]) -> Option<String> {
    domains.iter().find_map(|d| {
        let base = d.prepend("_domainkey").ok()?;
        match owner.labels_below(&base)?.as_slice() {
            [selector] => Some((*selector).to_string()),
            _ => None,
        }
    })
}

/// The time in a selector of the original's form `BASE_UNIXTIME`.
pub(crate) fn created_from_selector(selector: &str) -> Option<DateTime<Utc>> {
    let (_, digits) = selector.rsplit_once('_')?;
    if digits.len() < 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    DateTime::from_timestamp(digits.parse().ok()?, 0)
}

/// The selector a signing configuration names for the key `key_path`:
/// rspamd's `selector = "..."` (the one selector of the file), or the
/// OpenDKIM KeyTable line `NAME DOMAIN:SELECTOR:KEYFILE` naming the key.
///
/// # Errors
/// The file names several selectors and none can be told apart.
pub(crate) fn selector_in_config(text: &str, key_path: &str) -> Result<Option<String>, String> {
    let mut rspamd: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("selector")
            && let Some(value) = rest.trim_start().strip_prefix(['=', ':'])
        {
            let value = value.trim().trim_end_matches(';').trim().trim_matches('"');
            if !value.is_empty() && !rspamd.iter().any(|s| s == value) {
                rspamd.push(value.to_string());
            }
        }
        // OpenDKIM KeyTable: `NAME DOMAIN:SELECTOR:KEYFILE`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, value] = fields.as_slice()
            && let [_, selector, file] = value.splitn(3, ':').collect::<Vec<_>>().as_slice()
            && *file == key_path
        {
            return Ok(Some((*selector).to_string()));
        }
    }
    match rspamd.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(format!(
            "it names several selectors ({}); adopt with a signing configuration of one",
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    #[test]
    fn wildcards_cover_one_label() {
        let sans = vec!["*.example.com".to_string(), "example.com".to_string()];
        assert!(covers(&sans, &name("www.example.com")));
        assert!(covers(&sans, &name("example.com")));
        assert!(!covers(&sans, &name("a.b.example.com")));
        assert!(!covers(&sans, &name("example.org")));
    }

    #[test]
    fn selectors_from_rspamd_and_opendkim_configurations() {
        let rspamd =
            "path = \"/var/lib/rspamd/dkim/dkim.key\";\nselector = \"mainkey_1543000000\";\n";
        assert_eq!(
            selector_in_config(rspamd, "/var/lib/rspamd/dkim/dkim.key"),
            Ok(Some("mainkey_1543000000".into()))
        );
        let table = "mk._domainkey.example.com example.com:mk:/etc/dkim/other.key\n\
                     mk2._domainkey.example.com example.com:mk2:/etc/dkim/dkim.key\n";
        assert_eq!(
            selector_in_config(table, "/etc/dkim/dkim.key"),
            Ok(Some("mk2".into()))
        );
        assert_eq!(selector_in_config("# nothing\n", "/x"), Ok(None));
        assert!(selector_in_config("selector = \"a\";\nselector = \"b\";\n", "/x").is_err());
    }

    #[test]
    fn selector_times_and_public_keys() {
        assert_eq!(
            created_from_selector("mainkey_1543000000").map(|t| t.timestamp()),
            Some(1_543_000_000)
        );
        assert_eq!(created_from_selector("mail"), None);
        assert_eq!(created_from_selector("key_2024"), None);
        assert_eq!(
            public_key_of("v=DKIM1; k=rsa; p=MIIB AQAB"),
            Some("MIIBAQAB".into())
        );
        assert_eq!(public_key_of("v=spf1 -all"), None);
        assert_eq!(
            selector_of(&name("mk_1._domainkey.example.com"), &[name("example.com")]),
            Some("mk_1".into())
        );
    }
}
