//! Which services reload, and what traefik is told (docs/configuration.md,
//! `[service:NAME]`). A service reloads once after the material it uses was put
//! in place: what this round deploys, and what an earlier round deployed after
//! its last successful reload (that reload failed or was interrupted).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Action, Input, Plan, Reload, Section, Step};
use crate::config::model::Config;
use crate::config::service::{Reload as ReloadHow, ServiceSection};
use crate::state::State;

/// Everything `service` uses, as sections.
pub(crate) fn used_by(service: &ServiceSection) -> impl Iterator<Item = Section> + '_ {
    let certs = service.certs.iter().cloned().map(Section::Cert);
    let dhparams = service.dhparams.iter().cloned().map(Section::DhParam);
    let dkims = service.dkims.iter().cloned().map(Section::Dkim);
    certs.chain(dhparams).chain(dkims)
}

/// When the current material of `section` was put in place.
fn deployed_at(state: &State, section: &Section) -> Option<DateTime<Utc>> {
    match section {
        Section::Cert(name) => state.certs.get(name)?.current.as_ref()?.deployed_at,
        Section::DhParam(name) => state.dhparams.get(name)?.current.as_ref()?.deployed_at,
        Section::Dkim(name) => state.dkim.get(name)?.current.as_ref()?.installed,
        Section::Service(_) | Section::Domain(_) | Section::Zone(_) => None,
    }
}

/// What `service` has to take up: what `deploying` puts in place of what it
/// uses, and what was deployed after its last successful reload.
pub(crate) fn due(service: &ServiceSection, deploying: &[Section], state: &State) -> Vec<Section> {
    let reloaded = state
        .services
        .get(&service.name)
        .and_then(|s| s.reloaded_at);
    used_by(service)
        .filter(|m| {
            deploying.contains(m)
                || deployed_at(state, m).is_some_and(|at| reloaded.is_none_or(|r| at > r))
        })
        .collect()
}

/// Plans `service`'s reload, if it has something to take up.
pub(crate) fn plan(
    input: &Input<'_>,
    service: &ServiceSection,
    deploying: &[Section],
    plan: &mut Plan,
) {
    let section = Section::Service(service.name.clone());
    let after = due(service, deploying, input.state);
    let missing_file = input.observed.traefik_missing.contains(&service.name);
    if after.is_empty() && !missing_file {
        if input.request == super::Request::Rollover && input.first_round {
            plan.info.push((
                section,
                "nothing it uses was rolled over; not reloaded".into(),
            ));
        }
        return;
    }
    let reason = if after.is_empty() {
        "its configuration file is missing".to_string()
    } else {
        format!(
            "after {}",
            after
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    plan.steps.push(Step::now(
        section,
        Action::Reload(Reload {
            after,
            missing_file,
        }),
        reason,
    ));
}

/// The systemctl action for a unit: reload a running one, start a stopped one.
pub(crate) fn systemd_action(active: bool) -> &'static str {
    if active { "reload" } else { "start" }
}

/// The dynamic configuration file a traefik service writes.
pub(crate) fn traefik_file(configdir: &Path, service: &str) -> PathBuf {
    configdir.join(format!("cryptdomainmgr-{service}.toml"))
}

/// The traefik configuration file of `service`, if it is a traefik service.
pub(crate) fn traefik_file_of(service: &ServiceSection) -> Option<PathBuf> {
    match &service.reload {
        ReloadHow::Traefik { configdir } => Some(traefik_file(configdir, &service.name)),
        _ => None,
    }
}

/// Traefik's `[[tls.certificates]]` for every deployed certificate the service
/// uses: the full chain and key at the destination of its first name. A
/// comment with each serial makes the file change on every rollover, so
/// traefik (which watches the directory, not the certificates) reads them
/// again. Certificates without destination or not deployed are named in the
/// returned warnings.
pub(crate) fn traefik_config(
    config: &Config,
    state: &State,
    service: &ServiceSection,
) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
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
            warnings.push(format!(
                "[cert:{name}] has no destination or is not deployed; traefik is not given it"
            ));
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
    (text, warnings)
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
    use crate::state::{DhMaterial, DhState, ServiceState};

    fn service(certs: &[&str], dhparams: &[&str]) -> ServiceSection {
        ServiceSection {
            name: "web".into(),
            span: None,
            handler: "nginx".into(),
            reload: ReloadHow::Systemd {
                unit: "nginx".into(),
            },
            certs: certs.iter().map(|s| s.to_string()).collect(),
            dhparams: dhparams.iter().map(|s| s.to_string()).collect(),
            dkims: Vec::new(),
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_service_uses_what_it_lists() {
        let used: Vec<Section> = used_by(&service(&["a", "b"], &["dh"])).collect();
        assert!(used.contains(&Section::Cert("b".into())));
        assert!(!used.contains(&Section::Cert("c".into())));
        assert!(used.contains(&Section::DhParam("dh".into())));
        assert!(!used.contains(&Section::Dkim("dh".into())));
    }

    #[test]
    fn due_after_a_failed_or_missed_reload() {
        let s = service(&["a"], &["dh"]);
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
        let dh = Section::DhParam("dh".into());
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
        let cert = Section::Cert("a".into());
        assert_eq!(
            due(&s, &[cert.clone(), Section::Cert("b".into())], &state),
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
