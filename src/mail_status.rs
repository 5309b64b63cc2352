//! The mail policy lines of `--status`: per domain section with `mtasts`,
//! `tlsrpt` or `caa.accounturi`, the records its zone holds, the MTA-STS
//! policy file on disk and whether the TXT id names it, and the next step.

use crate::config::model::Config;
use crate::config::records::RecordKind;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::plan::mtasts::{policy_id, policy_mx};
use crate::plan::render::summary;
use crate::plan::scope::has_tag;
use crate::plan::{Observed, Plan, Section};

/// The lines, empty when no domain section has a mail policy key.
pub(crate) fn lines(config: &Config, observed: &Observed, plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for domain in &config.domains {
        let tlsrpt = domain
            .rules
            .iter()
            .any(|r| matches!(r.rule.kind, RecordKind::TlsRpt(_)));
        if domain.mtasts.is_none() && !tlsrpt && !domain.caa_accounturi {
            continue;
        }
        let name = &domain.name;
        lines.push(format!("\nmail policy of {name}"));
        let records = observed
            .zones
            .iter()
            .find(|v| v.domains.contains(name))
            .and_then(|v| v.records.as_ref().ok());
        let Some(records) = records else {
            lines.push("  zone: not read".into());
            continue;
        };
        let txt = |label: &str, tag: &str| -> Vec<String> {
            let Ok(owner) = name.prepend(label) else {
                return Vec::new();
            };
            records
                .iter()
                .filter(|r| r.name == owner)
                .filter_map(|r| match &r.data {
                    RData::Txt(t) if has_tag(t, tag) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        };
        if let Some(mtasts) = &domain.mtasts {
            let served = txt("_mta-sts", "v=STSv1");
            lines.push(format!(
                "  MTA-STS TXT at _mta-sts.{name}: {}",
                shown(&served)
            ));
            let mode = mtasts.mode.map_or("none", |m| m.as_str());
            lines.push(format!(
                "  MTA-STS mode: {mode}, max_age {}",
                mtasts.max_age
            ));
            if let Some(file) = &mtasts.file {
                let on_disk = observed.mtasts.get(file);
                let text = match on_disk {
                    Some(Ok(Some(text))) => {
                        let id = policy_id(text);
                        let named = served.iter().any(|t| t.contains(&format!("id={id}")));
                        format!(
                            "mx {}; {}",
                            policy_mx(text).join(", "),
                            if named {
                                "the TXT id names it"
                            } else {
                                "the TXT id does not name it yet"
                            }
                        )
                    }
                    Some(Ok(None)) | None => "missing".into(),
                    Some(Err(e)) => e.clone(),
                };
                lines.push(format!("  policy file {}: {text}", file.display()));
            }
            lines.push(format!("  MX: {}", shown(&mx(records, name))));
        }
        if tlsrpt {
            lines.push(format!(
                "  TLS-RPT TXT at _smtp._tls.{name}: {}",
                shown(&txt("_smtp._tls", "v=TLSRPTv1"))
            ));
        }
        if domain.caa_accounturi {
            let caa: Vec<String> = records
                .iter()
                .filter(|r| &r.name == name && r.record_type() == RecordType::Caa)
                .map(|r| r.data.to_string())
                .collect();
            lines.push(format!("  CAA: {}", shown(&caa)));
        }
        let section = Section::Domain(name.clone());
        if let Some(step) = plan.steps.iter().find(|s| s.section == section) {
            lines.push(format!("  next: {}", summary(step)));
        }
    }
    lines
}

fn mx(records: &[Record], name: &Name) -> Vec<String> {
    records
        .iter()
        .filter(|r| &r.name == name)
        .filter_map(|r| match &r.data {
            RData::Mx { exchange, .. } => Some(exchange.to_string()),
            _ => None,
        })
        .collect()
}

fn shown(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
