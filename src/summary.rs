//! The first part of `--check`: what the configuration will do, per domain,
//! in sentences that need no knowledge of the INI rules (which records are
//! kept and how, which certificates cover the name and where TLSA records go,
//! DKIM selectors), then per certificate, DKIM key, DH parameters and service.
//! Pure: configuration in, text out.

use crate::config::cert::CertSection;
use crate::config::dhparam::DhHandler;
use crate::config::model::{Config, Domain, SpannedRule};
use crate::config::records::{AddrEntry, CaaEntry, Op, RecordKind, SoaField};
use crate::config::service::Reload;
use crate::dns::provider::Providers;
use crate::plan::cert::key_type_name;

/// The summary, ending with an empty line.
pub(crate) fn render(config: &Config, providers: &Providers) -> String {
    let mut out = String::from("What this configuration does\n\n");
    if config.domains.is_empty() {
        out.push_str("No domain section with a DNS handler: no records are managed.\n\n");
    }
    for domain in &config.domains {
        render_domain(config, providers, domain, &mut out);
    }
    for cert in &config.certs {
        render_cert(config, cert, &mut out);
    }
    for dkim in &config.dkims {
        let domains: Vec<String> = dkim.domains.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "DKIM key [dkim:{}]: {} key, selectors {}_<unix time>, a new one every {} days; installed in {} ({} links to the current key), signing configuration by {}; the old selector stays published {} days after rollover; published for {}\n\n",
            dkim.name,
            dkim.key_type,
            dkim.key_base_name,
            dkim.rotate_days,
            dkim.key_location.display(),
            dkim.key_name,
            dkim.handler.name(),
            dkim.drain.as_secs() / 86_400,
            or_none(&domains)
        ));
    }
    for dh in &config.dhparams {
        let how = match dh.handler {
            DhHandler::Ffdhe => "the RFC 7919 group (no generation)",
            _ => "generated here",
        };
        out.push_str(&format!(
            "DH parameters [dhparam:{}]: {} bits, {how}, put at {} on rollover\n\n",
            dh.name,
            dh.bits,
            dh.filename.display()
        ));
    }
    for service in &config.services {
        let how = match &service.reload {
            Reload::Systemd { unit } => format!("systemctl reload {unit}"),
            Reload::Command { argv } => format!("runs {}", argv.join(" ")),
            Reload::Traefik { configdir } => format!(
                "writes traefik's TLS configuration into {}",
                configdir.display()
            ),
        };
        let mut uses: Vec<String> = Vec::new();
        uses.extend(service.certs.iter().map(|c| format!("certificate {c}")));
        uses.extend(
            service
                .dhparams
                .iter()
                .map(|d| format!("DH parameters {d}")),
        );
        uses.extend(service.dkims.iter().map(|d| format!("DKIM key {d}")));
        out.push_str(&format!(
            "Service [service:{}]: {how}, after a rollover of {}\n\n",
            service.name,
            or_none(&uses)
        ));
    }
    out
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn render_domain(config: &Config, providers: &Providers, domain: &Domain, out: &mut String) {
    let servers = if domain.nameservers.is_empty() {
        "the servers of the zone's NS records".to_string()
    } else {
        domain
            .nameservers
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "{}\n  DNS through {} ({}), new records with TTL {} s; new records are checked at {} (waiting up to {} s)\n",
        domain.name,
        domain.provider.handler,
        providers
            .get(domain.provider.id)
            .map_or_else(|| "not configured".into(), |p| p.describe()),
        domain.ttl,
        servers,
        domain.propagation_timeout.as_secs()
    ));
    let statics: Vec<&SpannedRule> = domain
        .rules
        .iter()
        .filter(|r| r.rule.kind.is_static())
        .collect();
    if statics.is_empty() {
        out.push_str("  records: none set by --update\n");
    }
    for rule in statics {
        out.push_str(&format!("  {}\n", describe_rule(domain, rule)));
    }
    let certs: Vec<&str> = domain
        .certs
        .iter()
        .flat_map(|c| c.names.iter().map(String::as_str))
        .collect();
    for name in &certs {
        out.push_str(&format!("  certificate [cert:{name}] covers this name\n"));
    }
    for rule in &domain.rules {
        match &rule.rule.kind {
            RecordKind::Tlsa { entries, .. } if !entries.is_empty() => {
                for e in entries {
                    out.push_str(&format!(
                        "  TLSA at _{}._{}.{}: {} {} {} for the certificate(s) {}, following each renewal ({} {})\n",
                        e.port,
                        e.proto,
                        domain.name,
                        e.usage,
                        e.selector,
                        e.matching,
                        or_none(&certs.iter().map(|c| c.to_string()).collect::<Vec<_>>()),
                        rule.rule.key,
                        op_word(rule.rule.op)
                    ));
                }
            }
            RecordKind::Dkim { sections, .. } => {
                for section in sections {
                    let base = config
                        .dkims
                        .iter()
                        .find(|d| &d.name == section)
                        .map_or(section.as_str(), |d| d.key_base_name.as_str());
                    out.push_str(&format!(
                        "  DKIM at {base}_<unix time>._domainkey.{}: the key of [dkim:{section}]\n",
                        domain.name
                    ));
                }
            }
            _ => {}
        }
    }
    out.push('\n');
}

fn op_word(op: Op) -> &'static str {
    match op {
        Op::Set => "set",
        Op::Add => "added",
        Op::Remove => "removed",
    }
}

/// One static record key as a sentence.
fn describe_rule(domain: &Domain, spanned: &SpannedRule) -> String {
    let rule = &spanned.rule;
    let name = &domain.name;
    let (what, values): (String, Vec<String>) = match &rule.kind {
        RecordKind::Ip4(entries) => (
            format!("A at {name}"),
            entries.iter().map(|e| addr(e, "IPv4")).collect(),
        ),
        RecordKind::Ip6(entries) => (
            format!("AAAA at {name}"),
            entries.iter().map(|e| addr(e, "IPv6")).collect(),
        ),
        RecordKind::Mx {
            scope_priority,
            entries,
        } => (
            match scope_priority {
                Some(p) => format!("MX of priority {p} at {name}"),
                None => format!("MX at {name}"),
            },
            entries
                .iter()
                .map(|(host, prio)| format!("{host} (priority {prio})"))
                .collect(),
        ),
        RecordKind::Srv { scope, entries } => (
            format!(
                "SRV at _{}._{}.{name}",
                scope.service.as_deref().unwrap_or("*"),
                scope.proto.as_deref().unwrap_or("*")
            ),
            entries
                .iter()
                .map(|e| {
                    format!(
                        "{} port {} (priority {}, weight {})",
                        e.target, e.port, e.priority, e.weight
                    )
                })
                .collect(),
        ),
        RecordKind::Caa(entries) => (
            format!("CAA at {name}"),
            entries
                .iter()
                .map(|e| match e {
                    CaaEntry::Fixed { flags, tag, value } => format!("{flags} {tag} \"{value}\""),
                    CaaEntry::Auto => "the CA of the name's certificate".into(),
                })
                .collect(),
        ),
        RecordKind::Spf(terms) => {
            let what = match rule.op {
                Op::Set => format!("the record is v=spf1 {}", terms.join(" ")),
                Op::Add => format!("adds {} to the record", terms.join(" ")),
                Op::Remove => format!("removes {} from the record", terms.join(" ")),
            };
            return format!(
                "SPF (the v=spf1 TXT record) at {name}: {what}    # {}",
                rule.key
            );
        }
        RecordKind::Dmarc { tag, value } => {
            let what = match (tag, value, rule.op) {
                (Some(tag), Some(value), Op::Set | Op::Add) => {
                    format!("sets {tag}={value}, other tags are kept")
                }
                (Some(tag), _, _) => format!("removes the tag {tag}"),
                (None, _, _) => {
                    "keeps only the tags set by dmarc.TAG keys (the record goes when there are none)"
                        .into()
                }
            };
            return format!("DMARC at _dmarc.{name}: {what}    # {}", rule.key);
        }
        RecordKind::Adsp(value) => (
            format!("ADSP at _adsp._domainkey.{name}"),
            value.iter().map(|v| format!("dkim={v}")).collect(),
        ),
        RecordKind::TlsRpt(uris) => (
            format!("TLS-RPT at _smtp._tls.{name}"),
            if uris.is_empty() {
                Vec::new()
            } else {
                vec![format!("v=TLSRPTv1; rua={}", uris.join(","))]
            },
        ),
        RecordKind::Acme(tokens) => (
            format!("ACME TXT at _acme-challenge.{name}"),
            tokens.clone(),
        ),
        RecordKind::Soa { field, value } => {
            let field = match field {
                SoaField::PrimaryNs => "primary name server",
                SoaField::Hostmaster => "hostmaster",
                SoaField::Refresh => "refresh",
                SoaField::Retry => "retry",
                SoaField::Expire => "expire",
                SoaField::NegativeTtl => "negative-caching TTL",
            };
            return format!(
                "SOA of zone {name}: {field} set to {} (the serial is increased)    # {}",
                value.as_deref().unwrap_or("-"),
                rule.key
            );
        }
        RecordKind::Tlsa { .. } | RecordKind::Dkim { .. } => (rule.key.clone(), Vec::new()),
    };
    let action = match (rule.op, values.is_empty()) {
        (Op::Set, true) => "none: every such record is deleted".to_string(),
        (Op::Set, false) => format!("exactly {} (any other is deleted)", values.join(", ")),
        (Op::Add, _) => format!("adds {} (keeps the others)", values.join(", ")),
        (Op::Remove, _) => format!("deletes {} if present", values.join(", ")),
    };
    format!("{what}: {action}    # {}", rule.key)
}

fn addr<A: std::fmt::Display>(entry: &AddrEntry<A>, family: &str) -> String {
    match entry {
        AddrEntry::Fixed(a) => a.to_string(),
        AddrEntry::Auto => format!("this host's public {family} address"),
    }
}

fn render_cert(config: &Config, cert: &CertSection, out: &mut String) {
    let names: Vec<String> = cert.domains.iter().map(ToString::to_string).collect();
    let destination = match &cert.destination {
        Some(dest) => format!(
            "deployed on rollover to {}/<name>/ (cert.pem, chain.pem, fullchain.pem, privkey.pem)",
            dest.display()
        ),
        None => "kept in the state directory only (no destination)".into(),
    };
    let reloaded: Vec<String> = config
        .services
        .iter()
        .filter(|s| s.certs.contains(&cert.name))
        .map(|s| format!("[service:{}]", s.name))
        .collect();
    out.push_str(&format!(
        "Certificate [cert:{}]: {} from {}, {} key; renewed when fewer than {} days are left{}; {destination}; services reloaded after it: {}\n\n",
        cert.name,
        names.join(", "),
        cert.directory,
        key_type_name(cert.key_type),
        cert.renew_days,
        if cert.ari {
            " or when the CA's renewal information says so"
        } else {
            ""
        },
        or_none(&reloaded)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model;

    #[test]
    fn each_domain_says_what_happens_to_its_records() {
        let config = model::build_text(
            "t.conf",
            "[domain]\nhandler = inwx\nuser = u\npasswd = p\n\
             [domain:example.com]\nip4 = 192.0.2.1, auto\nmx.30 += mail.example.com\n\
             spf = +mx, -all\ndmarc.p = quarantine\nsoa.hostmaster = first.last@example.com\ncert = web\n\
             tlsa.tcp.25 = auto:3:1:1\ndkim = auto:mail\n\
             [cert:web]\ndestination = /etc/ssl/cdm\n[dkim:mail]\nkeybasename = mk\n\
             [service:postfix]\ncert = web\ndkim = none\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let providers = Providers::build(&config).unwrap();
        let text = render(&config, &providers);
        for wanted in [
            "A at example.com: exactly 192.0.2.1, this host's public IPv4 address (any other is deleted)",
            "MX of priority 30 at example.com: adds mail.example.com (priority 30) (keeps the others)",
            "SPF (the v=spf1 TXT record) at example.com: the record is v=spf1 +mx -all",
            "DMARC at _dmarc.example.com: sets p=quarantine, other tags are kept",
            "SOA of zone example.com: hostmaster set to first.last@example.com",
            "certificate [cert:web] covers this name",
            "TLSA at _25._tcp.example.com: 3 1 1 for the certificate(s) web",
            "DKIM at mk_<unix time>._domainkey.example.com: the key of [dkim:mail]",
            "Certificate [cert:web]: example.com from https://acme-v02.api.letsencrypt.org/directory, rsa-4096 key",
            "deployed on rollover to /etc/ssl/cdm/<name>/",
            "services reloaded after it: [service:postfix]",
            "Service [service:postfix]: systemctl reload postfix, after a rollover of certificate web",
        ] {
            assert!(text.contains(wanted), "missing {wanted:?} in:\n{text}");
        }
        assert!(!text.contains("passwd") && !text.contains("= p"), "{text}");
    }
}
