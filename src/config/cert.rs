//! `[cert]` and `[cert:NAME]` sections (SPEC §3.3): which CA, account, key type,
//! where the files go. The names on a certificate are the `[domain:X]` sections
//! whose `cert` key lists it (`cert = auto` lists every certificate).

use std::path::PathBuf;

use super::ini::{ConfigError, Span, Value};
use super::model::{Domain, ModuleSection};
use crate::acme::{self, Eab};
use crate::dns::record::Name;
use crate::material::cert::KeyType;
use crate::secret::Secret;

pub const DEFAULT_RENEW_DAYS: u32 = 30;

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
    /// The names on the certificate, with the domain section each comes from.
    pub domains: Vec<Name>,
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
        .filter_map(|s| build_cert(s, errors))
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

fn build_cert(section: &ModuleSection, errors: &mut Vec<ConfigError>) -> Option<CertSection> {
    let entries = &section.entries;
    let before = errors.len();
    let text = |key: &str| {
        entries
            .get(key)
            .map(|v| v.text.trim())
            .filter(|t| !t.is_empty())
    };
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
            match flag {
                "--staging" => default_ca = "letsencrypt-staging",
                "-x" | "--force" => force = true,
                other => err(
                    value,
                    format!("extraflags \"{other}\" is not supported (--staging, -x, --force are)"),
                ),
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
    if errors.len() > before {
        return None;
    }
    Some(CertSection {
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
        domains: Vec::new(),
    })
}

/// The certificate sections that cover `domain`.
pub fn certs_of<'a>(certs: &'a [CertSection], domain: &Name) -> Vec<&'a CertSection> {
    certs
        .iter()
        .filter(|c| c.domains.contains(domain))
        .collect()
}

/// Key names of `[cert]` sections holding secrets (for the readable-file warning).
pub const SECRET_KEYS: &[&str] = &["eabhmackey"];
