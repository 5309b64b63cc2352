//! A certificate section's cycle (docs/timing.md): when to order a new
//! certificate (no certificate, names or key type changed, the CA's renewal
//! window reached, or fewer than `renewdays` left), when a prepared one may be
//! deployed (its TLSA records served long enough), and when superseded files go.

use chrono::{DateTime, Duration, Utc};

use super::observed::{AriAnswer, Observed};
use super::timing::{WHEN, cleanup_safe_at, rollover_readiness};
use super::tlsa::{Role, TlsaCert, has_tlsa, wanted_for};
use super::{Action, Deletion, Input, Issue, Note, Plan, Section, Step, When};
use crate::config::cert::{CertSection, KeyStrategy};
use crate::config::model::Config;
use crate::dns::record::Record;
use crate::material::cert::KeyType;
use crate::state::{AriState, AriWindow, CertMaterial, CertState, State};

/// The name of a key type as the state records it.
pub(crate) fn key_type_name(kind: KeyType) -> String {
    match kind {
        KeyType::Rsa(bits) => format!("rsa-{bits}"),
        KeyType::EcdsaP256 => "ecdsa-p256".into(),
        KeyType::EcdsaP384 => "ecdsa-p384".into(),
    }
}

/// The names of a certificate, in configuration order (the first is the CN).
pub(crate) fn names_of(cert: &CertSection) -> Vec<String> {
    cert.domains.iter().map(|d| d.to_string()).collect()
}

/// Whether two lists hold the same names (case and order aside).
pub(crate) fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// Why prepare orders a certificate, or `None` when the current (or prepared)
/// one is kept. With the CA's renewal information (ARI) the CA's window
/// decides; without it, `renewdays`. `force`: `--force`, or `extraflags = -x`
/// in an explicit prepare.
pub(crate) fn renewal_reason(
    cert: &CertSection,
    state: &CertState,
    now: DateTime<Utc>,
    force: bool,
) -> Option<String> {
    let names = names_of(cert);
    let newest = state.prepared.as_ref().or(state.current.as_ref());
    let Some(material) = newest else {
        return Some("there is no certificate yet".into());
    };
    if !same_names(&material.names, &names) {
        return Some(format!(
            "its names changed (from {})",
            material.names.join(", ")
        ));
    }
    let wanted = key_type_name(cert.key_type);
    if let Some(kind) = material.key_type.as_ref().filter(|k| **k != wanted) {
        return Some(format!("its key type changed from {kind} to {wanted}"));
    }
    if force {
        return Some("renewal is forced".into());
    }
    if state.prepared.is_some() {
        return None;
    }
    if let Some(at) = rotation_due_at(cert, state).filter(|at| *at <= now) {
        return Some(format!(
            "key rotation is due (keyrotatedays = {}, since {}): the next key becomes current",
            cert.key_rotate_days,
            at.format(WHEN)
        ));
    }
    if let Some(ari) = usable_ari(cert, state) {
        let renew_at = ari.renew_at?;
        return (now >= renew_at).then(|| {
            let window = ari.window.map_or(String::new(), |w| {
                format!(
                    ", window {} to {}",
                    w.start.format(WHEN),
                    w.end.format(WHEN)
                )
            });
            let see = ari
                .explanation_url
                .as_ref()
                .map_or(String::new(), |u| format!("; see {u}"));
            format!(
                "the CA's renewal window has opened (ARI: renew from {}{window}{see})",
                renew_at.format(WHEN)
            )
        });
    }
    let left = material.not_after - now;
    (left < Duration::days(i64::from(cert.renew_days))).then(|| {
        format!(
            "it expires in {} days (renewdays = {})",
            left.num_days(),
            cert.renew_days
        )
    })
}

/// With `keystrategy = staged`: when the next key is to become current
/// (`keyrotatedays` after it was made, which is when the current key became
/// current).
pub(crate) fn rotation_due_at(cert: &CertSection, state: &CertState) -> Option<DateTime<Utc>> {
    if cert.key_strategy != KeyStrategy::Staged {
        return None;
    }
    let next = state.next_key.as_ref()?;
    Some(next.created + Duration::days(i64::from(cert.key_rotate_days)))
}

/// With `keystrategy = staged`: the directory whose key the next certificate
/// keeps: the next key when rotation is due, else the newest certificate's
/// (when its key type is still the configured one).
pub(crate) fn key_to_keep(
    cert: &CertSection,
    state: &CertState,
    now: DateTime<Utc>,
) -> Option<std::path::PathBuf> {
    if cert.key_strategy != KeyStrategy::Staged {
        return None;
    }
    let wanted = key_type_name(cert.key_type);
    if let Some(next) = state.next_key.as_ref()
        && rotation_due_at(cert, state).is_some_and(|at| at <= now)
        && next.key_type == wanted
    {
        return Some(next.dir.clone());
    }
    state
        .prepared
        .as_ref()
        .or(state.current.as_ref())
        .filter(|m| m.key_type.as_deref() == Some(wanted.as_str()))
        .map(|m| m.dir.clone())
}

/// The CA's renewal information for the current certificate, when it gave a
/// window (an answer that failed falls back to `renewdays`).
pub(crate) fn usable_ari<'a>(cert: &CertSection, state: &'a CertState) -> Option<&'a AriState> {
    let current = state.current.as_ref()?;
    state
        .ari
        .as_ref()
        .filter(|a| cert.ari && a.serial == current.serial && a.renew_at.is_some())
}

/// When prepare orders the next certificate, if nothing else comes first.
pub(crate) fn renewal_due_at(cert: &CertSection, state: &CertState) -> Option<DateTime<Utc>> {
    if let Some(ari) = usable_ari(cert, state) {
        return ari.renew_at;
    }
    let material = state.current.as_ref()?;
    Some(material.not_after - Duration::days(i64::from(cert.renew_days)))
}

/// The state's renewal information after the CA's `answer`: a window gets a
/// renewal time drawn at random in it, which stays as long as later windows
/// contain it (so it does not move on every run); an error keeps the last
/// window.
pub(crate) fn ari_after(previous: Option<&AriState>, answer: &AriAnswer) -> AriState {
    let previous = previous.filter(|p| p.serial == answer.serial);
    match &answer.result {
        Ok(window) => {
            let kept = previous
                .and_then(|p| p.renew_at)
                .filter(|at| *at >= window.start && *at <= window.end);
            let span = (window.end - window.start).num_seconds().max(0);
            // The fraction of the window, to the second.
            let offset = (span as f64 * answer.random.clamp(0.0, 1.0)).floor() as i64;
            let renew_at = kept.unwrap_or(window.start + Duration::seconds(offset.min(span)));
            AriState {
                serial: answer.serial.clone(),
                cert_id: answer.cert_id.clone(),
                window: Some(AriWindow {
                    start: window.start,
                    end: window.end,
                }),
                renew_at: Some(renew_at),
                next_fetch: answer.next_fetch,
                explanation_url: window.explanation_url.clone(),
                error: None,
            }
        }
        Err(error) => AriState {
            serial: answer.serial.clone(),
            cert_id: answer.cert_id.clone(),
            window: previous.and_then(|p| p.window),
            renew_at: previous.and_then(|p| p.renew_at),
            next_fetch: answer.next_fetch,
            explanation_url: previous.and_then(|p| p.explanation_url.clone()),
            error: Some(error.clone()),
        },
    }
}

/// Whether the CA's renewal information for `cert`'s current certificate is
/// to be asked now: ARI on, a current certificate, and no answer for it that
/// is still fresh.
pub(crate) fn ari_wanted(cert: &CertSection, state: &CertState, now: DateTime<Utc>) -> bool {
    let Some(current) = &state.current else {
        return false;
    };
    cert.ari
        && state.prepared.is_none()
        && state
            .ari
            .as_ref()
            .is_none_or(|a| a.serial != current.serial || a.next_fetch <= now)
}

/// The TLSA records `material` needs served before it is deployed, per domain
/// with `tlsa` keys that lists the certificate. Empty when none does.
///
/// # Errors
/// When the certificate cannot be read or a record not computed.
pub(crate) fn awaited_tlsa(
    config: &Config,
    cert: &str,
    material: &CertMaterial,
    observed: &Observed,
) -> Result<Vec<(crate::dns::record::Name, Vec<Record>)>, String> {
    let domains: Vec<_> = config
        .domains
        .iter()
        .filter(|d| {
            has_tlsa(d)
                && d.certs
                    .as_ref()
                    .is_some_and(|c| c.names.iter().any(|n| n == cert))
        })
        .collect();
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    let info = match observed.certs.get(&material.dir) {
        Some(Ok(info)) => info,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err(format!("{} was not read", material.dir.display())),
    };
    let new = TlsaCert {
        section: cert,
        role: Role::Prepared,
        info,
    };
    let mut out = Vec::new();
    for domain in domains {
        let wanted = wanted_for(domain, new)?;
        if !wanted.is_empty() {
            out.push((domain.name.clone(), wanted));
        }
    }
    Ok(out)
}

/// Plans `cert`'s steps of this round.
pub(crate) fn plan(input: &Input<'_>, cert: &CertSection, plan: &mut Plan) {
    let section = Section::Cert(cert.name.clone());
    let mut state = cert_state(input.state, &cert.name);
    let now = input.now;

    if let Some(answer) = input.observed.ari.get(&cert.name) {
        let after = ari_after(state.ari.as_ref(), answer);
        if state.ari.as_ref() != Some(&after) {
            plan.steps.push(Step::now(
                section.clone(),
                Action::Note(Note::Ari(after.clone())),
                "the CA's renewal information",
            ));
        }
        // The answer just received decides, not the one it replaces.
        state.ari = Some(after);
    }

    if input.request.prepares() {
        // `extraflags = -x` renews in every explicit prepare (as the original
        // did); `--auto` renews when due.
        let force = input.force
            || (cert.force && input.first_round && input.request == super::Request::Prepare);
        match renewal_reason(cert, &state, now, force) {
            Some(reason) => {
                let names = names_of(cert);
                let resume = state
                    .pending
                    .clone()
                    .filter(|p| same_names(&p.names, &names));
                let replaces = usable_ari(cert, &state)
                    .or(state.ari.as_ref().filter(|a| a.error.is_none()))
                    .filter(|a| {
                        cert.ari && state.current.as_ref().is_some_and(|c| c.serial == a.serial)
                    })
                    .map(|a| a.cert_id.clone());
                plan.steps.push(Step::now(
                    section.clone(),
                    Action::Issue(Issue {
                        names,
                        resume,
                        replaces,
                        key: key_to_keep(cert, &state, now),
                    }),
                    reason,
                ));
            }
            None => {
                if let Some(m) = state.prepared.as_ref().or(state.current.as_ref()) {
                    let next = renewal_due_at(cert, &state)
                        .filter(|_| state.prepared.is_none())
                        .map(|at| format!("; the next is due {}", at.format(WHEN)))
                        .unwrap_or_default();
                    plan.info.push((
                        section.clone(),
                        format!(
                            "kept: valid until {} for {}{next}",
                            m.not_after.format("%Y-%m-%d"),
                            m.names.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    // `staged`: a next key as soon as there is a certificate, so that its
    // records are out long before it is needed.
    if cert.key_strategy == KeyStrategy::Staged
        && input.request != super::Request::Update
        && state.next_key.is_none()
        && (state.current.is_some() || state.prepared.is_some())
    {
        plan.steps.push(Step::now(
            section.clone(),
            Action::MakeNextKey,
            "keystrategy = staged: a next key, published ahead of its rotation",
        ));
    }

    if let Some(prepared) = &state.prepared {
        let awaited = awaited_tlsa(input.config, &cert.name, prepared, input.observed);
        let answers = input.observed.served.get(&section);
        // Every server serves the records: note when that was first seen.
        if prepared.tlsa_published_at.is_some()
            && prepared.tlsa_served.is_none()
            && let Some(served) = answers.and_then(|a| super::records::served_now(a, now))
        {
            plan.steps.push(Step::now(
                section.clone(),
                Action::Note(Note::Served(served)),
                "its TLSA records are served by every authoritative server",
            ));
        }
        if input.request.rolls_over() {
            plan.steps.push(rollover_step(
                input,
                cert,
                prepared,
                awaited.map(|a| !a.is_empty()),
                answers,
            ));
        }
    } else if input.request == super::Request::Rollover && input.first_round {
        plan.info.push((
            section.clone(),
            "nothing prepared; the current certificate stays".into(),
        ));
    }

    if input.request.cleans_up() {
        cleanup(input, cert, &state, plan);
    }
}

fn rollover_step(
    input: &Input<'_>,
    cert: &CertSection,
    prepared: &CertMaterial,
    has_tlsa: Result<bool, String>,
    answers: Option<&super::observed::ServedAnswers>,
) -> Step {
    let section = Section::Cert(cert.name.clone());
    let (when, why) = match has_tlsa {
        Ok(false) => (When::Now, format!("serial {} is prepared", prepared.serial)),
        Ok(true) if same_records_as_current(input, cert, prepared) => (
            When::Now,
            format!(
                "serial {} keeps the key: its TLSA records are the current certificate's, served since it was deployed",
                prepared.serial
            ),
        ),
        Ok(true) => {
            let r = rollover_readiness(
                "TLSA",
                prepared.tlsa_published_at,
                prepared.tlsa_served.as_ref(),
                (
                    prepared.tlsa_joined_ttl.unwrap_or(0),
                    configured_ttl(input.config, &cert.name),
                ),
                answers,
                input.now,
            );
            (r.when, r.why)
        }
        Err(e) => (When::Waiting(e.clone()), e),
    };
    let (when, reason) = match when {
        When::Now => (When::Now, format!("serial {}: {why}", prepared.serial)),
        _ if input.force => (
            When::Now,
            format!(
                "serial {} although it is not safe for DANE yet (--force): {why}",
                prepared.serial
            ),
        ),
        when => (when, why),
    };
    Step {
        section,
        action: Action::DeployCert(prepared.clone()),
        reason,
        when,
    }
}

/// True when every TLSA record the prepared certificate needs is one the
/// deployed certificate has too (a renewal that kept the key, with `3 1 1`
/// records): resolvers know them already, there is nothing to wait for.
fn same_records_as_current(input: &Input<'_>, cert: &CertSection, prepared: &CertMaterial) -> bool {
    let state = cert_state(input.state, &cert.name);
    let Some(current) = state.current.as_ref().filter(|c| c.deployed_at.is_some()) else {
        return false;
    };
    let (Ok(new), Ok(old)) = (
        awaited_tlsa(input.config, &cert.name, prepared, input.observed),
        awaited_tlsa(input.config, &cert.name, current, input.observed),
    ) else {
        return false;
    };
    new.iter().all(|(domain, records)| {
        old.iter()
            .find(|(d, _)| d == domain)
            .is_some_and(|(_, had)| records.iter().all(|r| had.iter().any(|h| h.same_as(r))))
    })
}

fn cleanup(input: &Input<'_>, cert: &CertSection, state: &CertState, plan: &mut Plan) {
    let section = Section::Cert(cert.name.clone());
    // `--auto` keeps the old files while a client may still be connecting with
    // them: twice the TTL after the rollover, as for the old TLSA records.
    let not_before = (input.request == super::Request::Auto)
        .then(|| state.current.as_ref().and_then(|c| c.deployed_at))
        .flatten()
        .map(|deployed| cleanup_safe_at(deployed, ttl_of(input.config, cert)))
        .filter(|at| *at > input.now);
    let when = not_before.map_or(When::Now, When::At);
    let statedir_certs = input.config.cdm.statedir.join("certs");
    for old in &state.superseded {
        if !old.dir.starts_with(&statedir_certs) {
            continue;
        }
        plan.steps.push(Step {
            section: section.clone(),
            action: Action::Delete(Deletion::CertFiles(old.clone())),
            reason: format!("superseded certificate serial {}", old.serial),
            when: when.clone(),
        });
    }
    if let (Some(dest), Some(current)) = (&cert.destination, &state.current) {
        for name in &current.names {
            let dir = dest.join(name);
            if input.observed.old_versions.contains(&dir) {
                plan.steps.push(Step {
                    section: section.clone(),
                    action: Action::Delete(Deletion::CertVersions { dir }),
                    reason: "old versions at the destination".into(),
                    when: when.clone(),
                });
            }
        }
    }
}

/// The longest configured TTL of the domains whose TLSA records name `cert`.
fn configured_ttl(config: &Config, cert: &str) -> u32 {
    config
        .domains
        .iter()
        .filter(|d| {
            has_tlsa(d)
                && d.certs
                    .as_ref()
                    .is_some_and(|c| c.names.iter().any(|n| n == cert))
        })
        .map(|d| d.ttl)
        .max()
        .unwrap_or(0)
}

/// The longest TTL of the domains of `cert`.
fn ttl_of(config: &Config, cert: &CertSection) -> u32 {
    config
        .domains
        .iter()
        .filter(|d| cert.domains.contains(&d.name))
        .map(|d| d.ttl)
        .max()
        .unwrap_or(crate::config::model::DEFAULT_TTL)
}

/// The state of the certificate section `name`.
pub(crate) fn cert_state(state: &State, name: &str) -> CertState {
    state.certs.get(name).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(days)
    }

    fn cert(renew_days: u32, force: bool, ari: bool) -> CertSection {
        CertSection {
            caa_identity: None,
            name: "web".into(),
            span: None,
            directory: "https://ca.test/dir".into(),
            email: None,
            eab: None,
            cacert: None,
            key_type: KeyType::EcdsaP256,
            destination: None,
            force,
            renew_days,
            ari,
            rate_limit_wait: std::time::Duration::from_secs(120),
            propagation_timeout: None,
            key_strategy: KeyStrategy::New,
            key_rotate_days: 365,
            domains: vec![
                crate::dns::record::Name::parse("a.test").unwrap(),
                crate::dns::record::Name::parse("b.test").unwrap(),
            ],
        }
    }

    fn material(names: &[&str], not_after: DateTime<Utc>) -> CertMaterial {
        CertMaterial {
            dir: PathBuf::from("/x"),
            names: names.iter().map(|s| s.to_string()).collect(),
            serial: "01".into(),
            fingerprint: "00".into(),
            not_after,
            issued_at: not_after - Duration::days(90),
            deployed_at: None,
            tlsa_published_at: None,
            tlsa_joined_ttl: None,
            tlsa_served: None,
            key_type: Some("ecdsa-p256".into()),
        }
    }

    #[test]
    fn staged_keeps_the_key_and_rotates_after_keyrotatedays() {
        let mut c = cert(30, false, false);
        let mut state = current(t(90));
        assert_eq!(key_to_keep(&c, &state, t(0)), None, "new: a new key");
        c.key_strategy = KeyStrategy::Staged;
        assert_eq!(key_to_keep(&c, &state, t(0)), Some(PathBuf::from("/x")));
        state.next_key = Some(crate::state::NextKey {
            dir: PathBuf::from("/next"),
            spki: "00".into(),
            key_type: "ecdsa-p256".into(),
            created: t(0),
        });
        assert_eq!(rotation_due_at(&c, &state), Some(t(365)));
        assert_eq!(renewal_reason(&c, &state, t(10), false), None);
        assert_eq!(key_to_keep(&c, &state, t(364)), Some(PathBuf::from("/x")));
        // A year on the next key takes over, even though the certificate is
        // not due.
        let mut fresh = current(t(400));
        fresh.next_key = state.next_key.clone();
        let why = renewal_reason(&c, &fresh, t(365), false).unwrap();
        assert!(why.contains("key rotation"), "{why}");
        assert_eq!(
            key_to_keep(&c, &fresh, t(365)),
            Some(PathBuf::from("/next"))
        );
        // Another key type: a new key.
        c.key_type = KeyType::EcdsaP384;
        assert_eq!(key_to_keep(&c, &fresh, t(10)), None);
    }

    fn current(not_after: DateTime<Utc>) -> CertState {
        CertState {
            current: Some(material(&["b.test", "a.test"], not_after)),
            ..CertState::default()
        }
    }

    fn ari(renew_at: Option<DateTime<Utc>>, error: Option<&str>) -> AriState {
        AriState {
            serial: "01".into(),
            cert_id: "aki.01".into(),
            window: renew_at.map(|at| AriWindow { start: at, end: at }),
            renew_at,
            next_fetch: t(1),
            explanation_url: None,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn when_prepare_renews() {
        let now = t(0);
        let fresh = current(t(60));
        let cases: [(&str, CertSection, CertState, bool, Option<&str>); 10] = [
            ("kept", cert(30, false, true), fresh.clone(), false, None),
            (
                "-x alone (the planner turns it into force)",
                cert(30, true, true),
                fresh.clone(),
                false,
                None,
            ),
            (
                "--force",
                cert(30, false, true),
                fresh.clone(),
                true,
                Some("forced"),
            ),
            (
                "renewdays",
                cert(61, false, true),
                fresh.clone(),
                false,
                Some("expires in 60 days"),
            ),
            (
                "none yet",
                cert(30, false, true),
                CertState::default(),
                false,
                Some("no certificate"),
            ),
            (
                "names",
                CertSection {
                    domains: vec![crate::dns::record::Name::parse("a.test").unwrap()],
                    ..cert(30, false, true)
                },
                fresh.clone(),
                false,
                Some("names changed"),
            ),
            (
                "key type",
                CertSection {
                    key_type: KeyType::Rsa(3072),
                    ..cert(30, false, true)
                },
                fresh.clone(),
                false,
                Some("key type changed from ecdsa-p256 to rsa-3072"),
            ),
            (
                "prepared kept",
                cert(30, false, true),
                CertState {
                    prepared: Some(material(&["a.test", "b.test"], t(90))),
                    ..CertState::default()
                },
                false,
                None,
            ),
            (
                "ARI window reached",
                cert(30, false, true),
                CertState {
                    ari: Some(ari(Some(t(-1)), None)),
                    ..fresh.clone()
                },
                false,
                Some("renewal window has opened"),
            ),
            (
                "ARI window ahead beats renewdays",
                cert(61, false, true),
                CertState {
                    ari: Some(ari(Some(t(5)), None)),
                    ..fresh.clone()
                },
                false,
                None,
            ),
        ];
        for (what, cert, state, force, expected) in cases {
            let got = renewal_reason(&cert, &state, now, force);
            match expected {
                None => assert_eq!(got, None, "{what}"),
                Some(part) => assert!(
                    got.as_deref().is_some_and(|r| r.contains(part)),
                    "{what}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn without_a_usable_ari_answer_renewdays_decides() {
        let now = t(0);
        let failed = CertState {
            ari: Some(ari(None, Some("404"))),
            ..current(t(20))
        };
        assert!(renewal_reason(&cert(30, false, true), &failed, now, false).is_some());
        // ari = no ignores an answer.
        let answered = CertState {
            ari: Some(ari(Some(t(5)), None)),
            ..current(t(20))
        };
        assert!(renewal_reason(&cert(30, false, false), &answered, now, false).is_some());
        // An answer about another certificate does not count.
        let mut other = answered.clone();
        other.ari.as_mut().unwrap().serial = "02".into();
        assert!(renewal_reason(&cert(30, false, true), &other, now, false).is_some());
    }

    fn answer(window: Result<(i64, i64), &str>, random: f64) -> AriAnswer {
        AriAnswer {
            serial: "01".into(),
            cert_id: "aki.01".into(),
            result: window
                .map(|(s, e)| super::super::observed::AriWindowAnswer {
                    start: t(s),
                    end: t(e),
                    explanation_url: None,
                })
                .map_err(str::to_string),
            next_fetch: t(1),
            random,
        }
    }

    #[test]
    fn the_renewal_time_is_drawn_once_and_stays_in_the_window() {
        let first = ari_after(None, &answer(Ok((10, 20)), 0.5));
        assert_eq!(first.renew_at, Some(t(15)));
        // The same window later: the time does not move.
        let again = ari_after(Some(&first), &answer(Ok((10, 20)), 0.9));
        assert_eq!(again.renew_at, Some(t(15)));
        // A window that no longer contains it: a new draw.
        let moved = ari_after(Some(&again), &answer(Ok((2, 4)), 0.0));
        assert_eq!(moved.renew_at, Some(t(2)));
        // An error keeps the last window and says why.
        let failed = ari_after(Some(&moved), &answer(Err("HTTP 500"), 0.3));
        assert_eq!(failed.renew_at, Some(t(2)));
        assert_eq!(failed.error.as_deref(), Some("HTTP 500"));
        // A first answer that fails leaves nothing to renew by.
        assert_eq!(ari_after(None, &answer(Err("404"), 0.3)).renew_at, None);
    }

    /// The plan of `[cert:web]` (a.test, b.test) after the CA answered `fresh`,
    /// with `stored` the answer the state holds from before.
    fn planned(stored: AriState, fresh: &AriAnswer) -> Plan {
        use crate::config::ini::{Source, read};
        let text = "[domain]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\n\n\
            [cert:web]\nca = https://ca.test/dir\nkeytype = ecdsa-p256\n\n\
            [domain:a.test]\ncert = web\n[domain:b.test]\ncert = web\n";
        let source = Source {
            name: "t.conf".into(),
            text: text.into(),
        };
        let config = crate::config::model::build(&read(&[source]).unwrap()).unwrap();
        let mut state = State::default();
        let entry = CertState {
            ari: Some(stored),
            ..current(t(60))
        };
        state.certs.insert("web".into(), entry);
        let mut observed = Observed::default();
        observed.ari.insert("web".into(), fresh.clone());
        let failed = std::collections::BTreeSet::new();
        let input = Input {
            config: &config,
            state: &state,
            observed: &observed,
            request: super::super::Request::Auto,
            force: false,
            now: t(0),
            first_round: true,
            failed: &failed,
        };
        let mut plan = Plan::default();
        super::plan(&input, &config.certs[0], &mut plan);
        plan
    }

    fn issue(plan: &Plan) -> Option<&Issue> {
        plan.steps.iter().find_map(|s| match &s.action {
            Action::Issue(issue) => Some(issue),
            _ => None,
        })
    }

    #[test]
    fn the_answer_just_received_decides() {
        // Stored: weeks ahead; the CA now says the window has opened.
        let plan = planned(ari(Some(t(30)), None), &answer(Ok((-2, -1)), 0.5));
        let renewal = issue(&plan).expect("renewed in the round the answer came");
        assert_eq!(renewal.replaces.as_deref(), Some("aki.01"));
        // Stored: opened; the CA now moved the window weeks ahead.
        let plan = planned(ari(Some(t(-1)), None), &answer(Ok((30, 32)), 0.5));
        assert!(issue(&plan).is_none(), "{:?}", plan.steps);
    }

    #[test]
    fn ari_is_asked_when_its_answer_has_expired() {
        let c = cert(30, false, true);
        let mut state = current(t(60));
        assert!(ari_wanted(&c, &state, t(0)), "no answer yet");
        state.ari = Some(ari(Some(t(30)), None));
        assert!(!ari_wanted(&c, &state, t(0)), "fresh answer");
        assert!(ari_wanted(&c, &state, t(1)), "Retry-After passed");
        assert!(
            !ari_wanted(&cert(30, false, false), &state, t(1)),
            "ari = no"
        );
        state.prepared = Some(material(&["a.test"], t(90)));
        assert!(!ari_wanted(&c, &state, t(1)), "a renewal is prepared");
    }
}
