//! Pure decisions of DKIM rotation (docs/timing.md): when a new key is due, when an
//! old selector's record may go, which files a key is installed as and when
//! they go, and the record contributions that publish a key next to the others
//! (`Op::Add`) or remove an old selector (`Op::Set` on exactly its name, with
//! nothing wanted there).
//!
//! Every key is installed as its own file, `keylocation/SELECTOR.key`, and the
//! signing configuration names that file together with the selector. A signer
//! that has not reloaded since a rollover so keeps signing with the old key
//! under the old selector, whose record stays published until the old key is
//! drained; the file goes with the record. `keylocation/keyname` is a link to
//! the current key's file, for other readers.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::scope::{Filter, Scope};
use super::update::Contribution;
use crate::config::dkim::DkimSection;
use crate::config::records::Op;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::material::dkim::{record_name, selector};
use crate::state::{DkimKeyState, DkimState};

/// The word the log shows for DKIM records.
pub(crate) const LOG_TYPE: &str = "DKIM";

/// Why prepare makes a new key, or `None` when the current or prepared one is kept.
pub(crate) fn due_reason(
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
pub(crate) fn rotation_due_at(dkim: &DkimSection, current: &DkimKeyState) -> DateTime<Utc> {
    current.created + Duration::days(i64::from(dkim.rotate_days))
}

/// When the record of a replaced key may be deleted: the drain period after its
/// rollover for a key that signed mail, at once for one that never did (a
/// prepared key replaced by a forced prepare). `None` for a key not replaced.
pub(crate) fn drained_at(dkim: &DkimSection, key: &DkimKeyState) -> Option<DateTime<Utc>> {
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

/// The file rollover installs the key of `selector` as.
pub(crate) fn selector_file(dkim: &DkimSection, selector: &str) -> PathBuf {
    dkim.key_location.join(format!("{selector}.key"))
}

/// The file the signing configuration names for `key`. A key that an earlier
/// version installed has no file of its own: that version installed every key
/// as `keylocation/keyname`, which then holds it until it is drained.
pub(crate) fn signing_file(dkim: &DkimSection, key: &DkimKeyState) -> PathBuf {
    key.installed_file
        .clone()
        .unwrap_or_else(|| dkim.key_path())
}

/// The state after rollover installs the prepared key as `file` at `now`: the
/// prepared key becomes current, the current one is retired and remembers the
/// file it was installed as (cleanup deletes it after the drain). `None` when
/// nothing is prepared.
pub(crate) fn rolled_over(
    dkim: &DkimSection,
    state: &DkimState,
    file: PathBuf,
    now: DateTime<Utc>,
) -> Option<DkimState> {
    let mut new = state.prepared.clone()?;
    new.installed = Some(now);
    new.installed_file = Some(file);
    let mut after = DkimState {
        current: Some(new),
        prepared: None,
        retired: state.retired.clone(),
    };
    if let Some(mut old) = state.current.clone() {
        old.installed_file = Some(signing_file(dkim, &old));
        old.retired = Some(now);
        after.retired.push(old);
    }
    Some(after)
}

/// The name `keylocation/keyname` should link to: the current key's file.
/// `None` leaves it as it is: while it is itself the file of a key an earlier
/// version installed (signers still configured with it read it until they
/// reload, so it must keep that key until the key is drained), or when there is
/// no current key in `keylocation`.
pub(crate) fn keyname_target(dkim: &DkimSection, state: &DkimState) -> Option<PathBuf> {
    let current = state.current.as_ref()?;
    let file = current.installed_file.as_ref()?;
    let keyname = dkim.key_path();
    if state
        .retired
        .iter()
        .any(|k| k.installed_file.as_ref() == Some(&keyname))
    {
        return None;
    }
    if file.parent() != Some(dkim.key_location.as_path()) || file == &keyname {
        return None;
    }
    file.file_name().map(PathBuf::from)
}

/// The installed file cleanup deletes with a drained key: its own
/// `SELECTOR.key` only. An earlier version's `keyname` file is not deleted but
/// replaced by the link to the current key ([`keyname_target`]).
pub(crate) fn installed_file_to_delete(key: &DkimKeyState) -> Option<&Path> {
    let file = key.installed_file.as_deref()?;
    let own = file
        .file_name()
        .is_some_and(|n| n.to_str() == Some(&format!("{}.key", key.selector)));
    own.then_some(file)
}

/// The services (name and last successful reload) that use a replaced key's
/// section and have not reloaded since it was replaced: they may still sign
/// with it, so its record and file stay. Empty for a key that never signed.
pub(crate) fn awaiting_reload<'a>(
    key: &DkimKeyState,
    services: &[(&'a str, Option<DateTime<Utc>>)],
) -> Vec<&'a str> {
    let (Some(_), Some(retired)) = (key.installed, key.retired) else {
        return Vec::new();
    };
    services
        .iter()
        .filter(|(_, reloaded)| reloaded.is_none_or(|at| at < retired))
        .map(|(name, _)| *name)
        .collect()
}

/// A selector `BASE_UNIXTIME` not in `taken` (a second key within the same
/// second takes the next free second).
pub(crate) fn unique_selector(base: &str, now: DateTime<Utc>, taken: &[&str]) -> String {
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
pub(crate) fn publish(key: &DkimKeyState, domain: &Name, ttl: u32) -> Result<Contribution, String> {
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
pub(crate) fn prune(selector: &str, domain: &Name) -> Result<Contribution, String> {
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
pub(crate) fn record(key: &DkimKeyState, domain: &Name, ttl: u32) -> Result<Record, String> {
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
pub(crate) fn dkim_state(state: &crate::state::State, name: &str) -> DkimState {
    state.dkim.get(name).cloned().unwrap_or_default()
}

/// The records `key` needs served at every domain of `dkim` before it signs.
pub(crate) fn awaited(
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
pub(crate) fn plan(input: &super::Input<'_>, dkim: &DkimSection, plan: &mut super::Plan) {
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
                (
                    prepared.joined_ttl.unwrap_or(0),
                    input
                        .config
                        .domains
                        .iter()
                        .filter(|d| dkim.domains.contains(&d.name))
                        .map(|d| d.ttl)
                        .max()
                        .unwrap_or(0),
                ),
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
            if let Err(keeping) = may_go(input, dkim, old) {
                if let Some(keeping) = keeping {
                    plan.info.push((section.clone(), keeping));
                }
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

/// Whether the replaced key `old` (its record and files) may go now: its
/// drain period is over and every service that uses the section has reloaded
/// since it was replaced (one that has not may still sign with it). If not,
/// why it stays (`None` for a key that is not replaced).
pub(crate) fn may_go(
    input: &super::Input<'_>,
    dkim: &DkimSection,
    old: &DkimKeyState,
) -> Result<(), Option<String>> {
    let until = drained_at(dkim, old).ok_or(None)?;
    let rolled_over = old
        .retired
        .map(|t| t.format(WHEN).to_string())
        .unwrap_or_default();
    if input.now < until {
        return Err(Some(format!(
            "keeping old selector {} published until {} (dkimdrain after the rollover of {rolled_over})",
            old.selector,
            until.format(WHEN),
        )));
    }
    let services: Vec<(&str, Option<DateTime<Utc>>)> = input
        .config
        .services
        .iter()
        .filter(|s| s.dkims.contains(&dkim.name))
        .map(|s| {
            let reloaded = input
                .state
                .services
                .get(&s.name)
                .and_then(|r| r.reloaded_at);
            (s.name.as_str(), reloaded)
        })
        .collect();
    let waiting = awaiting_reload(old, &services);
    if waiting.is_empty() {
        return Ok(());
    }
    Err(Some(format!(
        "keeping old selector {} and its key: {} not reloaded since the rollover of {rolled_over} and may still sign with it; the next rollover reloads {}",
        old.selector,
        waiting
            .iter()
            .map(|s| format!("[service:{s}]"))
            .collect::<Vec<_>>()
            .join(", "),
        if waiting.len() == 1 { "it" } else { "them" }
    )))
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
    use crate::config::dkim::{DEFAULT_DRAIN, DkimHandler, KeyOwnership};
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
            ownership: KeyOwnership::Configured,
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
            installed_file: None,
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

    #[test]
    fn each_key_has_its_own_file_and_keyname_links_to_the_current_one() {
        let dkim = section(180);
        let t = Utc::now();
        let mut first = key("mail_1", t);
        first.published = Some(t);
        let state = DkimState {
            prepared: Some(first),
            ..DkimState::default()
        };
        let file = selector_file(&dkim, "mail_1");
        assert_eq!(file, PathBuf::from("/k/mail_1.key"));
        let state = rolled_over(&dkim, &state, file.clone(), t).unwrap();
        let current = state.current.as_ref().unwrap();
        assert_eq!(current.installed, Some(t));
        assert_eq!(current.installed_file.as_ref(), Some(&file));
        assert!(state.prepared.is_none() && state.retired.is_empty());
        assert_eq!(
            keyname_target(&dkim, &state),
            Some(PathBuf::from("mail_1.key"))
        );

        // The next rollover: the old key keeps its file until it is drained.
        let state = DkimState {
            prepared: Some(key("mail_2", t)),
            ..state
        };
        let later = t + Duration::days(1);
        let state = rolled_over(&dkim, &state, selector_file(&dkim, "mail_2"), later).unwrap();
        let old = &state.retired[0];
        assert_eq!(old.retired, Some(later));
        assert_eq!(old.installed_file, Some(file.clone()));
        assert_eq!(installed_file_to_delete(old), Some(file.as_path()));
        assert_eq!(
            keyname_target(&dkim, &state),
            Some(PathBuf::from("mail_2.key"))
        );
        assert!(rolled_over(&dkim, &state, PathBuf::from("/k/x.key"), later).is_none());
    }

    #[test]
    fn a_key_installed_as_keyname_by_an_earlier_version_keeps_that_file_until_drained() {
        let dkim = section(180);
        let t = Utc::now();
        // As an earlier version left it: the current key has no file of its own.
        let mut legacy = key("mail_1", t);
        legacy.installed = Some(t);
        let state = DkimState {
            current: Some(legacy),
            prepared: Some(key("mail_2", t)),
            retired: Vec::new(),
        };
        assert_eq!(
            signing_file(&dkim, state.current.as_ref().unwrap()),
            PathBuf::from("/k/dkim.key")
        );
        assert_eq!(keyname_target(&dkim, &state), None);

        let state = rolled_over(&dkim, &state, selector_file(&dkim, "mail_2"), t).unwrap();
        let old = &state.retired[0];
        assert_eq!(old.installed_file, Some(PathBuf::from("/k/dkim.key")));
        // keyname still holds the old key for signers configured with it ...
        assert_eq!(keyname_target(&dkim, &state), None);
        assert_eq!(installed_file_to_delete(old), None);
        // ... until cleanup has removed the old key: then it links to the current one.
        let cleaned = DkimState {
            retired: Vec::new(),
            ..state
        };
        assert_eq!(
            keyname_target(&dkim, &cleaned),
            Some(PathBuf::from("mail_2.key"))
        );
    }

    #[test]
    fn a_replaced_key_waits_for_every_service_that_has_not_reloaded() {
        let t = Utc::now();
        let mut old = key("mail_1", t);
        old.installed = Some(t - Duration::days(30));
        old.retired = Some(t);
        let services = [
            ("rspamd", Some(t + Duration::seconds(1))),
            ("postfix", Some(t - Duration::seconds(1))),
            ("new", None),
        ];
        assert_eq!(awaiting_reload(&old, &services), ["postfix", "new"]);
        assert!(awaiting_reload(&old, &services[..1]).is_empty());
        // A prepared key replaced by a forced prepare never signed anything.
        old.installed = None;
        assert!(awaiting_reload(&old, &services).is_empty());
    }
}
