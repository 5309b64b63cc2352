//! `--check`: what the configuration will do, in sentences (see
//! [`crate::summary`]), then the configuration as the program interprets it,
//! secrets shown as `***`.

use std::collections::BTreeMap;

use crate::config::model::Config;
use crate::dns::provider::Providers;

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What each provider in use can do (once per provider instance).
fn render_providers(config: &Config, providers: &Providers, out: &mut String) {
    let mut shown = Vec::new();
    for domain in &config.domains {
        let provider = &domain.provider;
        if shown.contains(&provider.id) {
            continue;
        }
        shown.push(provider.id);
        let caps = &provider.capabilities;
        out.push_str(&format!("\n[provider:{}]\n", provider.handler));
        out.push_str(&format!("api = {}\n", describe(providers, provider.id)));
        out.push_str(&format!("record types = {}\n", caps.types_text()));
        out.push_str(&format!("soa fields = {}\n", caps.soa_text()));
        out.push_str(&format!("changes = {}\n", caps.application));
    }
}

/// How the provider `id` describes itself (never with a secret).
fn describe(providers: &Providers, id: usize) -> String {
    providers
        .get(id)
        .map_or_else(|| "not configured".into(), |p| p.describe())
}

/// The configuration as interpreted, for `--check`. Secrets are never shown.
pub(crate) fn render_config(config: &Config, providers: &Providers) -> String {
    let mut out = crate::summary::render(config, providers);
    out.push_str("The configuration as interpreted\n\n[cdm]\n");
    out.push_str(&format!("statedir = {}\n", config.cdm.statedir.display()));
    out.push_str(&format!(
        "postwait = {}\n",
        config.cdm.postwait.as_secs_f64()
    ));
    if let Some(cluster) = &config.cdm.cluster {
        out.push_str(&crate::cluster::render_settings(cluster));
    }
    for domain in &config.domains {
        out.push_str(&format!("\n[domain:{}]\n", domain.name));
        out.push_str(&format!(
            "provider = {} ({})\n",
            domain.provider.handler,
            describe(providers, domain.provider.id)
        ));
        out.push_str(&format!("ttl = {}\n", domain.ttl));
        if let Some(certs) = &domain.certs {
            out.push_str(&format!("cert = {}\n", certs.names.join(", ")));
        }
        for rule in &domain.rules {
            out.push_str(&format!(
                "{} -> {:?} {:?}    # {}\n",
                rule.rule.key, rule.rule.op, rule.rule.kind, rule.span
            ));
        }
        if let Some(m) = &domain.mtasts {
            out.push_str(&format!(
                "mtasts = {} (max_age {}, mx {}, file {})    # {}\n",
                m.mode.map_or("none", |m| m.as_str()),
                m.max_age,
                m.mx.as_ref()
                    .map_or("from the MX records".to_string(), |mx| mx.join(", ")),
                m.file
                    .as_ref()
                    .map_or("none".to_string(), |f| f.display().to_string()),
                m.span
            ));
        }
        if domain.caa_accounturi {
            out.push_str("caa.accounturi = yes (caa = auto names the ACME account, dns-01)\n");
        }
    }
    render_providers(config, providers, &mut out);
    for cert in &config.certs {
        out.push_str(&format!("\n[cert:{}]\n", cert.name));
        out.push_str(&format!("names = {}\n", join(&cert.domains)));
        out.push_str(&format!("ca = {}\n", cert.directory));
        out.push_str(&format!("key = {:?}\n", cert.key_type));
        out.push_str(&format!("renewdays = {}\n", cert.renew_days));
        if let Some(dest) = &cert.destination {
            out.push_str(&format!("destination = {}\n", dest.display()));
        }
        if cert.eab.is_some() {
            out.push_str("eab = *** (external account binding)\n");
        }
    }
    out.push_str(&crate::config::dkim::render(&config.dkims));
    out.push_str(&crate::config::dhparam::render(&config.dhparams));
    out.push_str(&crate::config::service::render(&config.services));
    for section in &config.other_sections {
        out.push_str(&format!("\n[{}:{}]\n", section.module, section.name));
        let entries: BTreeMap<_, _> = section.entries.iter().collect();
        for (key, value) in entries {
            out.push_str(&format!("{key} = {}    # {}\n", value.text, value.span));
        }
    }
    out
}

/// `--check`'s DNSSEC part: for each domain with TLSA records, whether its
/// zone is signed as its authoritative servers serve it (the only network
/// questions `--check` asks). An unsigned zone is also a warning in the log.
pub(crate) async fn render_dnssec(config: &Config, providers: &Providers) -> String {
    let observed = crate::plan::observed::Observed::default();
    let found = crate::observe::tlsa_dnssec(config, providers, &observed).await;
    if found.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "
DNSSEC of the zones with TLSA records
",
    );
    for (domain, d) in &found {
        let line = match &d.signed {
            Ok(true) => format!("{domain}: zone {} is signed", d.zone),
            Ok(false) => {
                log::warn!(
                    "{}",
                    crate::observe::unsigned_zone_warning(
                        &crate::plan::Section::Domain(domain.clone()),
                        &d.zone
                    )
                );
                format!(
                    "{domain}: zone {} is NOT signed: DANE clients ignore its TLSA records",
                    d.zone
                )
            }
            Err(e) => format!("{domain}: zone {}: cannot tell ({e})", d.zone),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model;

    #[test]
    fn check_shows_what_each_provider_can_do() {
        let config = model::build_text(
            "t.conf",
            "[domain:a.example]\nhandler = inwx\nuser = u\npasswd = p\n\
             [domain:b.example]\nhandler = cloudflare\napitoken = t\n\
             [domain:c.example]\nhandler = inwx\nuser = u\npasswd = p\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let providers = Providers::build(&config).unwrap();
        let text = render_config(&config, &providers);
        assert_eq!(text.matches("[provider:inwx]").count(), 1, "{text}");
        assert!(
            text.contains(
                "[provider:inwx]\napi = inwx https://api.domrobot.com/jsonrpc/ (user u)\n\
                 record types = A, AAAA, CNAME, NS, MX, TXT, SRV, TLSA, CAA\n\
                 soa fields = primns, hostmaster, refresh, retry, expire, ncttl\n\
                 changes = per record"
            ),
            "{text}"
        );
        assert!(
            text.contains("[provider:cloudflare]\napi = cloudflare (dns-update)\nrecord types = A, AAAA, CNAME, NS, MX, TXT, SRV, TLSA, CAA\nsoa fields = none\nchanges = per RRset"),
            "{text}"
        );
        assert!(
            !text.contains("apitoken") && !text.contains("= t\n"),
            "{text}"
        );
    }
}
