//! The typed configuration, built from the merged INI sections: `[module]`
//! defaults inherited by `[module:name]` (by exact key), old-style `[example.com]`
//! domain sections, provider construction through the registry, and every error
//! at once with its file and line. Unknown modules and keys are warnings.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use super::cert::{CertSection, build_certs};
use super::dhparam::{DhParamSection, build_dhparams};
use super::dkim::{DkimSection, build_dkims};
use super::ini::{ConfigError, Ini, Span, Value};
use super::records::{Op, RecordKind, SoaField, changes_nothing, parse_rule};
use super::service::{Known, ServiceSection, build_services};
use crate::dns::provider::{self, KeyValues, ProviderSpec};
use crate::dns::record::{Name, RecordType};

/// Modules the program knows, and the keys of those not described elsewhere.
const CDM_KEYS: &[&str] = &["statedir", "postwait", "maxconcurrency", "maxordersperhour"];
/// Domain keys that are neither records nor provider keys.
const DOMAIN_KEYS: &[&str] = &["cert", "propagationtimeout", "dnssecresolver"];

pub use super::domain::{CertList, Domain, ProviderRef, ProviderSettings, SpannedRule};
pub use super::section::{ModuleSection, seconds_key};

pub const DEFAULT_STATEDIR: &str = "/var/cryptdomainmgr";
pub const DEFAULT_TTL: u32 = 300;
/// How long a certificate's challenge records may take to be served by every
/// authoritative server (`propagationtimeout`).
pub const DEFAULT_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_IP4_LOOKUP: &str = "https://ipv4.icanhazip.com";
pub const DEFAULT_IP6_LOOKUP: &str = "https://ipv6.icanhazip.com";

/// The whole configuration.
pub struct Config {
    pub cdm: Cdm,
    pub domains: Vec<Domain>,
    /// The DNS providers the domains use, by [`ProviderRef::id`].
    pub providers: Vec<ProviderSettings>,
    pub certs: Vec<CertSection>,
    pub dkims: Vec<DkimSection>,
    pub dhparams: Vec<DhParamSection>,
    pub services: Vec<ServiceSection>,
    /// Sections of modules this version reads but does not act on, with
    /// inherited keys applied.
    pub other_sections: Vec<ModuleSection>,
    /// Module names in the order they appeared, for the log.
    pub modules: Vec<String>,
    pub warnings: Vec<ConfigError>,
}

/// `[cdm]`: the program's own settings.
#[derive(Debug)]
pub struct Cdm {
    pub statedir: PathBuf,
    pub postwait: Duration,
    /// `maxconcurrency`: how many zone reads, zone changes and ACME orders
    /// run at once.
    pub max_concurrency: usize,
    /// `maxordersperhour`: new ACME orders in any hour; the rest wait for the
    /// next run.
    pub max_orders_per_hour: u32,
    /// `store = etcd` (docs/cluster.md); `None` for the local state directory.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Enough to keep two cores and a loopback server busy, few enough that a
/// provider's API or a CA sees a polite client.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// Let's Encrypt allows 300 new orders per account in 3 hours.
pub const DEFAULT_MAX_ORDERS_PER_HOUR: u32 = 100;

/// A `[module:name]` section as read, before inheritance.
struct NamedSection<'a> {
    module: String,
    name: String,
    span: Option<Span>,
    entries: &'a BTreeMap<String, Value>,
}

/// How a section header names its module.
#[derive(Debug, PartialEq, Eq)]
enum Header<'a> {
    /// `[module]`: the module's defaults.
    Default(String),
    /// `[module:name]` or an old-style `[example.com]`.
    Named(String, &'a str),
}

fn parse_header(header: &str) -> Result<Header<'_>, String> {
    match header.split_once(':') {
        Some((_, rest)) if rest.contains(':') => Err(format!(
            "section [{header}] has two colons; write [module:name]"
        )),
        Some((module, name)) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("section [{header}] has an empty name"));
            }
            Ok(Header::Named(module.trim().to_lowercase(), name))
        }
        None if header.contains('.') => Ok(Header::Named("domain".into(), header)),
        None => Ok(Header::Default(header.to_lowercase())),
    }
}

fn known_keys(module: &str) -> Option<&'static [&'static str]> {
    Some(match module {
        "cdm" => CDM_KEYS,
        "domain" => DOMAIN_KEYS,
        "cert" => super::cert::KEYS,
        "dkim" => super::dkim::KEYS,
        "dhparam" => super::dhparam::KEYS,
        "service" => super::service::KEYS,
        _ => return None,
    })
}

/// The configuration of the single text `text` named `name`, or its errors as
/// messages (`name:line: message`).
#[cfg(test)]
pub fn build_text(name: &str, text: &str) -> Result<Config, Vec<String>> {
    let sources = [super::ini::Source {
        name: name.into(),
        text: text.into(),
    }];
    super::ini::read(&sources)
        .and_then(|ini| build(&ini))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// Builds the typed configuration.
///
/// # Errors
/// Every configuration error found, each naming its file and line.
pub fn build(ini: &Ini) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut defaults: HashMap<String, &BTreeMap<String, Value>> = HashMap::new();
    let mut named: Vec<NamedSection<'_>> = Vec::new();
    let mut modules: Vec<String> = Vec::new();

    for (header, section) in ini.sections() {
        let span = section.span.clone();
        let parsed = match parse_header(header) {
            Ok(parsed) => parsed,
            Err(message) => {
                if let Some(span) = &span {
                    errors.push(ConfigError::new(span, message));
                }
                continue;
            }
        };
        let module = match &parsed {
            Header::Default(m) | Header::Named(m, _) => m.clone(),
        };
        if known_keys(&module).is_none() {
            if let Some(span) = &span {
                let hint = super::original::module_hint(&module)
                    .map(|h| format!(": {h}"))
                    .unwrap_or_default();
                warnings.push(ConfigError::new(
                    span,
                    format!(
                        "unknown module \"{module}\" in [{header}]; the section is ignored{hint}"
                    ),
                ));
            }
            continue;
        }
        if !modules.contains(&module) {
            modules.push(module.clone());
        }
        match parsed {
            Header::Default(_) => {
                defaults.insert(module, &section.entries);
            }
            Header::Named(_, name) => named.push(NamedSection {
                module,
                name: name.to_string(),
                span,
                entries: &section.entries,
            }),
        }
    }

    let cdm = build_cdm(defaults.get("cdm").copied(), &mut errors);
    for (key, value) in defaults.get("cdm").copied().into_iter().flatten() {
        if !value.from_default
            && !CDM_KEYS.contains(&key.as_str())
            && !super::store::STORE_KEYS.contains(&key.as_str())
        {
            warnings.push(ConfigError::new(
                &value.span,
                unknown_key_message("cdm", None, key),
            ));
        }
    }
    let mut providers = ProviderCache::default();
    let mut domains = Vec::new();
    let mut other_sections = Vec::new();

    // Old-style [example.com] and [domain:example.com] are the same section.
    let mut merged: Vec<ModuleSection> = Vec::new();
    // Where each (module, name) is in `merged`: thousands of sections are merged
    // without searching the list for each.
    let mut merged_at: HashMap<(String, String), usize> = HashMap::new();
    for NamedSection {
        module,
        name,
        span,
        entries,
    } in named
    {
        let name = if module == "domain" {
            name.to_ascii_lowercase()
        } else {
            name
        };
        let inherited = defaults.get(&module).copied();
        let effective = effective_entries(inherited, entries);
        let key = (module.clone(), name.clone());
        if let Some(existing) = merged_at.get(&key).and_then(|&at| merged.get_mut(at)) {
            existing.entries.extend(effective);
        } else {
            merged_at.insert(key, merged.len());
            merged.push(ModuleSection {
                module,
                name,
                span,
                entries: effective,
            });
        }
    }

    for section in merged {
        warn_unknown_keys(&section, &mut warnings);
        if section.module == "domain" {
            if let Some(domain) = build_domain(
                &section,
                &ini.sources,
                &mut providers,
                &mut errors,
                &mut warnings,
            ) {
                domains.push(domain);
            }
        } else if section.module == "cdm" {
            warnings.push(ConfigError::new(
                &section.header_span(),
                format!(
                    "[cdm:{}]: [cdm] takes no name, so its keys are ignored; write them in [cdm]",
                    section.name
                ),
            ));
        } else {
            other_sections.push(section);
        }
    }
    let certs = build_certs(&other_sections, &mut domains, &mut errors, &mut warnings);
    let dkims = build_dkims(&other_sections, &domains, &mut errors, &mut warnings);
    let declared = |module: &str| -> Vec<String> {
        other_sections
            .iter()
            .filter(|s| s.module == module)
            .map(|s| s.name.clone())
            .collect()
    };
    let (cert_names, dh_names, dkim_names) =
        (declared("cert"), declared("dhparam"), declared("dkim"));
    let dhparams = build_dhparams(&other_sections, &mut errors, &mut warnings);
    let known = Known {
        certs: &cert_names,
        dhparams: &dh_names,
        dkims: &dkim_names,
    };
    let services = build_services(&other_sections, &known, &mut errors, &mut warnings);
    other_sections
        .retain(|s| !matches!(s.module.as_str(), "cert" | "dkim" | "dhparam" | "service"));

    if errors.is_empty() {
        Ok(Config {
            cdm,
            domains,
            providers: providers.built.into_iter().map(|(p, _)| p).collect(),
            certs,
            dkims,
            dhparams,
            services,
            other_sections,
            modules,
            warnings,
        })
    } else {
        Err(errors)
    }
}

/// A named section's keys over its module default's, by exact key.
fn effective_entries(
    defaults: Option<&BTreeMap<String, Value>>,
    own: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    let mut entries = defaults.cloned().unwrap_or_default();
    entries.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    entries
}

fn build_cdm(section: Option<&BTreeMap<String, Value>>, errors: &mut Vec<ConfigError>) -> Cdm {
    let get = |key: &str| section.and_then(|s| s.get(key));
    let statedir = match get("statedir") {
        Some(v) if !v.text.trim().is_empty() => PathBuf::from(v.text.trim()),
        Some(v) => {
            errors.push(ConfigError::new(&v.span, "statedir is empty"));
            PathBuf::from(DEFAULT_STATEDIR)
        }
        None => PathBuf::from(DEFAULT_STATEDIR),
    };
    let postwait = match get("postwait") {
        Some(v) => match v.text.trim().parse::<f64>() {
            Ok(secs) if secs >= 0.0 && secs.is_finite() => Duration::from_secs_f64(secs),
            _ => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("postwait \"{}\" is not a number of seconds", v.text),
                ));
                Duration::ZERO
            }
        },
        None => Duration::ZERO,
    };
    let mut count = |key: &str, default: u32| match get(key) {
        Some(v) => match v.text.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!(
                        "{key} \"{}\" is not a whole number of at least 1 (e.g. {key} = {default})",
                        v.text.trim()
                    ),
                ));
                default
            }
        },
        None => default,
    };
    let max_concurrency = count("maxconcurrency", DEFAULT_MAX_CONCURRENCY as u32) as usize;
    let max_orders_per_hour = count("maxordersperhour", DEFAULT_MAX_ORDERS_PER_HOUR);
    let cluster = super::store::build(section, None, errors);
    Cdm {
        statedir,
        postwait,
        max_concurrency,
        max_orders_per_hour,
        cluster,
    }
}

fn warn_unknown_keys(section: &ModuleSection, warnings: &mut Vec<ConfigError>) {
    let known = known_keys(&section.module).unwrap_or(&[]);
    for (key, value) in &section.entries {
        // [DEFAULT] keys reach every section; only warn where they were written.
        if value.from_default || known.contains(&key.as_str()) {
            continue;
        }
        if section.module == "domain"
            && (provider::is_provider_key(key)
                || super::mailpolicy::KEYS.contains(&key.as_str())
                || matches!(parse_rule(key, ""), Ok(Some(_)) | Err(_)))
        {
            continue;
        }
        warnings.push(ConfigError::new(
            &value.span,
            unknown_key_message(&section.module, Some(&section.name), key),
        ));
    }
}

/// "unknown key", with what to write instead when the original knew the key.
fn unknown_key_message(module: &str, name: Option<&str>, key: &str) -> String {
    let section = match name {
        Some(name) => format!("[{module}:{name}]"),
        None => format!("[{module}]"),
    };
    match super::original::key_hint(module, key) {
        Some(hint) => format!("unknown key \"{key}\" in {section}; it is ignored: {hint}"),
        None => format!("unknown key \"{key}\" in {section}; it is ignored"),
    }
}

/// Providers configured so far, by handler and settings.
#[derive(Default)]
struct ProviderCache {
    built: Vec<(ProviderSettings, ProviderRef)>,
}

fn build_domain(
    section: &ModuleSection,
    sources: &[String],
    providers: &mut ProviderCache,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<Domain> {
    let header_span = section.header_span();
    let name = match Name::parse(&section.name) {
        Ok(name) => name,
        Err(e) => {
            errors.push(ConfigError::new(
                &header_span,
                format!("[domain:{}]: not a domain name: {e}", section.name),
            ));
            return None;
        }
    };
    let entries = &section.entries;

    let mut rules = Vec::new();
    for (key, value) in entries {
        if changes_nothing(key, &value.text) {
            continue;
        }
        match parse_rule(key, &value.text) {
            Ok(Some(rule)) => rules.push(SpannedRule {
                rule,
                span: value.span.clone(),
            }),
            Ok(None) => {}
            Err(message) => errors.push(ConfigError::new(&value.span, format!("{key}: {message}"))),
        }
    }
    rules.sort_by_key(|r| match r.rule.op {
        Op::Set => 0,
        Op::Add => 1,
        Op::Remove => 2,
    });

    let ttl = match entries.get("ttl") {
        None => DEFAULT_TTL,
        Some(v) => match v.text.trim().parse::<u32>() {
            Ok(ttl) if ttl <= 2_147_483_647 => ttl,
            _ => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("ttl \"{}\" is not a number of seconds", v.text),
                ));
                DEFAULT_TTL
            }
        },
    };
    let propagation_timeout = seconds_key(
        "propagationtimeout",
        entries.get("propagationtimeout"),
        errors,
    )
    .unwrap_or(DEFAULT_PROPAGATION_TIMEOUT);
    let certs = entries.get("cert").map(|v| CertList {
        names: v
            .text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        span: v.span.clone(),
    });

    let Some(handler_value) = entries.get("handler") else {
        warnings.push(ConfigError::new(
            &header_span,
            format!(
                "[domain:{name}] has no handler (neither its own nor from [domain]); the section is skipped{}",
                missing_key_hint("handler", sources)
            ),
        ));
        return None;
    };
    let Some(spec) = provider::lookup(canonical_handler(&handler_value.text)) else {
        let known: Vec<&str> = provider::providers().map(|s| s.name).collect();
        errors.push(ConfigError::new(
            &handler_value.span,
            format!(
                "unknown DNS handler \"{}\"; known: {}",
                handler_value.text.trim(),
                known.join(", ")
            ),
        ));
        return None;
    };
    let keys: KeyValues = spec
        .keys
        .iter()
        .filter_map(|k| {
            entries
                .get(k.name)
                .map(|v| (k.name.to_string(), v.text.clone()))
        })
        .collect();
    let provider = if let Some((_, existing)) = providers
        .built
        .iter()
        .find(|(p, _)| p.spec.name == spec.name && p.keys == keys)
    {
        existing.clone()
    } else {
        // Built once here only to check the keys (no network); the runner
        // builds the providers it uses.
        match (spec.build)(&keys) {
            Ok(_) => {
                let built = ProviderRef {
                    handler: spec.name,
                    capabilities: spec.capabilities,
                    id: providers.built.len(),
                };
                providers
                    .built
                    .push((ProviderSettings { spec, keys }, built.clone()));
                built
            }
            Err(e) => {
                let span = entries
                    .get(&e.key)
                    .map(|v| v.span.clone())
                    .unwrap_or_else(|| handler_value.span.clone());
                let hint = if entries.contains_key(&e.key) {
                    String::new()
                } else {
                    missing_key_hint(&e.key, sources)
                };
                errors.push(ConfigError::new(
                    &span,
                    format!("[domain:{name}] {}: {}{hint}", e.key, e.message),
                ));
                return None;
            }
        }
    };

    check_capabilities(&name, spec, &rules, certs.as_ref(), errors);
    let mtasts = super::mailpolicy::mtasts(&section.name, entries, errors);
    if let Some(m) = &mtasts
        && !spec.capabilities.writes(RecordType::Txt)
    {
        errors.push(ConfigError::new(
            &m.span,
            format!(
                "[domain:{name}] mtasts: handler {} cannot write the _mta-sts TXT record (it writes {})",
                spec.name,
                spec.capabilities.types_text()
            ),
        ));
    }
    let caa_accounturi = super::mailpolicy::caa_accounturi(&section.name, entries, errors);

    let mut nameservers = Vec::new();
    if let Some(value) = entries.get("nameservers") {
        for server in value
            .text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match crate::dns::parse_server(server) {
                Ok(parsed) => nameservers.push(parsed),
                Err(message) => errors.push(ConfigError::new(
                    &value.span,
                    format!("nameservers: {message}"),
                )),
            }
        }
    }

    let dnssec_resolver = entries
        .get("dnssecresolver")
        .filter(|v| !v.text.trim().is_empty())
        .and_then(|value| match crate::dns::parse_server(value.text.trim()) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                errors.push(ConfigError::new(
                    &value.span,
                    format!("[domain:{name}] dnssecresolver: {message}"),
                ));
                None
            }
        });

    Some(Domain {
        name,
        nameservers,
        dnssec_resolver,
        propagation_timeout,
        span: section.span.clone(),
        provider,
        ttl,
        ip4_lookup: lookup_url(entries, "ip4lookup", DEFAULT_IP4_LOOKUP),
        ip6_lookup: lookup_url(entries, "ip6lookup", DEFAULT_IP6_LOOKUP),
        rules,
        certs,
        mtasts,
        caa_accounturi,
    })
}

/// Where a missing provider key may be: the files read, and a credentials
/// file the user did not give (keys of `[domain]` may live in one).
fn missing_key_hint(key: &str, sources: &[String]) -> String {
    let files: Vec<&str> = sources
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "--config-content")
        .collect();
    let read = match files.as_slice() {
        [] => "no configuration file was read".to_string(),
        [one] => format!("read: {one}"),
        many => format!("read: {}", many.join(", ")),
    };
    let example = match files.as_slice() {
        [] => "cryptdomainmgr /etc/cryptdomainmgr/credentials.conf ...".to_string(),
        given => format!(
            "cryptdomainmgr {} /etc/cryptdomainmgr/credentials.conf",
            given.join(" ")
        ),
    };
    format!(
        " ({read}). If {key} is kept in a credentials file, give that file too, after these: {example}"
    )
}

/// A record key the provider cannot honour (a record type it does not write,
/// an SOA field it cannot change) is a configuration error at the key's line,
/// naming the key and the provider: found before any change is made. So is a
/// `cert` key with a provider that cannot write the challenge's TXT record.
fn check_capabilities(
    name: &Name,
    spec: &ProviderSpec,
    rules: &[SpannedRule],
    certs: Option<&CertList>,
    errors: &mut Vec<ConfigError>,
) {
    let caps = &spec.capabilities;
    for spanned in rules {
        let problem = match &spanned.rule.kind {
            RecordKind::Soa { field, .. } => {
                let field = soa_capability(*field);
                match (caps.changes_soa(field), caps.soa.is_empty()) {
                    (true, _) => None,
                    (false, true) => Some("cannot write an SOA record".to_string()),
                    (false, false) => Some(format!(
                        "cannot change the SOA field {field} (it changes {})",
                        caps.soa_text()
                    )),
                }
            }
            kind => {
                let rtype = record_type_of(kind);
                (!caps.writes(rtype)).then(|| {
                    format!(
                        "cannot write {rtype} records (it writes {})",
                        caps.types_text()
                    )
                })
            }
        };
        if let Some(problem) = problem {
            errors.push(ConfigError::new(
                &spanned.span,
                format!(
                    "[domain:{name}] {}: handler {} {problem}",
                    spanned.rule.key, spec.name
                ),
            ));
        }
    }
    if let Some(certs) = certs
        && !caps.writes(RecordType::Txt)
    {
        errors.push(ConfigError::new(
            &certs.span,
            format!(
                "[domain:{name}] cert: handler {} cannot write the TXT record of the ACME DNS-01 challenge (it writes {})",
                spec.name,
                caps.types_text()
            ),
        ));
    }
}

/// The record type a (non-SOA) record key writes.
fn record_type_of(kind: &RecordKind) -> RecordType {
    match kind {
        RecordKind::Ip4(_) => RecordType::A,
        RecordKind::Ip6(_) => RecordType::Aaaa,
        RecordKind::Mx { .. } => RecordType::Mx,
        RecordKind::Srv { .. } => RecordType::Srv,
        RecordKind::Caa(_) => RecordType::Caa,
        RecordKind::Tlsa { .. } => RecordType::Tlsa,
        RecordKind::Soa { .. } => RecordType::Soa,
        RecordKind::Dkim { .. }
        | RecordKind::Spf(_)
        | RecordKind::Dmarc { .. }
        | RecordKind::Adsp(_)
        | RecordKind::TlsRpt(_)
        | RecordKind::Acme(_) => RecordType::Txt,
    }
}

fn soa_capability(field: SoaField) -> provider::SoaField {
    match field {
        SoaField::PrimaryNs => provider::SoaField::PrimaryNs,
        SoaField::Hostmaster => provider::SoaField::Hostmaster,
        SoaField::Refresh => provider::SoaField::Refresh,
        SoaField::Retry => provider::SoaField::Retry,
        SoaField::Expire => provider::SoaField::Expire,
        SoaField::NegativeTtl => provider::SoaField::NegativeTtl,
    }
}

/// The original's handler spellings: `dnsuptools/inwx` is `inwx`.
fn canonical_handler(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix("dnsuptools/").unwrap_or(text)
}

fn lookup_url(entries: &BTreeMap<String, Value>, key: &str, default: &str) -> String {
    entries
        .get(key)
        .map(|v| v.text.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::{Source, read};
    use crate::config::records::{AddrEntry, RecordKind};

    const KEY: &str = "handler = rfc2136\nserver = 127.0.0.1:53\nkeyname = k\nsecret = c2VjcmV0\n";

    fn build_from(texts: &[&str]) -> Result<Config, Vec<ConfigError>> {
        let sources: Vec<Source> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Source {
                name: format!("f{i}.conf"),
                text: t.to_string(),
            })
            .collect();
        build(&read(&sources)?)
    }

    fn ip4(domain: &Domain) -> Vec<(Op, Vec<AddrEntry<std::net::Ipv4Addr>>)> {
        domain
            .rules
            .iter()
            .filter_map(|r| match &r.rule.kind {
                RecordKind::Ip4(e) => Some((r.rule.op, e.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn defaults_are_inherited_by_exact_key() {
        let config = build_from(&[&format!(
            "[domain]\n{KEY}ip4 = 1.2.3.4\n[domain:x.example]\nip4 += 5.6.7.8\n[domain:y.example]\nip4 = 9.9.9.9\n"
        )])
        .unwrap();
        let x = &config.domains[0];
        assert_eq!(x.name.as_str(), "x.example");
        assert_eq!(
            ip4(x),
            vec![
                (Op::Set, vec![AddrEntry::Fixed("1.2.3.4".parse().unwrap())]),
                (Op::Add, vec![AddrEntry::Fixed("5.6.7.8".parse().unwrap())])
            ]
        );
        let y = &config.domains[1];
        assert_eq!(
            ip4(y),
            vec![(Op::Set, vec![AddrEntry::Fixed("9.9.9.9".parse().unwrap())])]
        );
        // Identical provider settings share one provider.
        assert_eq!(x.provider.id, y.provider.id);
    }

    #[test]
    fn old_style_sections_and_later_files_win() {
        let config = build_from(&[
            &format!("[domain]\n{KEY}\n[Example.COM]\nip4 = 1.1.1.1\n"),
            "[domain:example.com]\nip4 = 2.2.2.2\n[cdm]\nstatedir = /tmp/s\npostwait = 1.5\n",
        ])
        .unwrap();
        assert_eq!(config.domains.len(), 1);
        assert_eq!(
            ip4(&config.domains[0]),
            vec![(Op::Set, vec![AddrEntry::Fixed("2.2.2.2".parse().unwrap())])]
        );
        assert_eq!(config.cdm.statedir, PathBuf::from("/tmp/s"));
        assert_eq!(config.cdm.postwait, Duration::from_millis(1500));
    }

    #[test]
    fn missing_handler_skips_with_a_warning() {
        let config = build_from(&["[domain:a.example]\nip4 = 1.2.3.4\n"]).unwrap();
        assert!(config.domains.is_empty());
        assert!(config.warnings[0].message.contains("no handler"));
    }

    #[test]
    fn unknown_modules_and_keys_warn() {
        let config = build_from(&[&format!(
            "[frobnicate]\na = b\n[domain]\n{KEY}\n[domain:a.example]\nipv4 = 1.2.3.4\n"
        )])
        .unwrap();
        let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("f0.conf:1:") && w.contains("frobnicate")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("f0.conf:10:") && w.contains("ipv4")),
            "{warnings:?}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[domain:a.example]\nhandler = nosuch\n",
                "f0.conf:2:",
                "unknown DNS handler",
            ),
            (
                &format!("[domain:a.example]\n{KEY}ip4 = 1.2.3.4 # old\n"),
                "f0.conf:6:",
                "not an IP",
            ),
            (
                "[domain:a.example]\nhandler = rfc2136\nserver = x\nkeyname = k\n",
                "f0.conf:2:",
                "secret",
            ),
            ("[domain:a:b]\nx = 1\n", "f0.conf:1:", "two colons"),
            (
                &format!("[domain:a.example]\n{KEY}mx = a:20:30\n"),
                "f0.conf:6:",
                "more fields",
            ),
            (
                &format!("[domain:a.example]\n{KEY}srv.*.tcp = a\n"),
                "f0.conf:6:",
                "not a valid label",
            ),
            ("[cdm]\npostwait = soon\n", "f0.conf:2:", "postwait"),
            (
                "[cdm]\nmaxconcurrency = 0\n",
                "f0.conf:2:",
                "maxconcurrency",
            ),
            (
                "[cdm]\nmaxordersperhour = many\n",
                "f0.conf:2:",
                "maxordersperhour",
            ),
            (
                &format!("[domain:a.example]\n{KEY}tlsa.tcp.443 = auto:4:1:1\n"),
                "f0.conf:6:",
                "usage 4",
            ),
            (
                &format!("[domain:a.example]\n{KEY}tlsa.tcp.443.1.2 = auto\n"),
                "f0.conf:6:",
                "selector 2",
            ),
            (
                &format!("[domain:a.example]\n{KEY}tlsa = auto:3:1:3:25:tcp\n"),
                "f0.conf:6:",
                "matching type 3",
            ),
            (
                &format!("[domain:a.example]\n{KEY}tlsa.tcp.443.x = auto\n"),
                "f0.conf:6:",
                "not a valid number",
            ),
            (
                &format!("[domain:a.example]\n{KEY}tlsa.tcp.443 = auto\n"),
                "f0.conf:6:",
                "no cert key",
            ),
            (
                &format!("[domain:a.example]\n{KEY}cert = nosuch\n"),
                "f0.conf:6:",
                "no [cert:nosuch] section",
            ),
            (
                "[domain:a.example]\nhandler = rfc2136\nserver = x\nkeyname = k\nsecret = ***\n",
                "f0.conf:5:",
                "base64",
            ),
        ];
        for (text, at, what) in cases {
            let errors = build_from(&[text])
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            let text_errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert!(
                text_errors
                    .iter()
                    .any(|e| e.starts_with(at) && e.contains(what)),
                "{text}: {text_errors:?}"
            );
        }
    }

    /// What a provider cannot do is an error at the key's line naming the key
    /// and the provider, before anything is built to run.
    #[test]
    fn keys_a_provider_cannot_honour_are_errors() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "handler = cloudflare\napitoken = t\nsoa.refresh = 7200\n",
                "f0.conf:5:",
                "soa.refresh: handler cloudflare cannot write an SOA record",
            ),
            (
                "handler = digitalocean\nauthtoken = t\ntlsa.tcp.443 = auto\ncert = auto\n",
                "f0.conf:5:",
                "tlsa.tcp.443: handler digitalocean cannot write TLSA records (it writes A, AAAA",
            ),
            (
                "handler = nifcloud\naccesskey = a\nsecretkey = s\nsrv.imap.tcp.143 = mail.a.example\n",
                "f0.conf:6:",
                "handler nifcloud cannot write SRV records",
            ),
            (
                "handler = duckdns\ntoken = t\ncert = auto\n",
                "f0.conf:5:",
                "cert: handler duckdns cannot write the TXT record of the ACME DNS-01 challenge (it writes none)",
            ),
        ];
        for (keys, at, what) in cases {
            let text = format!("[cert:c]\n[domain:a.example]\n{keys}");
            let errors = build_from(&[&text])
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert!(
                errors.iter().any(|e| e.starts_with(at) && e.contains(what)),
                "{text}: {errors:?}"
            );
        }
        // INWX writes the SOA timers; the same keys are fine there.
        let config = build_from(&[
            "[domain:a.example]\nhandler = inwx\nuser = u\npasswd = p\nsoa.refresh = 7200\ntlsa.tcp.443 = auto\ncert = auto\n[cert:c]\n",
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.domains.len(), 1);
    }

    #[test]
    fn handler_aliases() {
        assert_eq!(canonical_handler("dnsuptools/inwx"), "inwx");
        assert_eq!(canonical_handler(" rfc2136 "), "rfc2136");
    }
}
