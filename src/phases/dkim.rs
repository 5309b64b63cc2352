//! DKIM keys through the phases (SPEC §3.4, §4, §7):
//!
//! - **prepare** makes a new key when one is due (none yet, older than
//!   `rotatedays`, key type changed, or forced) into
//!   `STATEDIR/dkim/<section>/<selector>.key` (0600) and publishes its TXT record
//!   at `SELECTOR._domainkey.NAME` next to the current one. The new selector is
//!   journalled in state before the key is written and marked published only
//!   after the records are out, so a re-run after a crash finishes the same key
//!   instead of making a second one.
//! - **rollover** installs the prepared key as its own file
//!   `keylocation/SELECTOR.key` (atomic, 0600, owned by `keyowner`/`keygroup`),
//!   then switches the signing configuration (rspamd's `dkim_signing.conf` or
//!   OpenDKIM's tables), which names that file with the selector, then points
//!   the link `keylocation/keyname` at it. The old key's file is left alone: a
//!   signer not yet reloaded keeps signing with it under the old selector. It
//!   refuses a key whose record is not yet served by every authoritative
//!   nameserver (`--force` overrides). If a step fails, what was written is
//!   put back.
//! - **cleanup** deletes the replaced key's record and files once `dkimdrain`
//!   has passed since its rollover and every service using the key has
//!   reloaded since, and otherwise says until when it keeps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use log::{error, info, warn};

use super::Options;
use super::records::{self, DomainRecords, served_everywhere};
use super::services::{Deployed, Material};
use crate::apply::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE};
use crate::config::dkim::DkimSection;
use crate::config::model::{Config, Domain};
use crate::crashpoint;
use crate::dns::record::Name;
use crate::material::dkim::{self as key_material, DkimKeyType};
use crate::plan::dkim::{
    self as plan, drained_at, due_reason, rotation_due_at, selector_file, unique_selector,
};
use crate::plan::update::Contribution;
use crate::run::PhaseFailed;
use crate::state::{DkimKeyState, DkimState, State, Store};

mod install;
use install::{install, link_keyname, signing_files};

/// The time format of log lines that say until when something is kept.
const WHEN: &str = "%Y-%m-%d %H:%M:%S UTC";

/// Runs prepare for every DKIM section: new keys where due, then one record
/// change set per zone.
///
/// # Errors
/// [`PhaseFailed`] when a key could not be made or its records not published.
pub async fn prepare(config: &Config, store: &Store, options: Options) -> Result<(), PhaseFailed> {
    let mut failed = false;
    for dkim in &config.dkims {
        if let Err(message) = prepare_key(config, dkim, store, options).await {
            error!(
                "[dkim:{}] {message}; the current key and its configuration are unchanged",
                dkim.name
            );
            failed = true;
        }
    }
    let state = store.snapshot().await;
    let (work, wanted) = publish_work(config, &state, &mut failed);
    if work.is_empty() {
        return if failed { Err(PhaseFailed) } else { Ok(()) };
    }
    if records::apply(work, options.dry_run).await.is_err() {
        error!("DKIM records could not all be published; run prepare again");
        return Err(PhaseFailed);
    }
    if !options.dry_run {
        mark_published(store, &wanted, &mut failed).await;
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Makes a new key for `dkim` if one is due, or finishes one a crashed run
/// journalled.
async fn prepare_key(
    config: &Config,
    dkim: &DkimSection,
    store: &Store,
    options: Options,
) -> Result<(), String> {
    let state = section_state(&store.snapshot().await, &dkim.name);
    let now = Utc::now();
    // A template that cannot be rendered would fail rollover; say so now.
    let check = "check_0";
    signing_files(
        config,
        dkim,
        check,
        &selector_file(dkim, check),
        &store.snapshot().await,
    )?;

    if let (Some(prepared), false) = (&state.prepared, options.force) {
        if !options.dry_run {
            finish_key_file(dkim, store, prepared).await?;
        }
        match prepared.published {
            Some(at) => info!(
                "[dkim:{}] kept: prepared selector {}, published {}; it waits for rollover",
                dkim.name,
                prepared.selector,
                at.format(WHEN)
            ),
            None => info!(
                "[dkim:{}] continuing with prepared selector {}: publishing its record",
                dkim.name, prepared.selector
            ),
        }
        return Ok(());
    }
    let Some(reason) = due_reason(dkim, &state, now, options.force) else {
        if let Some(current) = &state.current {
            info!(
                "[dkim:{}] kept: selector {}, {} days old; a new key is due {} (rotatedays = {})",
                dkim.name,
                current.selector,
                (now - current.created).num_days(),
                rotation_due_at(dkim, current).format(WHEN),
                dkim.rotate_days
            );
        }
        return Ok(());
    };
    let taken: Vec<&str> = state
        .current
        .iter()
        .chain(state.prepared.iter())
        .chain(state.retired.iter())
        .map(|k| k.selector.as_str())
        .collect();
    let selector = unique_selector(&dkim.key_base_name, now, &taken);
    info!(
        "[dkim:{}] making a new {} key, selector {selector}: {reason}",
        dkim.name, dkim.key_type
    );
    let key = generate(dkim.key_type).await?;
    let key_file = key_dir(store.statedir(), dkim).join(format!("{selector}.key"));
    let entry = DkimKeyState {
        selector,
        key_file,
        key_type: key.key_type.to_string(),
        txt: key.txt,
        created: now,
        domains: Vec::new(),
        published: None,
        installed: None,
        installed_file: None,
        retired: None,
    };
    if options.dry_run {
        println!(
            "dkim {}: new {} key, selector {}, record at {}",
            dkim.name,
            dkim.key_type,
            entry.selector,
            dkim.domains
                .iter()
                .map(|d| format!("{}._domainkey.{d}", entry.selector))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // A dry run's store keeps this in memory only, so that the record plan
        // below shows the new record.
        let _ = store
            .update(|s| install_prepared(s, &dkim.name, entry, now))
            .await;
        return Ok(());
    }
    // Journal first: a crash after this continues with this selector.
    store
        .update(|s| install_prepared(s, &dkim.name, entry.clone(), now))
        .await
        .map_err(|e| e.to_string())?;
    crashpoint::reached("dkim:journaled");
    write_key(&entry.key_file, key.pem.expose())?;
    crashpoint::reached("dkim:key-written");
    Ok(())
}

/// Makes `entry` the prepared key; a prepared key it replaces (forced prepare)
/// is retired at once: it never signed anything.
fn install_prepared(state: &mut State, section: &str, entry: DkimKeyState, now: DateTime<Utc>) {
    let slot = state.dkim.entry(section.to_string()).or_default();
    if let Some(mut old) = slot.prepared.replace(entry) {
        old.retired = Some(now);
        slot.retired.push(old);
    }
}

/// Generates a key off the async threads (RSA-4096 takes seconds).
async fn generate(kind: DkimKeyType) -> Result<key_material::DkimKey, String> {
    tokio::task::spawn_blocking(move || key_material::generate(kind))
        .await
        .map_err(|e| format!("key generation stopped: {e}"))?
        .map_err(|e| e.to_string())
}

/// The journalled key's file must hold the journalled key. If a crash came
/// between journal and file, the key is made now (the same selector; no record
/// of the lost key was ever published).
async fn finish_key_file(
    dkim: &DkimSection,
    store: &Store,
    prepared: &DkimKeyState,
) -> Result<(), String> {
    match std::fs::read_to_string(&prepared.key_file) {
        Ok(pem) => {
            let key = key_material::from_pem(&pem)
                .map_err(|e| format!("{}: {e}", prepared.key_file.display()))?;
            if key.txt != prepared.txt {
                return Err(format!(
                    "{} does not hold the key of selector {} recorded in the state; move it away to make a new key",
                    prepared.key_file.display(),
                    prepared.selector
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warn!(
                "[dkim:{}] the key of prepared selector {} was never written (interrupted run); making it now",
                dkim.name, prepared.selector
            );
            let key = generate(dkim.key_type).await?;
            let (txt, kind) = (key.txt.clone(), key.key_type.to_string());
            store
                .update(|s| {
                    if let Some(p) = s.dkim.get_mut(&dkim.name).and_then(|d| d.prepared.as_mut()) {
                        p.txt = txt;
                        p.key_type = kind;
                        p.published = None;
                        p.domains.clear();
                    }
                })
                .await
                .map_err(|e| e.to_string())?;
            write_key(&prepared.key_file, key.pem.expose())
        }
        Err(e) => Err(format!("reading {}: {e}", prepared.key_file.display())),
    }
}

fn write_key(path: &Path, pem: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        afs::create_dir(dir, PRIVATE_DIR).map_err(|e| e.to_string())?;
    }
    afs::write_atomic(path, pem.as_bytes(), PRIVATE_FILE).map_err(|e| e.to_string())
}

fn key_dir(statedir: &Path, dkim: &DkimSection) -> PathBuf {
    statedir.join("dkim").join(&dkim.name)
}

fn section_state(state: &State, name: &str) -> DkimState {
    state.dkim.get(name).cloned().unwrap_or_default()
}

/// The configured domain sections of `dkim`.
fn domains_of<'a>(config: &'a Config, names: &[Name]) -> Vec<&'a Domain> {
    config
        .domains
        .iter()
        .filter(|d| names.contains(&d.name))
        .collect()
}

/// A section whose keys were published: its name, the prepared selector (if
/// any) and the domain names.
type Published = (String, Option<String>, Vec<String>);

/// Records every DKIM section keeps published: its current and prepared keys at
/// each of its domains (adds only). Also returns, per section, the prepared
/// selector and the domains it goes to, to mark it published afterwards.
fn publish_work(
    config: &Config,
    state: &State,
    failed: &mut bool,
) -> (Vec<DomainRecords>, Vec<Published>) {
    let mut by_domain: BTreeMap<Name, Vec<Contribution>> = BTreeMap::new();
    let mut wanted = Vec::new();
    for dkim in &config.dkims {
        let entry = section_state(state, &dkim.name);
        let keys: Vec<&DkimKeyState> = entry.current.iter().chain(entry.prepared.iter()).collect();
        for domain in domains_of(config, &dkim.domains) {
            for key in &keys {
                match plan::publish(key, &domain.name, domain.ttl) {
                    Ok(c) => by_domain.entry(domain.name.clone()).or_default().push(c),
                    Err(message) => {
                        error!("[dkim:{}] {message}", dkim.name);
                        *failed = true;
                    }
                }
            }
        }
        let names = dkim.domains.iter().map(|d| d.to_string()).collect();
        let prepared = entry.prepared.as_ref().map(|p| p.selector.clone());
        wanted.push((dkim.name.clone(), prepared, names));
    }
    (domain_records(config, by_domain), wanted)
}

fn domain_records(
    config: &Config,
    by_domain: BTreeMap<Name, Vec<Contribution>>,
) -> Vec<DomainRecords> {
    by_domain
        .into_iter()
        .filter_map(|(name, contributions)| {
            let domain = config.domains.iter().find(|d| d.name == name)?.clone();
            Some(DomainRecords {
                domain,
                contributions,
            })
        })
        .collect()
}

/// Records that the prepared keys' records are out. The publication time
/// (from which rollover timing counts) moves when a domain was added.
async fn mark_published(store: &Store, wanted: &[Published], failed: &mut bool) {
    let now = Utc::now();
    let saved = store
        .update(|s| {
            for (section, selector, names) in wanted {
                let Some(entry) = s.dkim.get_mut(section) else {
                    continue;
                };
                if let Some(current) = entry.current.as_mut() {
                    merge_names(&mut current.domains, names);
                }
                let Some(prepared) = entry
                    .prepared
                    .as_mut()
                    .filter(|p| Some(&p.selector) == selector.as_ref())
                else {
                    continue;
                };
                if merge_names(&mut prepared.domains, names) || prepared.published.is_none() {
                    prepared.published = Some(now);
                }
            }
        })
        .await;
    if let Err(e) = saved {
        error!("{e}");
        *failed = true;
    }
}

/// Adds `names` to `into`; true when any was new.
fn merge_names(into: &mut Vec<String>, names: &[String]) -> bool {
    let mut grew = false;
    for name in names {
        if !into.contains(name) {
            into.push(name.clone());
            grew = true;
        }
    }
    grew
}

/// Runs rollover for every DKIM section with a prepared key.
pub async fn rollover(config: &Config, store: &Store, options: Options) -> Deployed {
    let mut rolled = Deployed::default();
    for dkim in &config.dkims {
        match rollover_one(config, dkim, store, options).await {
            Ok(true) => rolled.materials.push(Material::Dkim(dkim.name.clone())),
            Ok(false) => {}
            Err(message) => {
                error!(
                    "[dkim:{}] rollover failed: {message}; the current key and its configuration stay in place",
                    dkim.name
                );
                rolled.failed = true;
            }
        }
    }
    rolled
}

/// Installs the prepared key of `dkim`; `Ok(false)` when there is none.
async fn rollover_one(
    config: &Config,
    dkim: &DkimSection,
    store: &Store,
    options: Options,
) -> Result<bool, String> {
    let state = store.snapshot().await;
    let entry = section_state(&state, &dkim.name);
    let Some(prepared) = entry.prepared.clone() else {
        info!(
            "[dkim:{}] nothing prepared; the current key stays",
            dkim.name
        );
        return Ok(false);
    };
    if prepared.published.is_none() {
        return Err(format!(
            "the record of prepared selector {} is not published yet; run prepare again",
            prepared.selector
        ));
    }
    check_served(config, dkim, &prepared, options.force).await?;

    let pem = std::fs::read_to_string(&prepared.key_file)
        .map_err(|e| format!("reading {}: {e}", prepared.key_file.display()))?;
    let key = key_material::from_pem(&pem)
        .map_err(|e| format!("{}: {e}", prepared.key_file.display()))?;
    if key.txt != prepared.txt {
        return Err(format!(
            "{} does not hold the key of selector {} that was published",
            prepared.key_file.display(),
            prepared.selector
        ));
    }
    let file = selector_file(dkim, &prepared.selector);
    let files = signing_files(config, dkim, &prepared.selector, &file, &state)?;
    let now = Utc::now();
    let Some(after) = plan::rolled_over(dkim, &entry, file.clone(), now) else {
        return Ok(false);
    };
    let link = plan::keyname_target(dkim, &after);
    if options.dry_run {
        println!(
            "dkim {}: install selector {} as {}",
            dkim.name,
            prepared.selector,
            file.display()
        );
        for (path, _) in &files {
            println!("dkim {}: write {}", dkim.name, path.display());
        }
        if let Some(target) = &link {
            println!(
                "dkim {}: link {} to {}",
                dkim.name,
                dkim.key_path().display(),
                target.display()
            );
        }
        return Ok(true);
    }

    install(dkim, &file, pem.as_bytes(), &files, link.as_deref())?;
    crashpoint::reached("dkim:installed");
    store
        .update(|s| {
            s.dkim.insert(dkim.name.clone(), after);
        })
        .await
        .map_err(|e| e.to_string())?;
    info!(
        "[dkim:{}] rolled over to selector {}: key {}{}",
        dkim.name,
        prepared.selector,
        file.display(),
        files
            .iter()
            .map(|(p, _)| format!(", {}", p.display()))
            .collect::<String>()
    );
    if link.is_none() {
        info!(
            "[dkim:{}] {} still holds the key of the old selector for signers configured with it; it becomes a link to the current key when that key is deleted",
            dkim.name,
            dkim.key_path().display()
        );
    }
    Ok(true)
}

/// Refuses a key whose record some authoritative server does not serve yet.
async fn check_served(
    config: &Config,
    dkim: &DkimSection,
    key: &DkimKeyState,
    force: bool,
) -> Result<(), String> {
    let mut missing = Vec::new();
    for domain in domains_of(config, &dkim.domains) {
        let record = plan::record(key, &domain.name, domain.ttl)?;
        match served_everywhere(domain, std::slice::from_ref(&record)).await {
            Ok(answers) => missing.extend(
                answers
                    .into_iter()
                    .filter(|(_, served)| !served)
                    .map(|(server, _)| format!("{} at {server}", record.name)),
            ),
            Err(e) => missing.push(format!("{} ({e})", record.name)),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let message = format!(
        "the record of selector {} is not yet served everywhere: {}",
        key.selector,
        missing.join(", ")
    );
    if force {
        warn!("[dkim:{}] {message}; going ahead (--force)", dkim.name);
        Ok(())
    } else {
        Err(format!(
            "{message}; mail signed with it could not be verified (run rollover later, or --force)"
        ))
    }
}

/// Runs cleanup for every DKIM section: replaced keys whose drain period has
/// passed, and that every service using them has reloaded away from, lose
/// their records and files; the others are kept and the log says until when.
/// Then `keylocation/keyname` links to the current key where it may.
///
/// # Errors
/// [`PhaseFailed`] when records or files could not be deleted (a later run
/// retries).
pub async fn cleanup(config: &Config, store: &Store) -> Result<(), PhaseFailed> {
    let state = store.snapshot().await;
    let now = Utc::now();
    let mut failed = false;
    let mut by_domain: BTreeMap<Name, Vec<Contribution>> = BTreeMap::new();
    let mut done: Vec<(String, DkimKeyState)> = Vec::new();
    for dkim in &config.dkims {
        let entry = section_state(&state, &dkim.name);
        for old in &entry.retired {
            if !drained(config, &state, dkim, old, now) {
                continue;
            }
            for name in &old.domains {
                let Some(domain) = Name::parse(name)
                    .ok()
                    .and_then(|n| config.domains.iter().find(|d| d.name == n))
                else {
                    warn!(
                        "[dkim:{}] {name} is not configured any more; delete {}._domainkey.{name} there by hand",
                        dkim.name, old.selector
                    );
                    continue;
                };
                match plan::prune(&old.selector, &domain.name) {
                    Ok(c) => by_domain.entry(domain.name.clone()).or_default().push(c),
                    Err(message) => {
                        error!("[dkim:{}] {message}", dkim.name);
                        failed = true;
                    }
                }
            }
            done.push((dkim.name.clone(), old.clone()));
        }
    }
    let something_drained = !by_domain.is_empty() || !done.is_empty();
    if something_drained
        && delete_drained(config, store, &state, by_domain, &done)
            .await
            .is_err()
    {
        failed = true;
    }
    if relink(config, store).await.is_err() {
        failed = true;
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Whether the replaced key `old` may go now; if not, the log says why and
/// until when.
fn drained(
    config: &Config,
    state: &State,
    dkim: &DkimSection,
    old: &DkimKeyState,
    now: DateTime<Utc>,
) -> bool {
    let Some(until) = drained_at(dkim, old) else {
        return false;
    };
    let rolled_over = old
        .retired
        .map(|t| t.format(WHEN).to_string())
        .unwrap_or_default();
    if now < until {
        info!(
            "[dkim:{}] keeping old selector {} published until {} (dkimdrain after the rollover of {rolled_over})",
            dkim.name,
            old.selector,
            until.format(WHEN),
        );
        return false;
    }
    let services: Vec<(&str, Option<DateTime<Utc>>)> = config
        .services
        .iter()
        .filter(|s| s.dkims.contains(&dkim.name))
        .map(|s| {
            let reloaded = state.services.get(&s.name).and_then(|r| r.reloaded_at);
            (s.name.as_str(), reloaded)
        })
        .collect();
    let waiting = plan::awaiting_reload(old, &services);
    if waiting.is_empty() {
        return true;
    }
    info!(
        "[dkim:{}] keeping old selector {} and its key: {} not reloaded since the rollover of {rolled_over} and may still sign with it; the next rollover reloads {}",
        dkim.name,
        old.selector,
        waiting
            .iter()
            .map(|s| format!("[service:{s}]"))
            .collect::<Vec<_>>()
            .join(", "),
        if waiting.len() == 1 { "it" } else { "them" }
    );
    false
}

/// Deletes the records of the drained keys (the keys in use stay published
/// next to the deletions), then their files, then forgets them.
async fn delete_drained(
    config: &Config,
    store: &Store,
    state: &State,
    mut by_domain: BTreeMap<Name, Vec<Contribution>>,
    done: &[(String, DkimKeyState)],
) -> Result<(), PhaseFailed> {
    let mut failed = false;
    let (keep, _) = publish_work(config, state, &mut failed);
    for item in keep {
        if by_domain.contains_key(&item.domain.name) {
            by_domain
                .entry(item.domain.name.clone())
                .or_default()
                .extend(item.contributions);
        }
    }
    if records::apply(domain_records(config, by_domain), store.dry_run())
        .await
        .is_err()
    {
        error!("old DKIM records could not be deleted; their keys are kept for the next cleanup");
        return Err(PhaseFailed);
    }
    let keys_dir = store.statedir().join("dkim");
    for (section, old) in done {
        let selector = &old.selector;
        let installed = plan::installed_file_to_delete(old);
        if store.dry_run() {
            for file in std::iter::once(old.key_file.as_path()).chain(installed) {
                println!("dkim {section}: delete {}", file.display());
            }
            continue;
        }
        if !old.key_file.starts_with(&keys_dir) {
            warn!(
                "[dkim:{section}] not deleting {}: outside {}",
                old.key_file.display(),
                keys_dir.display()
            );
        } else if let Err(e) = afs::remove_file(&old.key_file) {
            error!("[dkim:{section}] {e}");
            failed = true;
            continue;
        }
        if let Some(file) = installed
            && let Err(e) = afs::remove_file(file)
        {
            error!("[dkim:{section}] {e}");
            failed = true;
            continue;
        }
        let saved = store
            .update(|s| {
                if let Some(entry) = s.dkim.get_mut(section) {
                    entry.retired.retain(|k| &k.selector != selector);
                }
            })
            .await;
        match saved {
            Ok(()) => info!("[dkim:{section}] deleted old selector {selector} and its key"),
            Err(e) => {
                error!("[dkim:{section}] {e}");
                failed = true;
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Points each section's `keylocation/keyname` at its current key where
/// [`plan::keyname_target`] says so: after the old key of an earlier version,
/// which that file held, is deleted, or when the link was removed by hand.
async fn relink(config: &Config, store: &Store) -> Result<(), PhaseFailed> {
    let state = store.snapshot().await;
    let mut failed = false;
    for dkim in &config.dkims {
        let Some(target) = plan::keyname_target(dkim, &section_state(&state, &dkim.name)) else {
            continue;
        };
        let link = dkim.key_path();
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        if store.dry_run() {
            println!(
                "dkim {}: link {} to {}",
                dkim.name,
                link.display(),
                target.display()
            );
            continue;
        }
        match link_keyname(dkim, &target) {
            Ok(()) => info!(
                "[dkim:{}] {} now links to the current key {}",
                dkim.name,
                link.display(),
                target.display()
            ),
            Err(e) => {
                error!("[dkim:{}] {e}", dkim.name);
                failed = true;
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}
