//! A plan in words: the lines `--dry-run` prints (what each step would change),
//! and the one-line form `--auto --dry-run` and `--status` show for every step
//! with its reason and time.

use super::timing::WHEN;
use super::{Action, Deletion, Note, Plan, Section, Step, When};
use crate::config::model::Config;
use crate::config::service::Reload as ReloadHow;

/// The kind of a step, in one word: what phase of the cycle it belongs to.
pub(crate) fn verb(action: &Action) -> &'static str {
    match action {
        Action::ChangeZone(_) => "records",
        Action::Issue(_) | Action::MakeDkimKey(_) | Action::MakeDhParams | Action::MakeNextKey => {
            "prepare"
        }
        Action::DeployCert(_) | Action::InstallDkim(_) | Action::DeployDh { .. } => "rollover",
        Action::Reload(_) => "reload",
        Action::Delete(_) => "cleanup",
        Action::Note(_) => "note",
        Action::MtaStsPolicy(_) => "policy",
    }
}

/// One line per step: `[cert:web] rollover at 2026-12-03 10:00:00 UTC (...)`.
pub(crate) fn summary(step: &Step) -> String {
    let when = match &step.when {
        When::Now => "now".to_string(),
        When::At(at) => format!("at {}", at.format(WHEN)),
        When::Waiting(_) => "waiting".to_string(),
    };
    let reason = match &step.when {
        When::Waiting(why) if why != &step.reason => format!("{}; {why}", step.reason),
        _ => step.reason.clone(),
    };
    format!("{} {} {when} ({reason})", step.section, verb(&step.action))
}

/// The changes a step would make, as `--dry-run` prints them.
pub(crate) fn changes(config: &Config, step: &Step) -> Vec<String> {
    let name = section_name(&step.section);
    let reason = &step.reason;
    match &step.action {
        Action::ChangeZone(change) => {
            let zone = &change.zone;
            let mut lines: Vec<String> = change
                .changes
                .adds
                .iter()
                .map(|r| format!("zone {zone}: add {r}"))
                .chain(
                    change
                        .changes
                        .deletes
                        .iter()
                        .map(|r| format!("zone {zone}: delete {r}")),
                )
                .collect();
            if lines.is_empty() {
                lines.push(format!("zone {zone}: no changes"));
            }
            lines
        }
        Action::MtaStsPolicy(file) => vec![match &file.content {
            Some(_) => format!(
                "domain {name}: write the MTA-STS policy {} ({reason})",
                file.path.display()
            ),
            None => format!(
                "domain {name}: remove the MTA-STS policy {} ({reason})",
                file.path.display()
            ),
        }],
        Action::Issue(issue) => {
            let ca = config
                .certs
                .iter()
                .find(|c| c.name == name)
                .map_or("", |c| c.directory.as_str());
            vec![format!(
                "cert {name}: issue a certificate for {} from {ca} ({reason})",
                issue.names.join(", ")
            )]
        }
        Action::MakeDkimKey(key) => {
            let dkim = config.dkims.iter().find(|d| d.name == name);
            let at: Vec<String> = dkim
                .map(|d| {
                    d.domains
                        .iter()
                        .map(|n| format!("{}._domainkey.{n}", key.selector))
                        .collect()
                })
                .unwrap_or_default();
            vec![format!(
                "dkim {name}: new {} key, selector {}, record at {} ({reason})",
                dkim.map_or(String::new(), |d| d.key_type.to_string()),
                key.selector,
                at.join(", ")
            )]
        }
        Action::MakeNextKey => vec![format!("cert {name}: make the next key ({reason})")],
        Action::MakeDhParams => {
            let bits = config
                .dhparams
                .iter()
                .find(|d| d.name == name)
                .map_or(0, |d| d.bits);
            let dir = config.cdm.statedir.join("dhparams").join(name);
            vec![format!(
                "dhparam {name}: make {bits}-bit DH parameters ({reason}) in {}",
                dir.display()
            )]
        }
        Action::DeployCert(material) => {
            let dest = config
                .certs
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.destination.clone());
            match dest {
                Some(dest) => material
                    .names
                    .iter()
                    .map(|n| {
                        format!(
                            "cert {name}: deploy serial {} to {}",
                            material.serial,
                            dest.join(n).display()
                        )
                    })
                    .collect(),
                None => vec![format!(
                    "cert {name}: serial {} becomes current (no destination)",
                    material.serial
                )],
            }
        }
        Action::InstallDkim(key) => vec![format!(
            "dkim {name}: install selector {} and its signing configuration",
            key.selector
        )],
        Action::DeployDh { material, .. } => {
            let target = config
                .dhparams
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.filename.display().to_string())
                .unwrap_or_default();
            vec![format!(
                "dhparam {name}: copy {} to {target}",
                material.file.display()
            )]
        }
        Action::Reload(_) => {
            let Some(service) = config.services.iter().find(|s| s.name == name) else {
                return Vec::new();
            };
            vec![match &service.reload {
                ReloadHow::Systemd { unit } => format!(
                    "service {name}: {} ({reason}); {} if it is not running",
                    argv(&["systemctl", "reload", unit]),
                    argv(&["systemctl", "start", unit])
                ),
                ReloadHow::Command { argv: words } => {
                    let words: Vec<&str> = words.iter().map(String::as_str).collect();
                    format!("service {name}: run {} ({reason})", argv(&words))
                }
                ReloadHow::Traefik { configdir } => format!(
                    "service {name}: write {} ({reason})",
                    super::services::traefik_file(configdir, name).display()
                ),
            }]
        }
        Action::Delete(deletion) => vec![match deletion {
            Deletion::CertFiles(old) => format!(
                "cert {name}: delete {} (serial {})",
                old.dir.display(),
                old.serial
            ),
            Deletion::CertVersions { dir } => {
                format!("cert {name}: delete old versions in {}", dir.display())
            }
            Deletion::DhFile(old) => format!("dhparam {name}: delete {}", old.file.display()),
            Deletion::DkimKey(old) => format!(
                "dkim {name}: delete old selector {} and {}",
                old.selector,
                old.key_file.display()
            ),
        }],
        Action::Note(note) => vec![match note {
            Note::Served(served) => format!(
                "{}: its records are served by all {} servers (noted at {})",
                step.section,
                served.servers,
                served.at.format(WHEN)
            ),
            Note::Published { .. } => format!("{}: its records are published", step.section),
            Note::Ari(ari) => format!(
                "{}: the CA's renewal information{}",
                step.section,
                ari.renew_at
                    .map(|at| format!(": renew from {}", at.format(WHEN)))
                    .unwrap_or_default()
            ),
        }],
    }
}

/// What `--dry-run` prints of a plan: the changes of the steps due now, then
/// the steps that wait, with their times.
pub(crate) fn dry_run(config: &Config, plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .runnable()
        .flat_map(|step| changes(config, step))
        .collect();
    for step in plan.steps.iter().filter(|s| !s.is_now()) {
        out.push(summary(step));
    }
    out
}

/// The name inside a section (`web` of `[cert:web]`).
fn section_name(section: &Section) -> &str {
    match section {
        Section::Cert(n) | Section::Dkim(n) | Section::DhParam(n) | Section::Service(n) => n,
        Section::Domain(n) | Section::Zone(n) => n.as_str(),
    }
}

fn argv(words: &[&str]) -> String {
    shlex::try_join(words.iter().copied()).unwrap_or_else(|_| format!("{words:?}"))
}
