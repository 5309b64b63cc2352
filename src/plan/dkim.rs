//! Pure decisions of DKIM rotation (SPEC §4, §7): when a new key is due, when an
//! old selector's record may go, and the record contributions that publish a
//! key next to the others (`Op::Add`) or remove an old selector (`Op::Set` on
//! exactly its name, with nothing wanted there).

use chrono::{DateTime, Duration, Utc};

use super::scope::{Filter, Scope};
use super::update::Contribution;
use crate::config::dkim::DkimSection;
use crate::config::records::Op;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::material::dkim::{record_name, selector};
use crate::state::{DkimKeyState, DkimState};

/// The word the log shows for DKIM records.
pub const LOG_TYPE: &str = "DKIM";

/// Why prepare makes a new key, or `None` when the current or prepared one is kept.
pub fn due_reason(
    dkim: &DkimSection,
    state: &DkimState,
    now: DateTime<Utc>,
    force: bool,
) -> Option<String> {
    if force {
        return Some("a new key is forced".into());
    }
    if state.prepared.is_some() {
        return None;
    }
    let Some(current) = &state.current else {
        return Some("there is no key yet".into());
    };
    let wanted = dkim.key_type.to_string();
    if current.key_type != wanted {
        return Some(format!(
            "the key type changed from {} to {wanted}",
            current.key_type
        ));
    }
    let age = now - current.created;
    if age >= Duration::days(i64::from(dkim.rotate_days)) {
        return Some(format!(
            "the key is {} days old (rotatedays = {})",
            age.num_days(),
            dkim.rotate_days
        ));
    }
    None
}

/// When the current key becomes due for rotation.
pub fn rotation_due_at(dkim: &DkimSection, current: &DkimKeyState) -> DateTime<Utc> {
    current.created + Duration::days(i64::from(dkim.rotate_days))
}

/// When the record of a replaced key may be deleted: the drain period after its
/// rollover for a key that signed mail, at once for one that never did (a
/// prepared key replaced by a forced prepare). `None` for a key not replaced.
pub fn drained_at(dkim: &DkimSection, key: &DkimKeyState) -> Option<DateTime<Utc>> {
    let retired = key.retired?;
    if key.installed.is_none() {
        return Some(retired);
    }
    let drain = Duration::from_std(dkim.drain).unwrap_or(Duration::MAX);
    Some(
        retired
            .checked_add_signed(drain)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// A selector `BASE_UNIXTIME` not in `taken` (a second key within the same
/// second takes the next free second).
pub fn unique_selector(base: &str, now: DateTime<Utc>, taken: &[&str]) -> String {
    let mut unix = now.timestamp();
    loop {
        let candidate = selector(base, unix);
        if !taken.contains(&candidate.as_str()) {
            return candidate;
        }
        unix += 1;
    }
}

/// The scope of one selector's record at `domain`: DKIM TXT records at
/// `SELECTOR._domainkey.DOMAIN`, nothing else.
fn selector_scope(owner: Name) -> Scope {
    Scope {
        filter: Filter::TxtTag("v=DKIM1"),
        ..Scope::exact(owner, RecordType::Txt)
    }
}

/// Publishes `key` at `domain`, keeping whatever else is there.
///
/// # Errors
/// When `SELECTOR._domainkey.DOMAIN` is not a valid name (too long).
pub fn publish(key: &DkimKeyState, domain: &Name, ttl: u32) -> Result<Contribution, String> {
    let owner = owner(&key.selector, domain)?;
    Ok(Contribution {
        op: Op::Add,
        log_type: LOG_TYPE,
        scope: selector_scope(owner.clone()),
        records: vec![Record::new(owner, ttl, RData::Txt(key.txt.clone()))],
    })
}

/// Deletes the DKIM record of `selector` at `domain`.
///
/// # Errors
/// When `SELECTOR._domainkey.DOMAIN` is not a valid name.
pub fn prune(selector: &str, domain: &Name) -> Result<Contribution, String> {
    Ok(Contribution {
        op: Op::Set,
        log_type: LOG_TYPE,
        scope: selector_scope(owner(selector, domain)?),
        records: Vec::new(),
    })
}

/// The record `key` publishes at `domain`.
///
/// # Errors
/// When the owner name is not valid.
pub fn record(key: &DkimKeyState, domain: &Name, ttl: u32) -> Result<Record, String> {
    Ok(Record::new(
        owner(&key.selector, domain)?,
        ttl,
        RData::Txt(key.txt.clone()),
    ))
}

fn owner(selector: &str, domain: &Name) -> Result<Name, String> {
    record_name(selector, domain).map_err(|e| format!("{selector}._domainkey.{domain}: {e}"))
}

/// The time format of log lines.
const WHEN: &str = super::timing::WHEN;

/// The state of the DKIM section `name`.
pub fn dkim_state(state: &crate::state::State, name: &str) -> DkimState {
    state.dkim.get(name).cloned().unwrap_or_default()
}

/// The records `key` needs served at every domain of `dkim` before it signs.
pub fn awaited(
    dkim: &DkimSection,
    key: &DkimKeyState,
    ttl_of: impl Fn(&Name) -> u32,
) -> Vec<(Name, Vec<Record>)> {
    dkim.domains
        .iter()
        .filter_map(|d| record(key, d, ttl_of(d)).ok().map(|r| (d.clone(), vec![r])))
        .collect()
}

/// Plans `dkim`'s steps of this round.
pub fn plan(input: &super::Input<'_>, dkim: &DkimSection, plan: &mut super::Plan) {
    use super::{Action, Deletion, NewDkimKey, Note, Request, Section, Step, When};
    let section = Section::Dkim(dkim.name.clone());
    let state = dkim_state(input.state, &dkim.name);
    let now = input.now;
    if let Some(e) = input.observed.dkim_config_errors.get(&dkim.name) {
        plan.errors.push((section, e.clone()));
        return;
    }
    if let Some(e) = input.observed.dkim_key_wrong.get(&dkim.name) {
        plan.errors.push((section, e.clone()));
        return;
    }

    if input.request.prepares() {
        match (&state.prepared, input.force) {
            (Some(prepared), false) if input.observed.dkim_key_missing.contains(&dkim.name) => {
                plan.steps.push(Step::now(
                    section.clone(),
                    Action::MakeDkimKey(NewDkimKey {
                        selector: prepared.selector.clone(),
                        resume: true,
                    }),
                    format!(
                        "the key of prepared selector {} was never written (interrupted run)",
                        prepared.selector
                    ),
                ));
            }
            (Some(prepared), false) => plan.info.push((
                section.clone(),
                match prepared.published {
                    Some(at) => format!(
                        "kept: prepared selector {}, published {}; it waits for rollover",
                        prepared.selector,
                        at.format(WHEN)
                    ),
                    None => format!(
                        "continuing with prepared selector {}: publishing its record",
                        prepared.selector
                    ),
                },
            )),
            _ => match due_reason(dkim, &state, now, input.force) {
                Some(reason) => {
                    let taken: Vec<&str> = state
                        .current
                        .iter()
                        .chain(state.prepared.iter())
                        .chain(state.retired.iter())
                        .map(|k| k.selector.as_str())
                        .collect();
                    plan.steps.push(Step::now(
                        section.clone(),
                        Action::MakeDkimKey(NewDkimKey {
                            selector: unique_selector(&dkim.key_base_name, now, &taken),
                            resume: false,
                        }),
                        reason,
                    ));
                }
                None => {
                    if let Some(current) = &state.current {
                        plan.info.push((
                            section.clone(),
                            format!(
                                "kept: selector {}, {} days old; a new key is due {} (rotatedays = {})",
                                current.selector,
                                (now - current.created).num_days(),
                                rotation_due_at(dkim, current).format(WHEN),
                                dkim.rotate_days
                            ),
                        ));
                    }
                }
            },
        }
    }

    if let Some(prepared) = &state.prepared {
        let answers = input.observed.served.get(&section);
        if prepared.published.is_some()
            && prepared.served.is_none()
            && let Some(served) = answers.and_then(|a| super::records::served_now(a, now))
        {
            plan.steps.push(Step::now(
                section.clone(),
                Action::Note(Note::Served(served)),
                "its record is served by every authoritative server",
            ));
        }
        if input.request.rolls_over() && !input.observed.dkim_key_missing.contains(&dkim.name) {
            let r = super::timing::rollover_readiness(
                "DKIM",
                prepared.published,
                prepared.served.as_ref(),
                prepared.joined_ttl.unwrap_or(0),
                answers,
                now,
            );
            let (when, reason) = match r.when {
                When::Now => (
                    When::Now,
                    format!("selector {}: {}", prepared.selector, r.why),
                ),
                _ if input.force => (
                    When::Now,
                    format!(
                        "selector {} although mail signed with it might not verify yet (--force): {}",
                        prepared.selector, r.why
                    ),
                ),
                when => (when, r.why),
            };
            plan.steps.push(Step {
                section: section.clone(),
                action: Action::InstallDkim(prepared.clone()),
                reason,
                when,
            });
        }
    } else if input.request == Request::Rollover && input.first_round {
        plan.info.push((
            section.clone(),
            "nothing prepared; the current key stays".into(),
        ));
    }

    if input.request.cleans_up() {
        for old in &state.retired {
            let Some(until) = drained_at(dkim, old) else {
                continue;
            };
            if now < until {
                plan.info.push((
                    section.clone(),
                    format!(
                        "keeping old selector {} published until {} (dkimdrain after the rollover of {})",
                        old.selector,
                        until.format(WHEN),
                        old.retired
                            .map(|t| t.format(WHEN).to_string())
                            .unwrap_or_default()
                    ),
                ));
                continue;
            }
            if records_gone(input, dkim, old) {
                plan.steps.push(Step::now(
                    section.clone(),
                    Action::Delete(Deletion::DkimKey(old.clone())),
                    format!(
                        "old selector {} is drained and its records are gone",
                        old.selector
                    ),
                ));
            }
        }
    }
}

/// True when no observed zone holds a record of `old`'s selector at a
/// configured domain of it (domains no longer configured are said in the log
/// by the executor). False when a zone was not observed.
fn records_gone(input: &super::Input<'_>, dkim: &DkimSection, old: &DkimKeyState) -> bool {
    let mut names: Vec<Name> = dkim.domains.clone();
    for d in &old.domains {
        if let Ok(n) = Name::parse(d)
            && input.config.domains.iter().any(|c| c.name == n)
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    names.iter().all(|domain| {
        let Ok(owner) = owner(&old.selector, domain) else {
            return true;
        };
        let scope = selector_scope(owner);
        input.observed.zones.iter().any(|view| {
            view.domains.contains(domain)
                && view
                    .records
                    .as_ref()
                    .is_ok_and(|records| !records.iter().any(|r| scope.contains(r)))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dkim::{DEFAULT_DRAIN, DkimHandler};
    use crate::material::dkim::DkimKeyType;
    use crate::plan::update::plan_contributions;
    use std::path::PathBuf;

    fn section(rotate_days: u32) -> DkimSection {
        DkimSection {
            name: "mail".into(),
            span: None,
            handler: DkimHandler::File,
            key_type: DkimKeyType::Ed25519,
            key_base_name: "mail".into(),
            key_location: PathBuf::from("/k"),
            key_name: "dkim.key".into(),
            owner: None,
            group: None,
            drain: DEFAULT_DRAIN,
            rotate_days,
            domains: Vec::new(),
        }
    }

    fn key(selector: &str, created: DateTime<Utc>) -> DkimKeyState {
        DkimKeyState {
            selector: selector.into(),
            key_file: PathBuf::from("/s/k"),
            key_type: "ed25519".into(),
            txt: format!("v=DKIM1; k=ed25519; p={selector}"),
            created,
            domains: Vec::new(),
            published: None,
            installed: None,
            retired: None,
            joined_ttl: None,
            served: None,
        }
    }

    #[test]
    fn when_a_new_key_is_due() {
        let now = Utc::now();
        let empty = DkimState::default();
        assert!(due_reason(&section(180), &empty, now, false).is_some());
        let fresh = DkimState {
            current: Some(key("mail_1", now - Duration::days(10))),
            ..DkimState::default()
        };
        assert_eq!(due_reason(&section(180), &fresh, now, false), None);
        assert!(due_reason(&section(180), &fresh, now, true).is_some());
        assert!(
            due_reason(&section(10), &fresh, now, false).is_some_and(|r| r.contains("10 days old"))
        );
        let mut rsa = section(180);
        rsa.key_type = DkimKeyType::Rsa(2048);
        assert!(due_reason(&rsa, &fresh, now, false).is_some_and(|r| r.contains("to rsa-2048")));
        // A prepared key waits for rollover; a second prepare keeps it.
        let prepared = DkimState {
            prepared: Some(key("mail_2", now)),
            ..fresh
        };
        assert_eq!(due_reason(&section(0), &prepared, now, false), None);
        assert_eq!(
            rotation_due_at(&section(180), prepared.current.as_ref().unwrap()),
            now - Duration::days(10) + Duration::days(180)
        );
    }

    #[test]
    fn drain_counts_from_rollover_for_keys_that_signed() {
        let t = Utc::now();
        let mut k = key("mail_1", t);
        assert_eq!(drained_at(&section(1), &k), None);
        k.retired = Some(t);
        assert_eq!(drained_at(&section(1), &k), Some(t));
        k.installed = Some(t - Duration::days(30));
        assert_eq!(drained_at(&section(1), &k), Some(t + Duration::days(7)));
        let mut none = section(1);
        none.drain = std::time::Duration::ZERO;
        assert_eq!(drained_at(&none, &k), Some(t));
    }

    #[test]
    fn selectors_are_unique() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(unique_selector("mail", t, &[]), "mail_1700000000");
        assert_eq!(
            unique_selector("mail", t, &["mail_1700000000", "mail_1700000001"]),
            "mail_1700000002"
        );
    }

    #[test]
    fn publish_adds_next_to_others_and_prune_takes_only_its_selector() {
        let domain = Name::parse("example.test").unwrap();
        let t = Utc::now();
        let old = key("mail_1", t);
        let new = key("mail_2", t);
        let existing = vec![
            record(&old, &domain, 300).unwrap(),
            Record::new(
                Name::parse("google._domainkey.example.test").unwrap(),
                300,
                RData::Txt("v=DKIM1; k=rsa; p=other".into()),
            ),
            Record::new(
                Name::parse("_adsp._domainkey.example.test").unwrap(),
                300,
                RData::Txt("dkim=all".into()),
            ),
        ];
        let plan = plan_contributions(&[publish(&new, &domain, 300).unwrap()], &existing);
        assert_eq!(plan.changes.adds.len(), 1);
        assert!(plan.changes.deletes.is_empty());
        assert_eq!(
            plan.lines[0].to_string(),
            "add (new) DKIM for mail_2._domainkey.example.test : v=DKIM1; k=ed25519; p=mail_2"
        );

        let plan = plan_contributions(
            &[
                publish(&new, &domain, 300).unwrap(),
                prune("mail_1", &domain).unwrap(),
            ],
            &existing,
        );
        assert_eq!(plan.changes.deletes.len(), 1);
        assert_eq!(
            plan.changes.deletes[0].name.as_str(),
            "mail_1._domainkey.example.test"
        );
    }
}
