//! `[cert]` and `[cert:NAME]` sections (docs/configuration.md): which CA, account, key type,
//! where the files go. The names on a certificate are the `[domain:X]` sections
//! whose `cert` key lists it (`cert = auto` lists every certificate).

use std::path::PathBuf;

use super::domain::Domain;
use super::ini::{ConfigError, Span, Value};
use super::original::{self, Flag};
use super::records::RecordKind;
use super::section::ModuleSection;
use crate::acme::{self, Eab};
use crate::dns::record::Name;
use crate::material::cert::KeyType;
use crate::secret::Secret;

/// The keys of `[cert]` sections.
pub(crate) const KEYS: &[&str] = &[
    "handler",
    "ca",
    "email",
    "keytype",
    "keysize",
    "destination",
    "extraflags",
    "cacert",
    "eabkid",
    "eabhmackey",
    "renewdays",
    "ratelimitwait",
    "keystrategy",
    "keyrotatedays",
    "ari",
    "propagationtimeout",
    "caaidentity",
];

pub(crate) const DEFAULT_RENEW_DAYS: u32 = 30;
/// Days a key stays current with `keystrategy = staged`.
pub(crate) const DEFAULT_KEY_ROTATE_DAYS: u32 = 365;
/// Seconds of `Retry-After` waited for before a rate-limited issuance fails.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: u64 = 120;

/// One certificate to keep.
#[derive(Clone, Debug)]
pub struct CertSection {
    pub name: String,
    pub span: Option<Span>,
    /// The ACME directory URL.
    pub directory: String,
    pub email: Option<String>,
    pub eab: Option<Eab>,
    /// Root to trust for the CA's own TLS.
    pub cacert: Option<PathBuf>,
    pub key_type: KeyType,
    /// Files go to `DESTINATION/<name>/` on rollover.
    pub destination: Option<PathBuf>,
    /// `extraflags = -x`: renew on every prepare.
    pub force: bool,
    pub renew_days: u32,
    /// `ari`: ask the CA's renewal information (RFC 9773); `renewdays` is the
    /// fallback when it gives none.
    pub ari: bool,
    /// The longest `Retry-After` of a rate-limited CA that is waited for.
    pub rate_limit_wait: std::time::Duration,
    /// `caaidentity`: the CA's CAA issuer domain for `caa = auto`, for a CA
    /// whose directory names none.
    pub caa_identity: Option<String>,
    /// `propagationtimeout`: how long the challenge records may take to be
    /// served; `None` takes the domains' setting.
    pub propagation_timeout: Option<std::time::Duration>,
    /// `keystrategy`: a new key for every certificate, or a kept key with a
    /// published next key.
    pub key_strategy: KeyStrategy,
    /// `keyrotatedays`: with `staged`, how long a key stays current before
    /// the next one takes over.
    pub key_rotate_days: u32,
    /// The names on the certificate, with the domain section each comes from.
    pub domains: Vec<Name>,
}

/// How a certificate's keys change (`keystrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStrategy {
    /// A new key for every certificate: every renewal is a TLSA rollover.
    New,
    /// The key is kept across renewals, and a next key is made at once and
    /// its `3 1 1` record published next to the current one (RFC 7671 §8.1);
    /// every `keyrotatedays` the next key becomes current.
    Staged,
}

/// Builds the certificate sections and links them with the domains.
pub(super) fn build_certs(
    sections: &[ModuleSection],
    domains: &mut [Domain],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Vec<CertSection> {
    let mut certs: Vec<CertSection> = sections
        .iter()
        .filter(|s| s.module == "cert")
        .filter_map(|s| build_cert(s, errors, warnings))
        .collect();
    let known: Vec<String> = certs.iter().map(|c| c.name.clone()).collect();
    for domain in domains.iter_mut() {
        let Some(listed) = &mut domain.certs else {
            continue;
        };
        if listed.names.iter().any(|n| n.eq_ignore_ascii_case("auto")) {
            listed.names = known.clone();
        }
        for name in &listed.names {
            match certs.iter_mut().find(|c| &c.name == name) {
                Some(cert) => cert.domains.push(domain.name.clone()),
                None => errors.push(ConfigError::new(
                    &listed.span,
                    format!(
                        "[domain:{}] cert = {name}: there is no [cert:{name}] section",
                        domain.name
                    ),
                )),
            }
        }
    }
    for domain in domains.iter() {
        require_certs_for_tlsa(domain, errors);
    }
    for cert in certs
        .iter()
        .filter(|c| c.key_strategy == KeyStrategy::Staged)
    {
        warn_nothing_to_stage(cert, domains, warnings);
    }
    for cert in &certs {
        if cert.domains.is_empty()
            && let Some(span) = &cert.span
        {
            warnings.push(ConfigError::new(
                span,
                format!(
                    "[cert:{}] is not listed by any domain's cert key, so it has no names and is not issued",
                    cert.name
                ),
            ));
        }
    }
    certs.retain(|c| !c.domains.is_empty());
    certs
}

/// `staged` publishes the next key's records: those of the key itself (usage
/// 3 or 1, selector 1). A certificate whose domains have none (only `2 x x`
/// records pin the CA, or `x 0 x` the whole certificate) has nothing to stage.
fn warn_nothing_to_stage(cert: &CertSection, domains: &[Domain], warnings: &mut Vec<ConfigError>) {
    let stageable = domains
        .iter()
        .filter(|d| {
            d.certs
                .as_ref()
                .is_some_and(|c| c.names.contains(&cert.name))
        })
        .flat_map(|d| d.rules.iter())
        .any(|r| match &r.rule.kind {
            RecordKind::Tlsa { entries, .. } => entries
                .iter()
                .any(|e| e.selector == 1 && matches!(e.usage, 1 | 3)),
            _ => false,
        });
    if !stageable && let Some(span) = &cert.span {
        warnings.push(ConfigError::new(
            span,
            format!(
                "[cert:{}] keystrategy = staged, but no TLSA key of its domains names the key itself (usage 3 or 1 with selector 1): there is nothing to stage, and 2 x x records do not depend on the key",
                cert.name
            ),
        ));
    }
}

/// TLSA records come from the domain's certificates: a `tlsa` key with entries
/// on a domain without a `cert` key could never publish anything.
fn require_certs_for_tlsa(domain: &Domain, errors: &mut Vec<ConfigError>) {
    let has_certs = domain.certs.as_ref().is_some_and(|c| !c.names.is_empty());
    if has_certs {
        return;
    }
    for spanned in &domain.rules {
        if let RecordKind::Tlsa { entries, .. } = &spanned.rule.kind
            && !entries.is_empty()
        {
            errors.push(ConfigError::new(
                &spanned.span,
                format!(
                    "[domain:{}] {}: TLSA records come from the domain's certificates, but it has no cert key",
                    domain.name, spanned.rule.key
                ),
            ));
        }
    }
}

fn build_cert(
    section: &ModuleSection,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<CertSection> {
    let entries = &section.entries;
    let before = errors.len();
    let text = |key: &str| {
        entries
            .get(key)
            .map(|v| v.text.trim())
            .filter(|t| !t.is_empty())
    };
    let propagation_timeout = super::section::seconds_key(
        "propagationtimeout",
        entries.get("propagationtimeout"),
        errors,
    );
    let mut err = |value: &Value, message: String| {
        errors.push(ConfigError::new(&value.span, message));
    };

    // The original's handlers all meant Let's Encrypt through dehydrated.
    let mut default_ca = "letsencrypt";
    if let Some(value) = entries.get("handler") {
        match value.text.trim().to_ascii_lowercase().as_str() {
            "" | "acme" => {}
            "dehydrated" | "dehydrated/letsencrypt" | "letsencrypt" => default_ca = "letsencrypt",
            other => err(
                value,
                format!(
                    "unknown cert handler \"{other}\" (use acme; dehydrated and letsencrypt are accepted)"
                ),
            ),
        }
    }
    let mut force = false;
    if let Some(value) = entries.get("extraflags") {
        for flag in value
            .text
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            // As in the original, a flag without dashes is a long one.
            let flag = if flag.starts_with('-') {
                flag.to_string()
            } else {
                format!("--{flag}")
            };
            match flag.as_str() {
                "--staging" => default_ca = "letsencrypt-staging",
                "-x" | "--force" => force = true,
                other => match original::dehydrated_flag(other) {
                    Some(Flag::Ignored(why)) => warnings.push(ConfigError::new(
                        &value.span,
                        format!(
                            "[cert:{}] extraflags {other} is not needed: {why}; it is ignored",
                            section.name
                        ),
                    )),
                    Some(Flag::Refused(instead)) => err(
                        value,
                        format!(
                            "[cert:{}] extraflags {other} is dehydrated's: {instead}",
                            section.name
                        ),
                    ),
                    None => err(
                        value,
                        format!(
                            "extraflags \"{other}\" is not supported (--staging, -x, --force are)"
                        ),
                    ),
                },
            }
        }
    }
    let directory = match acme::directory_url(text("ca").unwrap_or(default_ca)) {
        Ok(url) => url,
        Err(e) => {
            if let Some(value) = entries.get("ca") {
                err(value, e.to_string());
            }
            String::new()
        }
    };
    let keysize = match entries.get("keysize") {
        None => 4096,
        Some(value) => value.text.trim().parse().unwrap_or_else(|_| {
            err(value, format!("keysize \"{}\" is not a number", value.text));
            4096
        }),
    };
    let keytype = text("keytype").unwrap_or("rsa").to_ascii_lowercase();
    let key_type = match KeyType::from_config(&keytype, keysize) {
        Ok(kind) => kind,
        Err(e) => {
            let value = entries
                .get("keysize")
                .filter(|_| keytype == "rsa")
                .or(entries.get("keytype"));
            if let Some(value) = value {
                err(value, e.to_string());
            }
            KeyType::EcdsaP256
        }
    };
    let renew_days = match entries.get("renewdays") {
        None => DEFAULT_RENEW_DAYS,
        Some(value) => value.text.trim().parse().unwrap_or_else(|_| {
            err(
                value,
                format!("renewdays \"{}\" is not a number of days", value.text),
            );
            DEFAULT_RENEW_DAYS
        }),
    };
    let rate_limit_wait = match entries.get("ratelimitwait") {
        None => DEFAULT_RATE_LIMIT_WAIT,
        Some(value) => value.text.trim().parse().unwrap_or_else(|_| {
            err(
                value,
                format!(
                    "ratelimitwait \"{}\" is not a number of seconds",
                    value.text
                ),
            );
            DEFAULT_RATE_LIMIT_WAIT
        }),
    };
    let ari = match entries.get("ari") {
        None => true,
        Some(value) => match value.text.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => true,
            "no" | "false" | "off" | "0" => false,
            other => {
                err(value, format!("ari \"{other}\" is neither yes nor no"));
                true
            }
        },
    };
    let key_strategy = match entries.get("keystrategy") {
        None => KeyStrategy::New,
        Some(value) => match value.text.trim().to_ascii_lowercase().as_str() {
            "" | "new" => KeyStrategy::New,
            "staged" => KeyStrategy::Staged,
            other => {
                err(
                    value,
                    format!(
                        "[cert:{}] keystrategy \"{other}\" is unknown (new: a new key for every certificate; staged: a kept key and a published next key)",
                        section.name
                    ),
                );
                KeyStrategy::New
            }
        },
    };
    let key_rotate_days = match entries.get("keyrotatedays") {
        None => DEFAULT_KEY_ROTATE_DAYS,
        Some(value) => match value.text.trim().parse::<u32>() {
            Ok(days) if days > 0 => days,
            _ => {
                err(
                    value,
                    format!(
                        "keyrotatedays \"{}\" is not a number of days (at least 1)",
                        value.text.trim()
                    ),
                );
                DEFAULT_KEY_ROTATE_DAYS
            }
        },
    };
    let eab = match (text("eabkid"), text("eabhmackey")) {
        (None, None) => None,
        (Some(kid), Some(key)) => Some(Eab {
            kid: kid.to_string(),
            hmac_key: Secret::new(key),
        }),
        _ => {
            if let Some(value) = entries.get("eabkid").or(entries.get("eabhmackey")) {
                err(value, "eabkid and eabhmackey go together".into());
            }
            None
        }
    };
    let caa_identity = text("caaidentity").map(str::to_ascii_lowercase);
    if let (Some(id), Some(value)) = (&caa_identity, entries.get("caaidentity"))
        && crate::dns::record::Name::parse(id).is_err()
    {
        err(value, format!("caaidentity \"{id}\" is not a domain name"));
    }
    if errors.len() > before {
        return None;
    }
    Some(CertSection {
        caa_identity,
        name: section.name.clone(),
        span: section.span.clone(),
        directory,
        email: text("email").map(str::to_string),
        eab,
        cacert: text("cacert").map(PathBuf::from),
        key_type,
        destination: text("destination").map(PathBuf::from),
        force,
        renew_days,
        ari,
        rate_limit_wait: std::time::Duration::from_secs(rate_limit_wait),
        propagation_timeout,
        key_strategy,
        key_rotate_days,
        domains: Vec::new(),
    })
}

/// The certificate sections that cover `domain`.
pub(crate) fn certs_of<'a>(certs: &'a [CertSection], domain: &Name) -> Vec<&'a CertSection> {
    certs
        .iter()
        .filter(|c| c.domains.contains(domain))
        .collect()
}

/// Key names of `[cert]` sections holding secrets (for the readable-file warning).
pub(crate) const SECRET_KEYS: &[&str] = &["eabhmackey"];

#[cfg(test)]
mod tests {
    use crate::config::model::{Config, build_text};

    const DOMAIN: &str = "[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = auto\n";

    fn config(cert: &str) -> Result<Config, Vec<String>> {
        build_text("c.conf", &format!("{DOMAIN}[cert:web]\n{cert}"))
    }

    #[test]
    fn the_originals_spellings() {
        let c = config(
            "handler = dehydrated/letsencrypt\nextraflags = --staging, -x\nkeysize = 2048\n",
        )
        .unwrap();
        let cert = &c.certs[0];
        assert_eq!(cert.directory, crate::acme::LETSENCRYPT_STAGING);
        assert!(cert.force);
        assert_eq!(cert.key_type, crate::material::cert::KeyType::Rsa(2048));
        assert_eq!(cert.domains[0].as_str(), "www.example.test");
        let c = config("").unwrap();
        assert_eq!(c.certs[0].directory, crate::acme::LETSENCRYPT);
        assert_eq!(c.certs[0].renew_days, 30);
        assert_eq!(c.certs[0].rate_limit_wait.as_secs(), 120);
        assert_eq!(c.certs[0].key_strategy, super::KeyStrategy::New);
        let c = config("keystrategy = staged\nkeyrotatedays = 90\n").unwrap();
        assert_eq!(c.certs[0].key_strategy, super::KeyStrategy::Staged);
        assert_eq!(c.certs[0].key_rotate_days, 90);
    }

    #[test]
    fn staged_with_only_ca_records_has_nothing_to_stage() {
        let warned = |tlsa: &str| {
            build_text(
                "c.conf",
                &format!("{DOMAIN}{tlsa}\n[cert:web]\nkeystrategy = staged\n"),
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
            .warnings
            .iter()
            .any(|w| w.to_string().contains("nothing to stage"))
        };
        assert!(warned("tlsa.tcp.25 = auto:2:1:1"));
        assert!(warned("tlsa.tcp.25 = auto:3:0:1"));
        assert!(!warned("tlsa.tcp.25 = auto:3:1:1, auto:2:1:1"));
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, line, what) in [
            ("keysize = 1024\n", 8, "RSA key size 1024"),
            ("keytype = dsa\n", 8, "dsa"),
            ("handler = certbot\n", 8, "unknown cert handler"),
            ("extraflags = --ocsp\n", 8, "--ocsp"),
            ("ca = zerossl\n", 8, "zerossl"),
            ("renewdays = soon\n", 8, "renewdays"),
            ("ratelimitwait = x\n", 8, "ratelimitwait"),
            ("eabkid = kid\n", 8, "together"),
            (
                "keystrategy = rotate\n",
                8,
                "keystrategy \"rotate\" is unknown",
            ),
            ("keyrotatedays = 0\n", 8, "keyrotatedays"),
        ] {
            let errors = config(text)
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("c.conf:{line}: ")) && e.contains(what)),
                "{text}: {errors:?}"
            );
        }
    }
}
