//! The mail policy of `--status` and `--status --json`: per domain section
//! with `mtasts`, `tlsrpt` or `caa.accounturi`, the records its zone holds,
//! the MTA-STS policy file on disk and whether the TXT id names it.

use serde_json::{Value, json};

use crate::config::model::{Config, Domain};
use crate::config::records::RecordKind;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::plan::mtasts::{policy_id, policy_mx};
use crate::plan::render::summary;
use crate::plan::scope::has_tag;
use crate::plan::{Observed, Plan, Section};

/// What one domain section's mail policy looks like now.
struct View<'a> {
    domain: &'a Domain,
    /// `None` when the zone could not be read.
    records: Option<&'a Vec<Record>>,
    mtasts_txt: Vec<String>,
    /// The policy file: `Ok(Some(text))`, `Ok(None)` when missing.
    policy: Option<Result<Option<String>, String>>,
    tlsrpt: Option<Vec<String>>,
    caa: Option<Vec<String>>,
    mx: Vec<String>,
}

impl View<'_> {
    /// The policy file's text when the TXT id names it.
    fn id_names_file(&self) -> Option<bool> {
        match &self.policy {
            Some(Ok(Some(text))) => {
                let id = format!("id={}", policy_id(text));
                Some(self.mtasts_txt.iter().any(|t| t.contains(&id)))
            }
            _ => None,
        }
    }

    fn stage(&self) -> &'static str {
        match (&self.domain.mtasts, self.id_names_file()) {
            (None, _) => "configured",
            (Some(m), _) if m.mode.is_none() => "mtasts withdrawn",
            (Some(_), Some(true)) => "policy in place, named by its TXT record",
            (Some(_), Some(false)) => "policy written, TXT record pending",
            (Some(_), None) => "no policy file",
        }
    }
}

fn views<'a>(config: &'a Config, observed: &'a Observed) -> Vec<View<'a>> {
    let mut views = Vec::new();
    for domain in &config.domains {
        let tlsrpt = domain
            .rules
            .iter()
            .any(|r| matches!(r.rule.kind, RecordKind::TlsRpt(_)));
        if domain.mtasts.is_none() && !tlsrpt && !domain.caa_accounturi {
            continue;
        }
        let name = &domain.name;
        let records = observed
            .zones
            .iter()
            .find(|v| v.domains.contains(name))
            .and_then(|v| v.records.as_ref().ok());
        let all: &[Record] = records.map_or(&[], |r| r.as_slice());
        let txt = |label: &str, tag: &str| -> Vec<String> {
            let Ok(owner) = name.prepend(label) else {
                return Vec::new();
            };
            all.iter()
                .filter(|r| r.name == owner)
                .filter_map(|r| match &r.data {
                    RData::Txt(t) if has_tag(t, tag) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        };
        views.push(View {
            domain,
            records,
            mtasts_txt: txt("_mta-sts", "v=STSv1"),
            policy: domain
                .mtasts
                .as_ref()
                .and_then(|m| m.file.as_ref())
                .map(|f| observed.mtasts.get(f).cloned().unwrap_or(Ok(None))),
            tlsrpt: tlsrpt.then(|| txt("_smtp._tls", "v=TLSRPTv1")),
            caa: domain.caa_accounturi.then(|| {
                all.iter()
                    .filter(|r| &r.name == name && r.record_type() == RecordType::Caa)
                    .map(|r| r.data.to_string())
                    .collect()
            }),
            mx: mx(all, name),
        });
    }
    views
}

/// The `--status` lines, empty when no domain section has a mail policy key.
pub(crate) fn lines(config: &Config, observed: &Observed, plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for view in views(config, observed) {
        let name = &view.domain.name;
        lines.push(format!("\nmail policy of {name}"));
        if view.records.is_none() {
            lines.push("  zone: not read".into());
            continue;
        }
        if let Some(mtasts) = &view.domain.mtasts {
            lines.push(format!(
                "  MTA-STS TXT at _mta-sts.{name}: {}",
                shown(&view.mtasts_txt)
            ));
            let mode = mtasts.mode.map_or("none", |m| m.as_str());
            lines.push(format!(
                "  MTA-STS mode: {mode}, max_age {}",
                mtasts.max_age
            ));
            if let (Some(file), Some(policy)) = (&mtasts.file, &view.policy) {
                let text = match policy {
                    Ok(Some(text)) => format!(
                        "mx {}; {}",
                        policy_mx(text).join(", "),
                        if view.id_names_file() == Some(true) {
                            "the TXT id names it"
                        } else {
                            "the TXT id does not name it yet"
                        }
                    ),
                    Ok(None) => "missing".into(),
                    Err(e) => e.clone(),
                };
                lines.push(format!("  policy file {}: {text}", file.display()));
            }
            lines.push(format!("  MX: {}", shown(&view.mx)));
        }
        if let Some(tlsrpt) = &view.tlsrpt {
            lines.push(format!(
                "  TLS-RPT TXT at _smtp._tls.{name}: {}",
                shown(tlsrpt)
            ));
        }
        if let Some(caa) = &view.caa {
            lines.push(format!("  CAA: {}", shown(caa)));
        }
        let section = Section::Domain(name.clone());
        if let Some(step) = plan.steps.iter().find(|s| s.section == section) {
            lines.push(format!("  next: {}", summary(step)));
        }
    }
    lines
}

/// Per domain section: its name, its stage and the `mail` object of
/// `--status --json` (docs/status-json.md).
pub(crate) fn json(config: &Config, observed: &Observed) -> Vec<(Name, &'static str, Value)> {
    views(config, observed)
        .into_iter()
        .map(|view| {
            let mtasts = view.domain.mtasts.as_ref().map_or(Value::Null, |m| {
                let (file_state, file_mx) = match &view.policy {
                    Some(Ok(Some(text))) => ("present", json!(policy_mx(text))),
                    Some(Ok(None)) | None => ("missing", Value::Null),
                    Some(Err(_)) => ("unreadable", Value::Null),
                };
                json!({
                    "mode": m.mode.map_or("none", |m| m.as_str()),
                    "max_age": m.max_age,
                    "file": m.file.as_ref().map(|f| f.display().to_string()),
                    "file_state": file_state,
                    "file_mx": file_mx,
                    "txt": view.mtasts_txt,
                    "id_names_file": view.id_names_file(),
                })
            });
            let value = json!({
                "zone_read": view.records.is_some(),
                "mtasts": mtasts,
                "mx": view.mx,
                "tlsrpt": view.tlsrpt,
                "caa": view.caa,
            });
            (view.domain.name.clone(), view.stage(), value)
        })
        .collect()
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
