//! `--status` and `--status --json`: what the state holds, what the zones
//! serve of TLSA records, and per section the next step of its cycle, when and
//! why (planned as `--auto` would, without changing anything).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use log::error;
use serde_json::{Value, json};

use crate::clock;
use crate::cluster::ClusterStatus;
use crate::config::model::Config;
use crate::config::records::Op;
use crate::dns::provider::Providers;
use crate::dns::record::{Name, Record, RecordType};
use crate::material::cert::CertInfo;
use crate::observe;
use crate::plan::cert::{self as cert_plan, cert_state, renewal_due_at};
use crate::plan::dkim::{dkim_state, drained_at, rotation_due_at};
use crate::plan::observed::{Observed, TlsaDnssec};
use crate::plan::render::{summary, verb};
use crate::plan::scope::{Filter, Names, Scope};
use crate::plan::timing::WHEN;
use crate::plan::tlsa::{self as tlsa, Mode, Role, TlsaCert, has_tlsa};
use crate::plan::{self, Input, Plan, Request, Section, Step, When};
use crate::run::Exit;
use crate::state::{self, CertMaterial, LoggedStep, State};

/// The version of the `--status --json` document (docs/status-json.md).
pub(crate) const JSON_VERSION: u32 = 1;

/// Prints the status, as text or as JSON; with `store = etcd` the cluster's
/// nodes (or why they could not be read) after the text, or as `cluster`.
pub(crate) async fn print(
    config: &Config,
    providers: &Providers,
    json: bool,
    cluster: Option<&Result<ClusterStatus, String>>,
) -> Exit {
    let state = match state::load(&config.cdm.statedir) {
        Ok(state) => state,
        Err(e) => {
            error!("{e}");
            return Exit::PhaseFailed;
        }
    };
    let now = clock::now();
    let (observed, plan) = observe_and_plan(config, providers, &state, now).await;
    if json {
        let mut document = document(config, &state, &observed, &plan, now);
        document["cluster"] = match cluster {
            None => Value::Null,
            Some(Ok(cluster)) => cluster.json(),
            Some(Err(e)) => json!({ "error": e }),
        };
        match serde_json::to_string_pretty(&document) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                error!("{e}");
                return Exit::PhaseFailed;
            }
        }
    } else {
        print!("{}", text(config, &state, &observed, &plan, now));
        if let Some(Ok(cluster)) = cluster {
            println!();
            for line in cluster.lines() {
                println!("{line}");
            }
        }
    }
    Exit::Success
}

/// Observes what `--auto` would (but the CA) and plans as it would.
async fn observe_and_plan(
    config: &Config,
    providers: &Providers,
    state: &State,
    now: DateTime<Utc>,
) -> (Observed, Plan) {
    let failed = BTreeSet::new();
    let mut observed = observe::material(config, state);
    let (needs, zones) = {
        let input = Input {
            config,
            state,
            observed: &observed,
            request: Request::Auto,
            force: false,
            now,
            first_round: false,
            failed: &failed,
        };
        let needs = plan::needs::needs(&input);
        let zones = observe::zones(&input, providers, &needs.domains).await;
        (needs, zones)
    };
    observed.zones = zones.0;
    observed.zone_errors = zones.1;
    for awaited in &needs.served {
        let answers = observe::served(config, providers, awaited).await;
        observed.served.insert(awaited.section.clone(), answers);
    }
    let input = Input {
        config,
        state,
        observed: &observed,
        request: Request::Auto,
        force: false,
        now,
        first_round: false,
        failed: &failed,
    };
    let plan = plan::plan(&input);
    let dnssec = observe::tlsa_dnssec(config, providers, &observed).await;
    observed.tlsa_dnssec = dnssec;
    (observed, plan)
}

/// The next steps of `section` in `plan`: those due now first, then the one
/// that comes soonest.
fn next_steps<'a>(plan: &'a Plan, section: &Section) -> Vec<&'a Step> {
    let mut steps: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| &s.section == section && !matches!(s.action, plan::Action::Note(_)))
        .collect();
    steps.sort_by_key(|s| match &s.when {
        When::Now => (0, None),
        When::At(at) => (1, Some(*at)),
        When::Waiting(_) => (2, None),
    });
    steps
}

fn next_line(plan: &Plan, section: &Section, idle: impl FnOnce() -> String) -> String {
    let steps = next_steps(plan, section);
    match steps.first() {
        Some(step) => format!("  next: {}", summary(step)),
        None => format!("  next: {}", idle()),
    }
}

fn text(
    config: &Config,
    state: &State,
    observed: &Observed,
    plan: &Plan,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "state directory: {}",
        config.cdm.statedir.display()
    ));
    match &state.cycle {
        Some(run) => line(format!(
            "last phase: {} ({:?}) at {}",
            run.phase.name(),
            run.status,
            run.at.to_rfc3339()
        )),
        None => line("last phase: none".into()),
    }
    line(format!("next phase: {}", state.next_phase().name()));
    match &state.update {
        Some(run) => line(format!(
            "last update: {:?} at {}",
            run.status,
            run.at.to_rfc3339()
        )),
        None => line("last update: never".into()),
    }
    match &state.auto {
        Some(run) => line(format!(
            "last --auto run: {} at {}",
            if run.ok { "ok" } else { "failed" },
            run.at.to_rfc3339()
        )),
        None => line("last --auto run: never".into()),
    }
    for cert in &config.certs {
        let section = Section::Cert(cert.name.clone());
        line(String::new());
        line(format!(
            "certificate [cert:{}] for {}",
            cert.name,
            join(&cert.domains)
        ));
        let entry = cert_state(state, &cert.name);
        for (label, material) in [("current", &entry.current), ("prepared", &entry.prepared)] {
            match material {
                Some(m) => line(format!(
                    "  {label}: serial {}, sha256 {}, expires {} ({} days), names {}",
                    m.serial,
                    m.fingerprint,
                    m.not_after.format("%Y-%m-%d %H:%M UTC"),
                    (m.not_after - now).num_days(),
                    m.names.join(", ")
                )),
                None => line(format!("  {label}: none")),
            }
            if let Some(m) = material {
                if let Some(at) = m.tlsa_published_at {
                    line(format!(
                        "  {label}: TLSA records published at {}",
                        at.format(WHEN)
                    ));
                }
                if let Some(served) = &m.tlsa_served {
                    line(format!(
                        "  {label}: TLSA records served by all {} servers since {}",
                        served.servers,
                        served.at.format(WHEN)
                    ));
                }
            }
        }
        if let Some(pending) = &entry.pending {
            line(format!(
                "  interrupted issuance since {} (order {}); the next prepare continues it",
                pending.started.to_rfc3339(),
                pending.order_url.as_deref().unwrap_or("not yet created")
            ));
        }
        if let Some(ari) = &entry.ari {
            let window = ari.window.map_or("none".to_string(), |w| {
                format!("{} to {}", w.start.format(WHEN), w.end.format(WHEN))
            });
            line(format!(
                "  renewal information (ARI): window {window}{}{}",
                ari.renew_at
                    .map(|at| format!(", renew from {}", at.format(WHEN)))
                    .unwrap_or_default(),
                ari.error
                    .as_ref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(next) = &entry.next_key {
            line(format!(
                "  next key: {}, made {}{}",
                next.key_type,
                next.created.format(WHEN),
                cert_plan::rotation_due_at(cert, &entry)
                    .map(|at| format!(", becomes current from {}", at.format(WHEN)))
                    .unwrap_or_else(|| " (keystrategy is not staged: unused)".into())
            ));
        }
        let due = renewal_due_at(cert, &entry);
        line(next_line(plan, &section, || match due {
            Some(at) => format!("prepare at {} (renewal due)", at.format(WHEN)),
            None => "nothing".into(),
        }));
        section_log(state, &section, &mut line);
    }
    for dkim in &config.dkims {
        let section = Section::Dkim(dkim.name.clone());
        line(String::new());
        line(format!(
            "DKIM [dkim:{}] ({}, {}) for {}",
            dkim.name,
            dkim.handler.name(),
            dkim.key_type,
            join(&dkim.domains)
        ));
        let entry = dkim_state(state, &dkim.name);
        let age = |k: &state::DkimKeyState| (now - k.created).num_days();
        match &entry.current {
            Some(k) => line(format!(
                "  current: selector {}, {}, {} days old, installed {}",
                k.selector,
                k.key_type,
                age(k),
                k.installed
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "-".into())
            )),
            None => line("  current: none".into()),
        }
        match &entry.prepared {
            Some(k) => line(format!(
                "  prepared: selector {}, {}, {} days old, {}",
                k.selector,
                k.key_type,
                age(k),
                k.published
                    .map(|t| format!("published {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_else(|| "not yet published (run prepare)".into())
            )),
            None => line("  prepared: none".into()),
        }
        for old in &entry.retired {
            if let Some(until) = drained_at(dkim, old) {
                line(format!(
                    "  old: selector {}, record kept until {}",
                    old.selector,
                    until.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
        let rotation = entry.current.as_ref().map(|k| rotation_due_at(dkim, k));
        line(next_line(plan, &section, || match rotation {
            Some(at) => format!("prepare at {} (rotation due)", at.format(WHEN)),
            None => "nothing".into(),
        }));
        section_log(state, &section, &mut line);
    }
    for tlsa_line in tlsa_lines(config, state, observed).0 {
        line(tlsa_line);
    }
    for mail_line in crate::mail_status::lines(config, observed, plan) {
        line(mail_line);
    }
    for dh in &config.dhparams {
        let section = Section::DhParam(dh.name.clone());
        line(String::new());
        line(format!(
            "DH parameters [dhparam:{}] ({}, {} bits) at {}",
            dh.name,
            dh.handler.name(),
            dh.bits,
            dh.filename.display()
        ));
        let entry = state.dhparams.get(&dh.name).cloned().unwrap_or_default();
        for (label, material) in [("current", &entry.current), ("prepared", &entry.prepared)] {
            match material {
                Some(m) => line(format!(
                    "  {label}: {} bits, sha256 {}, made {}",
                    m.bits,
                    m.fingerprint,
                    m.created_at.format("%Y-%m-%d %H:%M UTC")
                )),
                None => line(format!("  {label}: none")),
            }
        }
        line(next_line(plan, &section, || "nothing".into()));
        section_log(state, &section, &mut line);
    }
    for service in &config.services {
        let section = Section::Service(service.name.clone());
        line(String::new());
        line(format!("service [service:{}]", service.name));
        let reloaded = state
            .services
            .get(&service.name)
            .and_then(|s| s.reloaded_at);
        line(format!(
            "  last reload: {}",
            reloaded.map_or("never".to_string(), |t| t.format(WHEN).to_string())
        ));
        line(next_line(plan, &section, || "nothing".into()));
        section_log(state, &section, &mut line);
    }
    out
}

fn section_log(state: &State, section: &Section, line: &mut impl FnMut(String)) {
    let Some(log) = state.sections.get(&section.key()) else {
        return;
    };
    if let Some(ok) = &log.last_success {
        line(format!(
            "  last success: {} at {}",
            ok.step,
            ok.at.format(WHEN)
        ));
    }
    if let Some(err) = &log.last_error
        && log.last_success.as_ref().is_none_or(|ok| ok.at < err.at)
    {
        line(format!(
            "  last error: {} at {}: {}",
            err.step,
            err.at.format(WHEN),
            err.error.as_deref().unwrap_or("")
        ));
    }
}

/// A certificate of a domain's `cert` list, as observed.
struct Loaded<'a> {
    section: &'a str,
    role: Role,
    info: &'a CertInfo,
}

/// Per domain with `tlsa` keys and per port: the TLSA records its zone holds
/// and which certificate each matches, and the wanted records not published.
/// The same per domain for `--status --json` (docs/status-json.md): `domain`,
/// `records` (`{"name", "data", "matches", "published"}`), `error`.
fn tlsa_lines(config: &Config, state: &State, observed: &Observed) -> (Vec<String>, Vec<Value>) {
    let mut lines = Vec::new();
    let mut documents = Vec::new();
    for domain in config.domains.iter().filter(|d| has_tlsa(d)) {
        lines.push(format!("\nTLSA records of {}", domain.name));
        let mut document = json!({"domain": domain.name.to_string(), "records": [], "error": null});
        let mut loaded: Vec<Loaded<'_>> = Vec::new();
        for section in domain.certs.iter().flat_map(|c| c.names.iter()) {
            let entry = state.certs.get(section);
            if let Some(next) = crate::plan::records::staged_next_key(config, state, section)
                && let Some(Ok(info)) = observed.certs.get(&next.dir)
            {
                loaded.push(Loaded {
                    section,
                    role: Role::Next,
                    info,
                });
            }
            for (role, material) in [
                (Role::Current, entry.and_then(|e| e.current.as_ref())),
                (Role::Prepared, entry.and_then(|e| e.prepared.as_ref())),
            ] {
                let Some(material) = material else { continue };
                match observed.certs.get(&material.dir) {
                    Some(Ok(info)) => loaded.push(Loaded {
                        section,
                        role,
                        info,
                    }),
                    Some(Err(e)) => {
                        lines.push(format!("  [cert:{section}] ({}): {e}", role.as_str()))
                    }
                    None => {}
                }
            }
        }
        let refs: Vec<TlsaCert<'_>> = loaded
            .iter()
            .map(|c| TlsaCert {
                section: c.section,
                role: c.role,
                info: c.info,
            })
            .collect();
        let Some(records) = zone_records(observed, &domain.name) else {
            let why = observed
                .zone_errors
                .get(&domain.name)
                .cloned()
                .unwrap_or_else(|| "it was not read".into());
            lines.push(format!("  cannot read the zone: {why}"));
            document["error"] = Value::String(why);
            documents.push(document);
            continue;
        };
        let scope = Scope {
            names: Names::ServiceBelow(domain.name.clone()),
            rtype: RecordType::Tlsa,
            filter: Filter::Any,
        };
        let mut published: Vec<&Record> = records.iter().filter(|r| scope.contains(r)).collect();
        published.sort_by(|a, b| (&a.name, &a.data).cmp(&(&b.name, &b.data)));
        let (wanted, _) = tlsa::contributions(domain, &refs, Mode::Publish);
        let mut missing: Vec<&Record> = Vec::new();
        for record in wanted
            .iter()
            .filter(|c| c.op != Op::Remove)
            .flat_map(|c| c.records.iter())
        {
            if !published
                .iter()
                .copied()
                .chain(missing.iter().copied())
                .any(|p| p.same_as(record))
            {
                missing.push(record);
            }
        }
        let mut owners: Vec<&Name> = published
            .iter()
            .map(|r| &r.name)
            .chain(missing.iter().map(|r| &r.name))
            .collect();
        owners.sort();
        owners.dedup();
        if owners.is_empty() {
            lines.push("  none published".into());
        }
        let dnssec = observed.tlsa_dnssec.get(&domain.name);
        if let Some(d) = dnssec {
            lines.push(match &d.signed {
                Ok(true) => format!("  zone {}: DNSSEC-signed", d.zone),
                Ok(false) => format!(
                    "  WARNING: zone {} is not DNSSEC-signed (no DNSKEY): DANE clients such as mail servers ignore these TLSA records",
                    d.zone
                ),
                Err(e) => format!("  zone {}: DNSSEC unknown ({e})", d.zone),
            });
        }
        let matched = |record: &Record| -> Vec<String> {
            tlsa::matching_certs(record, &refs)
                .iter()
                .map(|c| format!("[cert:{}] {}", c.section, c.role.as_str()))
                .collect()
        };
        let mut records_json = Vec::new();
        for (record, is_published) in published
            .iter()
            .map(|r| (*r, true))
            .chain(missing.iter().map(|r| (*r, false)))
        {
            records_json.push(json!({
                "name": record.name.to_string(),
                "data": record.data.to_string(),
                "matches": matched(record),
                "published": is_published,
            }));
        }
        document["records"] = Value::Array(records_json);
        documents.push(document);
        let by = |record: &Record| {
            let matches = tlsa::matching_certs(record, &refs);
            if matches.is_empty() {
                "none (old: matches no certificate in use)".to_string()
            } else {
                matches
                    .iter()
                    .map(|c| format!("[cert:{}] {}", c.section, c.role.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        for owner in owners {
            let port = owner
                .labels_below(&domain.name)
                .map(|l| l.join("."))
                .unwrap_or_else(|| owner.to_string());
            for record in published.iter().filter(|r| &r.name == owner) {
                lines.push(format!("  {port}: {} -> {}", record.data, by(record)));
            }
            for record in missing.iter().filter(|r| &r.name == owner) {
                lines.push(format!(
                    "  {port}: {} -> {}, NOT PUBLISHED (the next prepare publishes it)",
                    record.data,
                    by(record)
                ));
            }
            if let Some(signed) = dnssec.and_then(|d| owner_signed(d, owner)) {
                lines.push(format!("  {port}: {signed}"));
            }
        }
    }
    (lines, documents)
}

/// Whether the TLSA RRset at `owner` is served signed, in words.
fn owner_signed(dnssec: &TlsaDnssec, owner: &Name) -> Option<String> {
    let (_, count) = dnssec.owners.iter().find(|(o, _)| o == owner)?;
    Some(match (count, &dnssec.signed) {
        (_, Ok(false)) => "not signed (the zone is not signed)".into(),
        (Ok((n, of)), _) if n == of => format!("signed (RRSIG from {n}/{of} servers)"),
        (Ok((n, of)), _) => format!(
            "NOT signed everywhere: RRSIG from {n}/{of} servers (validating resolvers reject it where it is missing)"
        ),
        (Err(e), _) => format!("signed: unknown ({e})"),
    })
}

/// The `tlsa` part of the JSON document: per domain with TLSA keys, its
/// records and what each matches, its zone's DNSSEC and per owner whether the
/// RRset is served signed.
fn tlsa_json(config: &Config, state: &State, observed: &Observed) -> Value {
    let (_, documents) = tlsa_lines(config, state, observed);
    Value::Array(
        documents
            .into_iter()
            .map(|mut document| {
                let dnssec = Name::parse(document["domain"].as_str().unwrap_or_default())
                    .ok()
                    .and_then(|name| observed.tlsa_dnssec.get(&name));
                document["zone"] = dnssec.map_or(Value::Null, |d| json!(d.zone.to_string()));
                document["zone_signed"] =
                    dnssec.map_or(Value::Null, |d| json!(d.signed.as_ref().ok()));
                if let Some(Err(e)) = dnssec.map(|d| &d.signed) {
                    document["error"] = json!(e);
                }
                document["owners"] = Value::Array(
                    dnssec
                        .map(|d| {
                            d.owners
                                .iter()
                                .map(|(owner, count)| {
                                    json!({
                                        "name": owner.to_string(),
                                        "signed": count.as_ref().ok().map(|(n, of)| n == of && *of > 0 && d.signed == Ok(true)),
                                        "servers_with_rrsig": count.as_ref().ok().map(|(n, _)| n),
                                        "servers": count.as_ref().ok().map(|(_, of)| of),
                                        "error": count.as_ref().err(),
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                );
                document
            })
            .collect(),
    )
}

/// The observed records of the zone of the domain section `name`.
fn zone_records<'a>(observed: &'a Observed, name: &Name) -> Option<&'a Vec<Record>> {
    observed
        .zones
        .iter()
        .find(|v| v.domains.contains(name))
        .and_then(|v| v.records.as_ref().ok())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn step_json(step: &Step) -> Value {
    let (when, at) = match &step.when {
        When::Now => ("now", Value::Null),
        When::At(at) => ("at", Value::String(at.to_rfc3339())),
        When::Waiting(_) => ("waiting", Value::Null),
    };
    json!({
        "step": verb(&step.action),
        "when": when,
        "at": at,
        "reason": match &step.when {
            When::Waiting(why) if why != &step.reason => format!("{}; {why}", step.reason),
            _ => step.reason.clone(),
        },
    })
}

fn logged(step: Option<&LoggedStep>) -> Value {
    step.map_or(
        Value::Null,
        |s| json!({ "at": s.at.to_rfc3339(), "step": s.step, "error": s.error }),
    )
}

fn cert_json(m: &CertMaterial, now: DateTime<Utc>) -> Value {
    json!({
        "serial": m.serial,
        "sha256": m.fingerprint,
        "names": m.names,
        "not_after": m.not_after.to_rfc3339(),
        "days_left": (m.not_after - now).num_days(),
        "issued_at": m.issued_at.to_rfc3339(),
        "deployed_at": time(m.deployed_at),
        "tlsa_published_at": time(m.tlsa_published_at),
        "tlsa_served_at": time(m.tlsa_served.map(|s| s.at)),
    })
}

/// The `--status --json` document (docs/status-json.md).
fn document(
    config: &Config,
    state: &State,
    observed: &Observed,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Value {
    let mut sections = Vec::new();
    let base = |section: &Section, kind: &str, name: &str, stage: &str| {
        let log = state.sections.get(&section.key());
        json!({
            "section": section.key(),
            "kind": kind,
            "name": name,
            "state": stage,
            "next": next_steps(plan, section).first().map_or(Value::Null, |s| step_json(s)),
            "last_success": logged(log.and_then(|l| l.last_success.as_ref())),
            "last_error": logged(log.and_then(|l| l.last_error.as_ref())),
        })
    };
    for cert in &config.certs {
        let section = Section::Cert(cert.name.clone());
        let entry = cert_state(state, &cert.name);
        let stage = match (&entry.current, &entry.prepared) {
            (_, Some(p)) if p.tlsa_served.is_some() => "prepared, records served",
            (_, Some(p)) if p.tlsa_published_at.is_some() => "prepared, records published",
            (_, Some(_)) => "prepared",
            (Some(_), None) => "deployed",
            (None, None) => "none",
        };
        let mut value = base(&section, "cert", &cert.name, stage);
        value["current"] = entry
            .current
            .as_ref()
            .map_or(Value::Null, |m| cert_json(m, now));
        value["prepared"] = entry
            .prepared
            .as_ref()
            .map_or(Value::Null, |m| cert_json(m, now));
        value["expires"] = time(entry.current.as_ref().map(|m| m.not_after));
        value["days_left"] = entry
            .current
            .as_ref()
            .map_or(Value::Null, |m| json!((m.not_after - now).num_days()));
        value["renewal_due_at"] = time(renewal_due_at(cert, &entry));
        value["next_key"] = entry.next_key.as_ref().map_or(Value::Null, |n| {
            json!({
                "key_type": n.key_type,
                "created": n.created.to_rfc3339(),
                "rotation_due_at": time(cert_plan::rotation_due_at(cert, &entry)),
            })
        });
        value["ari"] = entry.ari.as_ref().map_or(Value::Null, |a| {
            json!({
                "window_start": time(a.window.map(|w| w.start)),
                "window_end": time(a.window.map(|w| w.end)),
                "renew_at": time(a.renew_at),
                "next_fetch": a.next_fetch.to_rfc3339(),
                "explanation_url": a.explanation_url,
                "error": a.error,
            })
        });
        sections.push(value);
    }
    for dkim in &config.dkims {
        let section = Section::Dkim(dkim.name.clone());
        let entry = dkim_state(state, &dkim.name);
        let stage = match (&entry.current, &entry.prepared) {
            (_, Some(p)) if p.served.is_some() => "prepared, records served",
            (_, Some(p)) if p.published.is_some() => "prepared, records published",
            (_, Some(_)) => "prepared",
            (Some(_), None) => "deployed",
            (None, None) => "none",
        };
        let key = |k: &state::DkimKeyState| {
            json!({
                "selector": k.selector,
                "key_type": k.key_type,
                "created": k.created.to_rfc3339(),
                "published": time(k.published),
                "installed": time(k.installed),
            })
        };
        let mut value = base(&section, "dkim", &dkim.name, stage);
        value["current"] = entry.current.as_ref().map_or(Value::Null, key);
        value["prepared"] = entry.prepared.as_ref().map_or(Value::Null, key);
        value["rotation_due_at"] = time(entry.current.as_ref().map(|k| rotation_due_at(dkim, k)));
        value["retired"] = Value::Array(
            entry
                .retired
                .iter()
                .map(|k| json!({"selector": k.selector, "drained_at": time(drained_at(dkim, k))}))
                .collect(),
        );
        sections.push(value);
    }
    for dh in &config.dhparams {
        let section = Section::DhParam(dh.name.clone());
        let entry = state.dhparams.get(&dh.name).cloned().unwrap_or_default();
        let stage = match (&entry.current, &entry.prepared) {
            (_, Some(_)) => "prepared",
            (Some(_), None) => "deployed",
            (None, None) => "none",
        };
        let params = |m: &state::DhMaterial| json!({"bits": m.bits, "sha256": m.fingerprint, "created": m.created_at.to_rfc3339(), "deployed_at": time(m.deployed_at)});
        let mut value = base(&section, "dhparam", &dh.name, stage);
        value["rotation_due_at"] = time(
            entry
                .current
                .as_ref()
                .filter(|_| dh.handler == crate::config::dhparam::DhHandler::Generate)
                .map(|m| m.created_at + chrono::Duration::days(i64::from(dh.rotate_days))),
        );
        value["current"] = entry.current.as_ref().map_or(Value::Null, params);
        value["prepared"] = entry.prepared.as_ref().map_or(Value::Null, params);
        sections.push(value);
    }
    for service in &config.services {
        let section = Section::Service(service.name.clone());
        let mut value = base(&section, "service", &service.name, "configured");
        value["reloaded_at"] = time(
            state
                .services
                .get(&service.name)
                .and_then(|s| s.reloaded_at),
        );
        sections.push(value);
    }
    for (name, stage, mail) in crate::mail_status::json(config, observed) {
        let mut value = base(
            &Section::Domain(name.clone()),
            "domain",
            name.as_str(),
            stage,
        );
        value["mail"] = mail;
        sections.push(value);
    }
    json!({
        "version": JSON_VERSION,
        "generated": now.to_rfc3339(),
        "statedir": config.cdm.statedir.display().to_string(),
        "last_phase": state.cycle.as_ref().map_or(Value::Null, |r| json!({
            "phase": r.phase.name(), "status": format!("{:?}", r.status).to_lowercase(), "at": r.at.to_rfc3339()
        })),
        "next_phase": state.next_phase().name(),
        "last_update": state.update.as_ref().map_or(Value::Null, |r| json!({
            "status": format!("{:?}", r.status).to_lowercase(), "at": r.at.to_rfc3339()
        })),
        "last_auto": state.auto.as_ref().map_or(Value::Null, |r| json!({"at": r.at.to_rfc3339(), "ok": r.ok})),
        "sections": sections,
        "tlsa": tlsa_json(config, state, observed),
    })
}
