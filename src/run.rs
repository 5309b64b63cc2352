//! One invocation: read the configuration, pick the phase, hold the state lock,
//! run the phase, record it. Exit status 0 success, 1 a phase failed, 2 usage or
//! configuration error (SPEC §2).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use crate::cli::{Action, Args, Phase};
use crate::config::cert;
use crate::config::dkim::DkimSection;
use crate::config::ini::{self, Ini};
use crate::config::model::{self, Config};
use crate::dns::provider;
use crate::phases;
use crate::plan;
use crate::state::{self, PhaseStatus, Store};

/// The process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    PhaseFailed = 1,
    ConfigError = 2,
}

/// A phase that did not complete, with the reasons (already logged).
#[derive(Debug)]
pub struct PhaseFailed;

/// Runs the invocation described by `args`.
pub async fn run(args: &Args) -> Exit {
    let Some(config) = load_config(args) else {
        return Exit::ConfigError;
    };
    match args.action() {
        Action::Check => {
            print!("{}", render_config(&config));
            Exit::Success
        }
        Action::Status => status(&config).await,
        Action::Auto => {
            error!(
                "--auto chooses phases from certificate and DKIM timing, which this version does not manage yet; run --update or a phase explicitly"
            );
            Exit::ConfigError
        }
        Action::Next => match state::load(&config.cdm.statedir) {
            Ok(state) => run_phase(&config, state.next_phase(), args).await,
            Err(e) => {
                error!("{e}");
                Exit::PhaseFailed
            }
        },
        Action::Run(phase) => run_phase(&config, phase, args).await,
    }
}

/// Reads, merges and checks the configuration; logs every error and warning.
fn load_config(args: &Args) -> Option<Config> {
    let sources = match args.sources() {
        Ok(sources) => sources,
        Err(e) => {
            error!("{e}");
            return None;
        }
    };
    let built = ini::read(&sources).and_then(|ini| {
        warn_readable_secrets(&ini);
        model::build(&ini)
    });
    match built {
        Ok(config) => {
            for warning in &config.warnings {
                warn!("{warning}");
            }
            info!("Interpreting config sections");
            for module in &config.modules {
                info!("  - {module}");
            }
            Some(config)
        }
        Err(errors) => {
            for e in &errors {
                error!("{e}");
            }
            error!(
                "configuration invalid ({} error{}); nothing was changed",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            None
        }
    }
}

/// Ends the sessions of API providers (each provider instance once).
async fn close_providers(config: &Config) {
    let mut closed = Vec::new();
    for domain in &config.domains {
        if !closed.contains(&domain.provider.id) {
            closed.push(domain.provider.id);
            domain.provider.instance.close().await;
        }
    }
}

/// Warns about configuration files that hold a secret and are readable by others.
fn warn_readable_secrets(ini: &Ini) {
    let mut warned = Vec::new();
    for (_, section) in ini.sections() {
        for (key, value) in &section.entries {
            let source = value.span.source.as_ref();
            let secret = provider::is_secret_key(key) || cert::SECRET_KEYS.contains(&key.as_str());
            if !secret || source == "--config-content" || warned.contains(&source) {
                continue;
            }
            let readable = std::fs::metadata(Path::new(source))
                .map(|m| m.permissions().mode() & 0o004 != 0)
                .unwrap_or(false);
            if readable {
                warn!(
                    "{source} holds a secret (key \"{key}\") and is readable by others; restrict it with chmod 600"
                );
                warned.push(source);
            }
        }
    }
}

async fn run_phase(config: &Config, phase: Phase, args: &Args) -> Exit {
    let statedir = &config.cdm.statedir;
    // A dry run takes no lock and writes nothing; it reads the state if there is one.
    let _lock = if args.dry_run {
        None
    } else {
        match state::lock(statedir) {
            Ok(lock) => Some(lock),
            Err(e) => {
                error!("{e}");
                return Exit::PhaseFailed;
            }
        }
    };
    let state = match state::load(statedir) {
        Ok(state) => state,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let store = Store::new(statedir, state, args.dry_run);
    if let Err(e) = store
        .update(|s| s.record(phase, PhaseStatus::Running, Utc::now()))
        .await
    {
        error!("{e}");
        return Exit::PhaseFailed;
    }
    if args.dry_run {
        info!(
            "Running phase: {} (dry run: nothing will be changed)",
            phase.name()
        );
    } else {
        info!("Running phase: {}", phase.name());
    }
    let options = phases::Options {
        dry_run: args.dry_run,
        force: args.force,
    };
    let result = phases::run(config, phase, &store, options).await;
    close_providers(config).await;
    let status = if result.is_ok() {
        PhaseStatus::Completed
    } else {
        PhaseStatus::Failed
    };
    let saved = store.update(|s| s.record(phase, status, Utc::now())).await;
    if let Err(e) = &saved {
        error!("{e}");
    }
    if !config.cdm.postwait.is_zero() && !args.dry_run {
        info!("Waiting {} s (postwait)", config.cdm.postwait.as_secs_f64());
        tokio::time::sleep(config.cdm.postwait).await;
    }
    match (result, saved) {
        (Ok(()), Ok(())) => Exit::Success,
        _ => {
            error!("phase {} failed", phase.name());
            Exit::PhaseFailed
        }
    }
}

async fn status(config: &Config) -> Exit {
    let state = match state::load(&config.cdm.statedir) {
        Ok(state) => state,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    println!("state directory: {}", config.cdm.statedir.display());
    match &state.cycle {
        Some(run) => println!(
            "last phase: {} ({:?}) at {}",
            run.phase.name(),
            run.status,
            run.at.to_rfc3339()
        ),
        None => println!("last phase: none"),
    }
    println!("next phase: {}", state.next_phase().name());
    match &state.update {
        Some(run) => println!("last update: {:?} at {}", run.status, run.at.to_rfc3339()),
        None => println!("last update: never"),
    }
    let now = Utc::now();
    for cert in &config.certs {
        println!(
            "\ncertificate [cert:{}] for {}",
            cert.name,
            join(&cert.domains)
        );
        let entry = state.certs.get(&cert.name).cloned().unwrap_or_default();
        for (label, material) in [("current", &entry.current), ("prepared", &entry.prepared)] {
            match material {
                Some(m) => println!(
                    "  {label}: serial {}, sha256 {}, expires {} ({} days), names {}",
                    m.serial,
                    m.fingerprint,
                    m.not_after.format("%Y-%m-%d %H:%M UTC"),
                    (m.not_after - now).num_days(),
                    m.names.join(", ")
                ),
                None => println!("  {label}: none"),
            }
            if let Some(at) = material.as_ref().and_then(|m| m.tlsa_published_at) {
                println!(
                    "  {label}: TLSA records published at {}",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
        }
        if let Some(pending) = &entry.pending {
            println!(
                "  interrupted issuance since {} (order {}); the next prepare continues it",
                pending.started.to_rfc3339(),
                pending.order_url.as_deref().unwrap_or("not yet created")
            );
        }
        let names: Vec<String> = cert.domains.iter().map(|d| d.to_string()).collect();
        match phases::cert::renewal_reason(cert, &names, &entry, now, false) {
            Some(reason) => println!("  due: prepare ({reason})"),
            None => println!("  due: nothing"),
        }
    }
    for dkim in &config.dkims {
        print_dkim_status(dkim, &state, now);
    }
    for line in phases::tlsa::status_lines(config, &state).await {
        println!("{line}");
    }
    print!("{}", phases::dhparam::status(config, &state));
    Exit::Success
}

fn print_dkim_status(dkim: &DkimSection, state: &state::State, now: DateTime<Utc>) {
    const WHEN: &str = "%Y-%m-%d %H:%M UTC";
    println!(
        "\nDKIM [dkim:{}] ({}, {}) for {}",
        dkim.name,
        dkim.handler.name(),
        dkim.key_type,
        join(&dkim.domains)
    );
    let entry = state.dkim.get(&dkim.name).cloned().unwrap_or_default();
    let age = |k: &state::DkimKeyState| (now - k.created).num_days();
    match &entry.current {
        Some(k) => println!(
            "  current: selector {}, {}, {} days old, installed {}",
            k.selector,
            k.key_type,
            age(k),
            k.installed
                .map(|t| t.format(WHEN).to_string())
                .unwrap_or_else(|| "-".into())
        ),
        None => println!("  current: none"),
    }
    match &entry.prepared {
        Some(k) => println!(
            "  prepared: selector {}, {}, {} days old, {}",
            k.selector,
            k.key_type,
            age(k),
            k.published
                .map(|t| format!("published {}", t.format(WHEN)))
                .unwrap_or_else(|| "not yet published (run prepare)".into())
        ),
        None => println!("  prepared: none"),
    }
    for old in &entry.retired {
        if let Some(until) = plan::dkim::drained_at(dkim, old) {
            println!(
                "  old: selector {}, record kept until {}",
                old.selector,
                until.format(WHEN)
            );
        }
    }
    if entry.prepared.is_some() {
        println!("  due: rollover (a prepared key waits)");
    } else {
        match plan::dkim::due_reason(dkim, &entry, now, false) {
            Some(reason) => println!("  due: prepare ({reason})"),
            None => match &entry.current {
                Some(k) => println!(
                    "  due: nothing until {}",
                    plan::dkim::rotation_due_at(dkim, k).format(WHEN)
                ),
                None => println!("  due: nothing"),
            },
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What each provider in use can do (once per provider instance).
fn render_providers(config: &Config, out: &mut String) {
    let mut shown = Vec::new();
    for domain in &config.domains {
        let provider = &domain.provider;
        if shown.contains(&provider.id) {
            continue;
        }
        shown.push(provider.id);
        let caps = &provider.capabilities;
        out.push_str(&format!("\n[provider:{}]\n", provider.handler));
        out.push_str(&format!("api = {}\n", provider.instance.describe()));
        out.push_str(&format!("record types = {}\n", caps.types_text()));
        out.push_str(&format!("soa fields = {}\n", caps.soa_text()));
        out.push_str(&format!("changes = {}\n", caps.application));
    }
}

/// The configuration as interpreted, for `--check`. Secrets are never shown.
fn render_config(config: &Config) -> String {
    let mut out = String::new();
    out.push_str("[cdm]\n");
    out.push_str(&format!("statedir = {}\n", config.cdm.statedir.display()));
    out.push_str(&format!(
        "postwait = {}\n",
        config.cdm.postwait.as_secs_f64()
    ));
    for domain in &config.domains {
        out.push_str(&format!("\n[domain:{}]\n", domain.name));
        out.push_str(&format!(
            "provider = {} ({})\n",
            domain.provider.handler,
            domain.provider.instance.describe()
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
    }
    render_providers(config, &mut out);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_shows_what_each_provider_can_do() {
        let config = model::build_text(
            "t.conf",
            "[domain:a.example]\nhandler = inwx\nuser = u\npasswd = p\n\
             [domain:b.example]\nhandler = cloudflare\napitoken = t\n\
             [domain:c.example]\nhandler = inwx\nuser = u\npasswd = p\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let text = render_config(&config);
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
