//! `[service:NAME]` sections (docs/configuration.md): how a service is reloaded and which
//! certificates, DH parameters and DKIM keys it uses (`auto`: all of them).

use std::path::PathBuf;

use crate::apply::command::{self, SplitError};

use super::ini::{ConfigError, Span, Value};
use super::section::ModuleSection;

/// The keys of `[service]` sections.
pub(crate) const KEYS: &[&str] = &[
    "handler",
    "cert",
    "dhparam",
    "dkim",
    "unit",
    "command",
    "configdir",
];

/// Handlers that reload the systemd unit of their own name.
pub(crate) const UNIT_HANDLERS: &[&str] = &["apache2", "nginx", "postfix", "dovecot", "rspamd"];

/// How a service takes up new material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// `systemctl reload UNIT` when the unit is active, `systemctl start UNIT`
    /// when it is not (as the original did).
    Systemd { unit: String },
    /// An argument vector, run without a shell.
    Command { argv: Vec<String> },
    /// Traefik's file provider: a dynamic configuration naming each
    /// certificate, written into the directory traefik watches.
    Traefik { configdir: PathBuf },
}

/// One service to reload after rollover.
#[derive(Clone, Debug)]
pub struct ServiceSection {
    pub name: String,
    pub span: Option<Span>,
    /// The handler as interpreted (`nginx`, `systemd`, `command`, `traefik`, ...).
    pub handler: String,
    pub reload: Reload,
    /// The `[cert:...]`, `[dhparam:...]` and `[dkim:...]` sections it uses.
    pub certs: Vec<String>,
    pub dhparams: Vec<String>,
    pub dkims: Vec<String>,
}

/// The section names of each module a service may use.
pub(super) struct Known<'a> {
    pub certs: &'a [String],
    pub dhparams: &'a [String],
    pub dkims: &'a [String],
}

/// Builds the `[service:NAME]` sections.
pub(super) fn build_services(
    sections: &[ModuleSection],
    known: &Known<'_>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Vec<ServiceSection> {
    sections
        .iter()
        .filter(|s| s.module == "service")
        .filter_map(|s| build_one(s, known, errors, warnings))
        .collect()
}

fn build_one(
    section: &ModuleSection,
    known: &Known<'_>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<ServiceSection> {
    let entries = &section.entries;
    let before = errors.len();
    let text = |key: &str| entries.get(key).map(|v| v.text.trim());
    // The handler defaults to the section name; `auto` means the same, and the
    // original's "/variant" suffix is dropped.
    let handler = match text("handler") {
        None | Some("") | Some("auto") => section.name.to_ascii_lowercase(),
        Some(h) => h.to_ascii_lowercase(),
    };
    let handler = handler.split('/').next().unwrap_or_default().to_string();
    let handler_span = entries
        .get("handler")
        .map(|v| v.span.clone())
        .unwrap_or_else(|| section.header_span());

    let (reload, used): (Option<Reload>, &[&str]) = match handler.as_str() {
        h if UNIT_HANDLERS.contains(&h) => {
            let unit = match entries.get("unit") {
                Some(value) => unit_name(value, errors),
                None => Some(h.to_string()),
            };
            (unit.map(|unit| Reload::Systemd { unit }), &["unit"])
        }
        "systemd" => {
            let unit = match entries.get("unit") {
                Some(value) => unit_name(value, errors),
                None => {
                    errors.push(ConfigError::new(
                        &handler_span,
                        format!("[service:{}] handler systemd needs a unit", section.name),
                    ));
                    None
                }
            };
            (unit.map(|unit| Reload::Systemd { unit }), &["unit"])
        }
        "command" => {
            let argv = match entries.get("command") {
                Some(value) => command_argv(value, errors),
                None => {
                    errors.push(ConfigError::new(
                        &handler_span,
                        format!("[service:{}] handler command needs a command", section.name),
                    ));
                    None
                }
            };
            (argv.map(|argv| Reload::Command { argv }), &["command"])
        }
        "traefik" => {
            let dir = match text("configdir") {
                Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
                _ => {
                    let span = entries
                        .get("configdir")
                        .or(entries.get("dirext"))
                        .or(entries.get("container"))
                        .map(|v| v.span.clone())
                        .unwrap_or_else(|| handler_span.clone());
                    let docker_keys = ["container", "dirint", "dirext"]
                        .iter()
                        .any(|k| entries.contains_key(*k));
                    errors.push(ConfigError::new(
                        &span,
                        super::original::traefik_configdir_advice(
                            &section.name,
                            text("dirext"),
                            docker_keys,
                        ),
                    ));
                    None
                }
            };
            (
                dir.map(|configdir| Reload::Traefik { configdir }),
                &["configdir"],
            )
        }
        other => {
            errors.push(ConfigError::new(
                &handler_span,
                format!(
                    "[service:{}]: unknown service handler \"{other}\" (use {}, systemd, command or traefik)",
                    section.name,
                    UNIT_HANDLERS.join(", ")
                ),
            ));
            (None, &[])
        }
    };
    for key in ["unit", "command", "configdir"] {
        if let Some(value) = entries.get(key)
            && !used.contains(&key)
            && !value.from_default
            && reload.is_some()
        {
            warnings.push(ConfigError::new(
                &value.span,
                format!(
                    "[service:{}] {key} is not used by handler {handler}; it is ignored",
                    section.name
                ),
            ));
        }
    }

    let certs = uses(section, "cert", known.certs, errors);
    let dhparams = uses(section, "dhparam", known.dhparams, errors);
    let dkims = uses(section, "dkim", known.dkims, errors);
    if errors.len() > before {
        return None;
    }
    Some(ServiceSection {
        name: section.name.clone(),
        span: section.span.clone(),
        handler,
        reload: reload?,
        certs,
        dhparams,
        dkims,
    })
}

/// A systemd unit name, given as one argument: no option-like or empty names.
fn unit_name(value: &Value, errors: &mut Vec<ConfigError>) -> Option<String> {
    let unit = value.text.trim();
    if unit.is_empty()
        || unit.starts_with('-')
        || unit.contains(|c: char| c.is_whitespace() || c == '/' || c.is_control())
    {
        errors.push(ConfigError::new(
            &value.span,
            format!("unit \"{unit}\" is not a systemd unit name"),
        ));
        return None;
    }
    Some(unit.to_string())
}

/// `command` split into words (see [`command::split`]).
fn command_argv(value: &Value, errors: &mut Vec<ConfigError>) -> Option<Vec<String>> {
    match command::split(&value.text) {
        Ok(argv) => Some(argv),
        Err(SplitError::Empty) => {
            errors.push(ConfigError::new(&value.span, "command is empty"));
            None
        }
        Err(SplitError::Unbalanced) => {
            errors.push(ConfigError::new(
                &value.span,
                format!("command \"{}\" has an unclosed quote", value.text.trim()),
            ));
            None
        }
    }
}

/// The sections of `module` a service uses: a list of names, `auto` (the
/// default) for all, `none` or empty for none. Unknown names are errors.
fn uses(
    section: &ModuleSection,
    module: &str,
    known: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let Some(value) = section.entries.get(module) else {
        return known.to_vec();
    };
    let names: Vec<&str> = value
        .text
        .split([',', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.iter().any(|n| n.eq_ignore_ascii_case("auto")) {
        return known.to_vec();
    }
    if names.iter().all(|n| n.eq_ignore_ascii_case("none")) {
        return Vec::new();
    }
    let mut listed = Vec::new();
    for name in names {
        if known.iter().any(|k| k == name) {
            if !listed.iter().any(|l| l == name) {
                listed.push(name.to_string());
            }
        } else {
            errors.push(ConfigError::new(
                &value.span,
                format!(
                    "[service:{}] {module} = {name}: there is no [{module}:{name}] section",
                    section.name
                ),
            ));
        }
    }
    listed
}

/// The sections as interpreted, for `--check`.
pub(crate) fn render(services: &[ServiceSection]) -> String {
    let mut out = String::new();
    for s in services {
        out.push_str(&format!(
            "\n[service:{}]\nhandler = {}\n",
            s.name, s.handler
        ));
        match &s.reload {
            Reload::Systemd { unit } => out.push_str(&format!("unit = {unit}\n")),
            Reload::Command { argv } => out.push_str(&format!("command = {argv:?}\n")),
            Reload::Traefik { configdir } => {
                out.push_str(&format!("configdir = {}\n", configdir.display()));
            }
        }
        for (key, list) in [
            ("cert", &s.certs),
            ("dhparam", &s.dhparams),
            ("dkim", &s.dkims),
        ] {
            out.push_str(&format!("{key} = {}\n", list.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Config, build_text};

    const MATERIAL: &str = "[domain:www.example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ncert = auto\n[cert:web]\n[cert:mail]\n[dhparam:dh]\n[dkim:mail]\n";

    fn config(text: &str) -> Result<Config, Vec<String>> {
        build_text("s.conf", &format!("{MATERIAL}{text}"))
    }

    #[test]
    fn handlers_and_what_they_use() {
        let c = config(
            "[service:nginx]\n\
             [service:mail]\nhandler = postfix\ncert = mail\ndhparam = none\n\
             [service:app]\nhandler = systemd\nunit = app@1.service\ndkim =\n\
             [service:web]\nhandler = command\ncommand = nginx -c '/etc/my nginx.conf' -s reload\n\
             [service:proxy]\nhandler = traefik\nconfigdir = /etc/traefik/dynamic\ncert = web, mail, web\n",
        )
        .unwrap();
        let s = &c.services;
        assert_eq!(
            s[0].reload,
            Reload::Systemd {
                unit: "nginx".into()
            }
        );
        assert_eq!(s[0].certs, ["web", "mail"]);
        assert_eq!(s[0].dhparams, ["dh"]);
        assert_eq!(s[0].dkims, ["mail"]);
        assert_eq!(
            s[1].reload,
            Reload::Systemd {
                unit: "postfix".into()
            }
        );
        assert_eq!(
            (s[1].certs.as_slice(), s[1].dhparams.len()),
            (&["mail".to_string()][..], 0)
        );
        assert_eq!(
            s[2].reload,
            Reload::Systemd {
                unit: "app@1.service".into()
            }
        );
        assert!(s[2].dkims.is_empty());
        assert_eq!(
            s[3].reload,
            Reload::Command {
                argv: vec![
                    "nginx".into(),
                    "-c".into(),
                    "/etc/my nginx.conf".into(),
                    "-s".into(),
                    "reload".into()
                ]
            }
        );
        assert_eq!(
            s[4].reload,
            Reload::Traefik {
                configdir: "/etc/traefik/dynamic".into()
            }
        );
        assert_eq!(s[4].certs, ["web", "mail"]);
    }

    #[test]
    fn bad_values_name_their_line() {
        // MATERIAL has 10 lines; the service section starts at line 11.
        for (text, at, what) in [
            (
                "[service:x]\nhandler = lighttpd\n",
                "s.conf:12:",
                "unknown service handler",
            ),
            (
                "[service:lighttpd]\n",
                "s.conf:11:",
                "unknown service handler",
            ),
            (
                "[service:x]\nhandler = systemd\n",
                "s.conf:12:",
                "needs a unit",
            ),
            (
                "[service:x]\nhandler = systemd\nunit = --all\n",
                "s.conf:13:",
                "not a systemd unit",
            ),
            (
                "[service:x]\nhandler = command\n",
                "s.conf:12:",
                "needs a command",
            ),
            (
                "[service:x]\nhandler = command\ncommand = echo 'a\n",
                "s.conf:13:",
                "unclosed quote",
            ),
            (
                "[service:x]\nhandler = traefik\n",
                "s.conf:12:",
                "needs configdir",
            ),
            (
                "[service:nginx]\ncert = web, www\n",
                "s.conf:12:",
                "no [cert:www] section",
            ),
            (
                "[service:nginx]\ndhparam = dh2\n",
                "s.conf:12:",
                "no [dhparam:dh2] section",
            ),
            (
                "[service:nginx]\ndkim = other\n",
                "s.conf:12:",
                "no [dkim:other] section",
            ),
        ] {
            let errors = config(text)
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert!(
                errors.iter().any(|e| e.starts_with(at) && e.contains(what)),
                "{text}: {errors:?}"
            );
        }
    }

    #[test]
    fn keys_of_other_handlers_warn() {
        let c = config("[service:nginx]\ncommand = true\n").unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.to_string().starts_with("s.conf:12:")
                    && w.message.contains("not used by handler nginx")),
            "{:?}",
            c.warnings
        );
    }
}
