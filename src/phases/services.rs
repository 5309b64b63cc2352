//! Service reloads in rollover (SPEC §3.6, §4). Every material module's
//! rollover reports what it put in place as [`Material`]; once all of it is in
//! place, each service that uses any of it is reloaded exactly once, in
//! configuration order. A failed reload is logged with the command's output,
//! the other services are still reloaded, and the phase fails. The state
//! records each service's last successful reload, so the next rollover reloads
//! it even when it deploys nothing new (also after a crash between deploying
//! and reloading).
//!
//! - `apache2`, `nginx`, `postfix`, `dovecot`, `rspamd`, `systemd`:
//!   `systemctl is-active UNIT`, then `systemctl reload UNIT` when it is
//!   running, `systemctl start UNIT` when it is not (as the original did);
//! - `command`: the argument vector, without a shell;
//! - `traefik`: the file provider's dynamic configuration naming each
//!   certificate it uses is written (atomically) into `configdir`; traefik
//!   watches that directory and reloads by itself. The file is also written
//!   when it is missing, even if nothing was rolled over.

use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use crate::apply::command as cmd;
use crate::apply::fs::{self as afs, PUBLIC_FILE};
use crate::config::model::Config;
use crate::config::service::{Reload, ServiceSection};
use crate::run::PhaseFailed;
use crate::state::{State, Store};

/// How long one reload command may take before it is killed and counted as
/// failed.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Material a rollover put in place, named by its section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    Cert(String),
    DhParam(String),
    Dkim(String),
}

impl fmt::Display for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Material::Cert(name) => write!(f, "[cert:{name}]"),
            Material::DhParam(name) => write!(f, "[dhparam:{name}]"),
            Material::Dkim(name) => write!(f, "[dkim:{name}]"),
        }
    }
}

/// What one module's rollover put in place (in a dry run: would put), and
/// whether any of its sections failed.
#[derive(Debug, Default)]
pub struct Deployed {
    pub materials: Vec<Material>,
    pub failed: bool,
}

impl Deployed {
    /// Both modules' results together.
    #[must_use]
    pub fn and(mut self, other: Deployed) -> Deployed {
        self.materials.extend(other.materials);
        self.failed |= other.failed;
        self
    }
}

/// Whether `service` uses `material`.
pub fn uses(service: &ServiceSection, material: &Material) -> bool {
    match material {
        Material::Cert(name) => service.certs.contains(name),
        Material::DhParam(name) => service.dhparams.contains(name),
        Material::Dkim(name) => service.dkims.contains(name),
    }
}

/// The systemctl action for a unit: reload a running one, start a stopped one.
pub fn systemd_action(active: bool) -> &'static str {
    if active { "reload" } else { "start" }
}

/// When the current material was put in place, from the state.
fn deployed_at(state: &State, material: &Material) -> Option<DateTime<Utc>> {
    match material {
        Material::Cert(name) => state.certs.get(name)?.current.as_ref()?.deployed_at,
        Material::DhParam(name) => state.dhparams.get(name)?.current.as_ref()?.deployed_at,
        Material::Dkim(name) => state.dkim.get(name)?.current.as_ref()?.installed,
    }
}

/// Everything `service` uses.
fn used_by(service: &ServiceSection) -> impl Iterator<Item = Material> + '_ {
    let certs = service.certs.iter().cloned().map(Material::Cert);
    let dhparams = service.dhparams.iter().cloned().map(Material::DhParam);
    let dkims = service.dkims.iter().cloned().map(Material::Dkim);
    certs.chain(dhparams).chain(dkims)
}

/// What `service` has to take up: what this rollover deployed of what it
/// uses, and what an earlier rollover deployed after its last successful
/// reload (that reload failed or was interrupted).
pub fn due(service: &ServiceSection, deployed: &[Material], state: &State) -> Vec<Material> {
    let reloaded = state
        .services
        .get(&service.name)
        .and_then(|s| s.reloaded_at);
    used_by(service)
        .filter(|m| {
            deployed.contains(m)
                || deployed_at(state, m).is_some_and(|at| reloaded.is_none_or(|r| at > r))
        })
        .collect()
}

/// Reloads every service that has something to take up (see [`due`]), once
/// each. Runs after all material of the rollover is in place.
///
/// # Errors
/// [`PhaseFailed`] when a reload failed (each failure is logged with the
/// command's output; the other services are still reloaded).
pub async fn reload(
    config: &Config,
    store: &Store,
    deployed: &[Material],
) -> Result<(), PhaseFailed> {
    let dry_run = store.dry_run();
    let state = store.snapshot().await;
    let mut failed = false;
    if !dry_run && !deployed.is_empty() {
        crate::crashpoint::reached("services:before-reload");
    }
    for service in &config.services {
        let used: Vec<String> = due(service, deployed, &state)
            .iter()
            .map(ToString::to_string)
            .collect();
        let traefik_file = match &service.reload {
            Reload::Traefik { configdir } => Some(traefik_file(configdir, &service.name)),
            _ => None,
        };
        let missing = traefik_file.as_ref().is_some_and(|f| !f.exists());
        if used.is_empty() && !missing {
            info!(
                "[service:{}] nothing it uses was rolled over; not reloaded",
                service.name
            );
            continue;
        }
        let why = if used.is_empty() {
            "its configuration file is missing".to_string()
        } else {
            format!("after {}", used.join(", "))
        };
        let result = match &service.reload {
            Reload::Systemd { unit } => systemd(service, unit, &why, dry_run).await,
            Reload::Command { argv } => command(service, argv, &why, dry_run).await,
            Reload::Traefik { configdir } => {
                traefik(config, &state, service, configdir, &why, dry_run)
            }
        };
        match result {
            Err(message) => {
                error!(
                    "[service:{}] reload failed: {message}; the next rollover tries again",
                    service.name
                );
                failed = true;
            }
            Ok(()) if dry_run => {}
            Ok(()) => {
                let saved = store
                    .update(|s| {
                        s.services
                            .entry(service.name.clone())
                            .or_default()
                            .reloaded_at = Some(Utc::now());
                    })
                    .await;
                if let Err(e) = saved {
                    error!("[service:{}] {e}", service.name);
                    failed = true;
                }
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

async fn systemd(
    service: &ServiceSection,
    unit: &str,
    why: &str,
    dry_run: bool,
) -> Result<(), String> {
    let argv = |action: &str| {
        vec![
            "systemctl".to_string(),
            action.to_string(),
            unit.to_string(),
        ]
    };
    if dry_run {
        println!(
            "service {}: {} ({why}); {} if it is not running",
            service.name,
            cmd::display(&argv("reload")),
            cmd::display(&argv("start"))
        );
        return Ok(());
    }
    let active = cmd::execute(&argv("is-active"), RELOAD_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?
        .success;
    let action = systemd_action(active);
    info!(
        "[service:{}] systemctl {action} {unit} ({why}){}",
        service.name,
        if active { "" } else { ": it is not running" }
    );
    cmd::run(&argv(action), RELOAD_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn command(
    service: &ServiceSection,
    argv: &[String],
    why: &str,
    dry_run: bool,
) -> Result<(), String> {
    if dry_run {
        println!(
            "service {}: run {} ({why})",
            service.name,
            cmd::display(argv)
        );
        return Ok(());
    }
    info!(
        "[service:{}] running {} ({why})",
        service.name,
        cmd::display(argv)
    );
    let finished = cmd::run(argv, RELOAD_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !finished.output.is_empty() {
        info!("[service:{}] {}", service.name, finished.output);
    }
    Ok(())
}

/// The dynamic configuration file a traefik service writes.
pub fn traefik_file(configdir: &Path, service: &str) -> PathBuf {
    configdir.join(format!("cryptdomainmgr-{service}.toml"))
}

fn traefik(
    config: &Config,
    state: &State,
    service: &ServiceSection,
    configdir: &Path,
    why: &str,
    dry_run: bool,
) -> Result<(), String> {
    let file = traefik_file(configdir, &service.name);
    if dry_run {
        println!("service {}: write {} ({why})", service.name, file.display());
        return Ok(());
    }
    let text = traefik_config(config, state, service);
    afs::create_dir(configdir, 0o755).map_err(|e| e.to_string())?;
    afs::write_atomic(&file, text.as_bytes(), PUBLIC_FILE).map_err(|e| e.to_string())?;
    info!(
        "[service:{}] wrote {} ({why}); traefik reloads it by itself",
        service.name,
        file.display()
    );
    Ok(())
}

/// Traefik's `[[tls.certificates]]` for every deployed certificate the service
/// uses: the full chain and key at the destination of its first name. A
/// comment with each serial makes the file change on every rollover, so
/// traefik (which watches the directory, not the certificates) reads them again.
pub fn traefik_config(config: &Config, state: &State, service: &ServiceSection) -> String {
    let mut text = format!(
        "# Written by cryptdomainmgr for [service:{}]; replaced on every rollover.\n",
        service.name
    );
    for name in &service.certs {
        let Some(cert) = config.certs.iter().find(|c| &c.name == name) else {
            continue;
        };
        let current = state.certs.get(name).and_then(|c| c.current.as_ref());
        let (Some(dest), Some(current)) = (&cert.destination, current) else {
            warn!(
                "[service:{}] [cert:{name}] has no destination or is not deployed; traefik is not given it",
                service.name
            );
            continue;
        };
        let Some(first) = current.names.first() else {
            continue;
        };
        let dir = dest.join(first);
        text.push_str(&format!(
            "\n# [cert:{name}] serial {} for {}\n[[tls.certificates]]\ncertFile = {}\nkeyFile = {}\n",
            current.serial,
            current.names.join(", "),
            toml_string(&dir.join("fullchain.pem").display().to_string()),
            toml_string(&dir.join("privkey.pem").display().to_string()),
        ));
    }
    text
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(certs: &[&str], dhparams: &[&str]) -> ServiceSection {
        ServiceSection {
            name: "web".into(),
            span: None,
            handler: "nginx".into(),
            reload: Reload::Systemd {
                unit: "nginx".into(),
            },
            certs: certs.iter().map(|s| s.to_string()).collect(),
            dhparams: dhparams.iter().map(|s| s.to_string()).collect(),
            dkims: Vec::new(),
        }
    }

    #[test]
    fn a_service_uses_what_it_lists() {
        let s = service(&["a", "b"], &["dh"]);
        assert!(uses(&s, &Material::Cert("b".into())));
        assert!(!uses(&s, &Material::Cert("c".into())));
        assert!(uses(&s, &Material::DhParam("dh".into())));
        assert!(!uses(&s, &Material::Dkim("dh".into())));
    }

    #[test]
    fn due_after_a_failed_or_missed_reload() {
        use crate::state::{DhMaterial, DhState, ServiceState};
        let s = service(&["a"], &["dh"]);
        let t = |secs| DateTime::from_timestamp(secs, 0).unwrap();
        let mut state = State::default();
        state.dhparams.insert(
            "dh".into(),
            DhState {
                current: Some(DhMaterial {
                    file: "/s".into(),
                    handler: "ffdhe".into(),
                    bits: 2048,
                    fingerprint: "f".into(),
                    created_at: t(5),
                    deployed_at: Some(t(10)),
                }),
                ..DhState::default()
            },
        );
        let dh = Material::DhParam("dh".into());
        // Never reloaded: the deployed parameters are still to be taken up.
        assert_eq!(due(&s, &[], &state), std::slice::from_ref(&dh));
        let reloaded = |state: &mut State, at| {
            state.services.insert(
                "web".into(),
                ServiceState {
                    reloaded_at: Some(t(at)),
                },
            );
        };
        reloaded(&mut state, 9);
        assert_eq!(due(&s, &[], &state), std::slice::from_ref(&dh));
        reloaded(&mut state, 11);
        assert!(due(&s, &[], &state).is_empty());
        let cert = Material::Cert("a".into());
        assert_eq!(
            due(&s, &[cert.clone(), Material::Cert("b".into())], &state),
            [cert]
        );
    }

    #[test]
    fn start_when_not_running() {
        assert_eq!(systemd_action(true), "reload");
        assert_eq!(systemd_action(false), "start");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(
            toml_string("/a \"b\"\\c\u{7f}"),
            "\"/a \\\"b\\\"\\\\c\\u007F\""
        );
    }
}
