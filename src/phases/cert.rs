//! Certificates through the phases (SPEC §3.3, §4):
//!
//! - **prepare** issues a new certificate into the state directory when there is
//!   none, its names changed, fewer than `renewdays` days are left, or renewal is
//!   forced; otherwise it keeps the current one. The key is written (0600) and
//!   the order URL recorded in state before the CA is asked to finalize, so a
//!   re-run after a crash resumes that order instead of making a second one.
//! - **rollover** deploys the prepared certificate to
//!   `DESTINATION/<name>/{cert,chain,fullchain,privkey}.pem`. The files there are
//!   symlinks into `..data`, itself a symlink to a versioned directory that is
//!   swapped in one rename, so key and certificate change together.
//! - **cleanup** deletes superseded certificates from the state directory and
//!   old versioned directories from the destinations.
//!
//! Several certificate sections are handled concurrently.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use log::{error, info, warn};

use super::Options;
use super::dns01::ProviderDns01;
use super::services::{Deployed, Material};
use super::tlsa;
use crate::acme::{AcmeClient, AcmeConfig, AcmeError, Limits};
use crate::apply::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE};
use crate::config::cert::CertSection;
use crate::config::model::{Config, Domain};
use crate::crashpoint;
use crate::material::cert::{KeyPem, generate_key};
use crate::run::PhaseFailed;
use crate::state::{CertMaterial, CertState, PendingIssue, Store};

/// The files of a certificate, in the state directory and at the destination.
const KEY_FILE: &str = "privkey.pem";
const CERT_FILE: &str = "cert.pem";
const CHAIN_FILE: &str = "chain.pem";
const FULLCHAIN_FILE: &str = "fullchain.pem";
const FILES: [&str; 4] = [CERT_FILE, CHAIN_FILE, FULLCHAIN_FILE, KEY_FILE];
/// The symlink at the destination naming the deployed version.
const DATA_LINK: &str = "..data";

/// Why prepare issues a certificate, or `None` when the current one is kept.
pub fn renewal_reason(
    cert: &CertSection,
    names: &[String],
    state: &CertState,
    now: DateTime<Utc>,
    force: bool,
) -> Option<String> {
    let newest = state.prepared.as_ref().or(state.current.as_ref());
    let Some(material) = newest else {
        return Some("there is no certificate yet".into());
    };
    if !same_names(&material.names, names) {
        return Some(format!(
            "its names changed (from {})",
            material.names.join(", ")
        ));
    }
    if force || cert.force {
        return Some("renewal is forced".into());
    }
    let left = material.not_after - now;
    if left < chrono::Duration::days(i64::from(cert.renew_days)) {
        return Some(format!(
            "it expires in {} days (renewdays = {})",
            left.num_days(),
            cert.renew_days
        ));
    }
    None
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// The names of a certificate, in configuration order (the first is the CN).
fn names_of(cert: &CertSection) -> Vec<String> {
    cert.domains.iter().map(|d| d.to_string()).collect()
}

/// Runs prepare for every certificate.
///
/// # Errors
/// [`PhaseFailed`] when any certificate could not be prepared.
pub async fn prepare(config: &Config, store: &Store, options: Options) -> Result<(), PhaseFailed> {
    if config.certs.is_empty() {
        info!("No certificates configured");
        return Ok(());
    }
    let results = join_all(
        config
            .certs
            .iter()
            .map(|cert| prepare_one(config, cert, store, options)),
    )
    .await;
    let mut failed = false;
    for (cert, result) in config.certs.iter().zip(results) {
        if let Err(message) = result {
            error!(
                "[cert:{}]: {message}; the current certificate and its files are unchanged",
                cert.name
            );
            failed = true;
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

async fn prepare_one(
    config: &Config,
    cert: &CertSection,
    store: &Store,
    options: Options,
) -> Result<(), String> {
    let names = names_of(cert);
    let state = store
        .snapshot()
        .await
        .certs
        .get(&cert.name)
        .cloned()
        .unwrap_or_default();
    let Some(reason) = renewal_reason(cert, &names, &state, Utc::now(), options.force) else {
        let kept = state.prepared.as_ref().or(state.current.as_ref());
        if let Some(m) = kept {
            info!(
                "[cert:{}] kept: valid until {} for {}",
                cert.name,
                m.not_after.format("%Y-%m-%d"),
                m.names.join(", ")
            );
        }
        return Ok(());
    };
    info!(
        "[cert:{}] issuing a certificate for {}: {reason}",
        cert.name,
        names.join(", ")
    );
    if options.dry_run {
        println!(
            "cert {}: issue a certificate for {} from {} ({reason})",
            cert.name,
            names.join(", "),
            cert.directory
        );
        return Ok(());
    }

    let acme_config = AcmeConfig {
        ca: cert.directory.clone(),
        email: cert.email.clone(),
        eab: cert.eab.clone(),
        cacert: cert.cacert.clone(),
        account_dir: store.statedir().join("accounts"),
        limits: Limits {
            max_retry_after: cert.rate_limit_wait,
            ..Limits::default()
        },
    };
    let client = AcmeClient::connect(&acme_config)
        .await
        .map_err(|e| e.to_string())?;
    let domains: Vec<Domain> = config
        .domains
        .iter()
        .filter(|d| cert.domains.contains(&d.name))
        .cloned()
        .collect();
    let dns = ProviderDns01::new(domains);

    // Continue an issuance a crashed run left behind, if it is for these names.
    let resumable = state
        .pending
        .as_ref()
        .filter(|p| same_names(&p.names, &names))
        .and_then(|p| read_key(&p.dir).map(|key| (p.clone(), key)));
    let (pending_dir, key, order) = match resumable {
        Some((pending, key)) => {
            let order = match &pending.order_url {
                Some(url) => match client.resume_order(url, &names).await {
                    Ok(order) => {
                        info!("[cert:{}] resuming order {url}", cert.name);
                        Some(order)
                    }
                    Err(e) => {
                        warn!(
                            "[cert:{}] cannot resume order {url} ({e}); making a new one",
                            cert.name
                        );
                        None
                    }
                },
                None => None,
            };
            (pending.dir, key, order)
        }
        None => {
            let dir = new_material_dir(store.statedir(), &cert.name)?;
            let key = generate_key(cert.key_type).map_err(|e| e.to_string())?;
            afs::write_atomic(&dir.join(KEY_FILE), key.expose().as_bytes(), PRIVATE_FILE)
                .map_err(|e| e.to_string())?;
            crashpoint::reached("prepare:key-written");
            let pending = PendingIssue {
                dir: dir.clone(),
                names: names.clone(),
                order_url: None,
                started: Utc::now(),
            };
            store
                .update(|s| s.certs.entry(cert.name.clone()).or_default().pending = Some(pending))
                .await
                .map_err(|e| e.to_string())?;
            (dir, key, None)
        }
    };
    let order = match order {
        Some(order) => order,
        None => {
            let order = client.new_order(&names).await.map_err(|e| e.to_string())?;
            let url = order.url().to_string();
            store
                .update(|s| {
                    if let Some(p) = s
                        .certs
                        .entry(cert.name.clone())
                        .or_default()
                        .pending
                        .as_mut()
                    {
                        p.order_url = Some(url);
                    }
                })
                .await
                .map_err(|e| e.to_string())?;
            order
        }
    };
    crashpoint::reached("prepare:order-created");

    let issued = match client.complete(order, &key, &dns).await {
        Ok(issued) => issued,
        Err(e) => {
            // A dead order cannot be resumed; the next run starts a new one.
            if matches!(
                e,
                AcmeError::ChallengeInvalid { .. } | AcmeError::OrderInvalid { .. }
            ) {
                let _ = store
                    .update(|s| {
                        if let Some(p) =
                            s.certs.get_mut(&cert.name).and_then(|c| c.pending.as_mut())
                        {
                            p.order_url = None;
                        }
                    })
                    .await;
            }
            return Err(e.to_string());
        }
    };
    crashpoint::reached("prepare:issued");
    for warning in &issued.warnings {
        warn!("[cert:{}] {warning}", cert.name);
    }

    let blocks = pem_blocks(&issued.chain_pem);
    let leaf = blocks.first().cloned().unwrap_or_default();
    let issuers: String = blocks.iter().skip(1).cloned().collect();
    for (file, contents) in [
        (CERT_FILE, leaf.as_str()),
        (CHAIN_FILE, issuers.as_str()),
        (FULLCHAIN_FILE, issued.chain_pem.as_str()),
    ] {
        afs::write_atomic(&pending_dir.join(file), contents.as_bytes(), PUBLIC_FILE)
            .map_err(|e| e.to_string())?;
    }
    let material = CertMaterial {
        dir: pending_dir,
        names: names.clone(),
        serial: issued.info.serial.clone(),
        fingerprint: issued.info.sha256_fingerprint.clone(),
        not_after: timestamp(issued.info.not_after),
        issued_at: Utc::now(),
        deployed_at: None,
        tlsa_published_at: None,
        tlsa_joined_ttl: None,
        tlsa_served: None,
        key_type: Some(crate::plan::cert::key_type_name(cert.key_type)),
    };
    info!(
        "[cert:{}] issued: serial {}, valid until {}, for {}",
        cert.name,
        material.serial,
        material.not_after.format("%Y-%m-%d %H:%M:%S UTC"),
        names.join(", ")
    );
    store
        .update(|s| {
            let entry = s.certs.entry(cert.name.clone()).or_default();
            if let Some(old) = entry.prepared.replace(material) {
                entry.superseded.push(old);
            }
            entry.pending = None;
        })
        .await
        .map_err(|e| e.to_string())
}

fn read_key(dir: &Path) -> Option<KeyPem> {
    std::fs::read_to_string(dir.join(KEY_FILE))
        .ok()
        .map(KeyPem::new)
}

/// A fresh directory `STATEDIR/certs/<section>/<time>` (0700) for new material.
fn new_material_dir(statedir: &Path, section: &str) -> Result<PathBuf, String> {
    let base = statedir.join("certs").join(section);
    afs::create_dir(&base, PRIVATE_DIR).map_err(|e| e.to_string())?;
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let dir = base.join(stamp);
    std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    afs::create_dir(&dir, PRIVATE_DIR).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// The PEM blocks of a chain, each with its END line and a newline.
fn pem_blocks(chain: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    chain
        .split_inclusive(END)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| format!("{}\n", block.trim_start()))
        .collect()
}

fn timestamp(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or_else(Utc::now)
}

/// Runs rollover for every certificate with prepared material whose TLSA
/// records every authoritative server serves (or with `--force`), and says
/// which were deployed; one that could not be deployed stays prepared.
pub async fn rollover(config: &Config, store: &Store, options: Options) -> Deployed {
    let state = store.snapshot().await;
    let mut deployed = Deployed::default();
    for cert in &config.certs {
        let Some(prepared) = state.certs.get(&cert.name).and_then(|c| c.prepared.clone()) else {
            info!(
                "[cert:{}] nothing prepared; the current certificate stays",
                cert.name
            );
            continue;
        };
        if let Err(reason) = tlsa::rollover_check(config, cert, &prepared, Utc::now()).await {
            if options.force {
                warn!(
                    "[cert:{}] deploying serial {} although it is not safe for DANE yet (--force): {reason}",
                    cert.name, prepared.serial
                );
            } else {
                error!(
                    "[cert:{}] not rolled over: DANE clients might find no TLSA record for serial {}: {reason}. Run --rollover again then, or deploy anyway with --force",
                    cert.name, prepared.serial
                );
                deployed.failed = true;
                continue;
            }
        }
        if store.dry_run() {
            for name in &prepared.names {
                if let Some(dest) = &cert.destination {
                    println!(
                        "cert {}: deploy serial {} to {}",
                        cert.name,
                        prepared.serial,
                        dest.join(name).display()
                    );
                }
            }
            deployed.materials.push(Material::Cert(cert.name.clone()));
            continue;
        }
        if let Some(dest) = &cert.destination {
            let copied: Result<(), String> = prepared
                .names
                .iter()
                .try_for_each(|name| deploy(&prepared, &dest.join(name)));
            if let Err(message) = copied {
                error!("[cert:{}] rollover failed: {message}", cert.name);
                deployed.failed = true;
                continue;
            }
        }
        crashpoint::reached("rollover:deployed");
        let saved = store
            .update(|s| {
                let entry = s.certs.entry(cert.name.clone()).or_default();
                let mut material = prepared.clone();
                material.deployed_at = Some(Utc::now());
                if let Some(old) = entry.current.replace(material) {
                    entry.superseded.push(old);
                }
                entry.prepared = None;
            })
            .await;
        if let Err(e) = saved {
            error!("[cert:{}] {e}", cert.name);
            deployed.failed = true;
            continue;
        }
        deployed.materials.push(Material::Cert(cert.name.clone()));
        info!(
            "[cert:{}] rolled over to serial {}{}",
            cert.name,
            prepared.serial,
            cert.destination
                .as_ref()
                .map(|d| format!(" in {}", d.display()))
                .unwrap_or_default()
        );
    }
    deployed
}

/// Deploys `material` into `dir` (`DESTINATION/<name>`).
fn deploy(material: &CertMaterial, dir: &Path) -> Result<(), String> {
    afs::create_dir(dir, 0o755).map_err(|e| e.to_string())?;
    let version = format!("..{}", material.serial.to_ascii_lowercase());
    if !version[2..].bytes().all(|b| b.is_ascii_hexdigit()) || version.len() < 3 {
        return Err(format!("serial {:?} is not hexadecimal", material.serial));
    }
    let version_dir = dir.join(&version);
    // A re-run after a crash finds a half-written version of its own: start over.
    afs::remove_tree(&version_dir).map_err(|e| e.to_string())?;
    afs::create_dir(&version_dir, PRIVATE_DIR).map_err(|e| e.to_string())?;
    for file in FILES {
        let contents = std::fs::read(material.dir.join(file))
            .map_err(|e| format!("reading {}: {e}", material.dir.join(file).display()))?;
        let mode = if file == KEY_FILE {
            PRIVATE_FILE
        } else {
            PUBLIC_FILE
        };
        afs::write_atomic(&version_dir.join(file), &contents, mode).map_err(|e| e.to_string())?;
    }
    crashpoint::reached("rollover:version-written");
    afs::swap_symlink(&dir.join(DATA_LINK), Path::new(&version)).map_err(|e| e.to_string())?;
    for file in FILES {
        let link = dir.join(file);
        let target = Path::new(DATA_LINK).join(file);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            afs::swap_symlink(&link, &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Runs cleanup for every certificate: superseded material in the state
/// directory and old versions at the destinations are deleted.
///
/// # Errors
/// [`PhaseFailed`] when something could not be deleted (a later run retries).
pub async fn cleanup(config: &Config, store: &Store) -> Result<(), PhaseFailed> {
    let state = store.snapshot().await;
    let certs_dir = store.statedir().join("certs");
    let mut failed = false;
    for cert in &config.certs {
        let Some(entry) = state.certs.get(&cert.name) else {
            continue;
        };
        for old in &entry.superseded {
            if !old.dir.starts_with(&certs_dir) {
                warn!(
                    "[cert:{}] not deleting {}: outside {}",
                    cert.name,
                    old.dir.display(),
                    certs_dir.display()
                );
                continue;
            }
            if store.dry_run() {
                println!(
                    "cert {}: delete {} (serial {})",
                    cert.name,
                    old.dir.display(),
                    old.serial
                );
                continue;
            }
            match afs::remove_tree(&old.dir) {
                Ok(()) => {
                    info!(
                        "[cert:{}] deleted superseded certificate serial {}",
                        cert.name, old.serial
                    );
                    crashpoint::reached("cleanup:removed");
                }
                Err(e) => {
                    error!("[cert:{}] {e}", cert.name);
                    failed = true;
                }
            }
        }
        if let (Some(dest), Some(current)) = (&cert.destination, &entry.current) {
            for name in &current.names {
                if let Err(message) = prune_versions(&dest.join(name), store.dry_run()) {
                    error!("[cert:{}] {message}", cert.name);
                    failed = true;
                }
            }
        }
        if !store.dry_run() {
            let kept: Vec<PathBuf> = entry
                .superseded
                .iter()
                .filter(|old| old.dir.exists())
                .map(|old| old.dir.clone())
                .collect();
            let saved = store
                .update(|s| {
                    if let Some(c) = s.certs.get_mut(&cert.name) {
                        c.superseded.retain(|old| kept.contains(&old.dir));
                    }
                })
                .await;
            if let Err(e) = saved {
                error!("[cert:{}] {e}", cert.name);
                failed = true;
            }
        }
    }
    if failed { Err(PhaseFailed) } else { Ok(()) }
}

/// Deletes versioned directories in `dir` other than the deployed one.
fn prune_versions(dir: &Path, dry_run: bool) -> Result<(), String> {
    let Ok(current) = std::fs::read_link(dir.join(DATA_LINK)) else {
        return Ok(());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("..") || name == DATA_LINK || Path::new(name.as_ref()) == current {
            continue;
        }
        if dry_run {
            println!("delete {}", entry.path().display());
            continue;
        }
        afs::remove_tree(&entry.path()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(renew_days: u32, force: bool) -> CertSection {
        CertSection {
            name: "web".into(),
            span: None,
            directory: "https://ca.test/dir".into(),
            email: None,
            eab: None,
            cacert: None,
            key_type: crate::material::cert::KeyType::EcdsaP256,
            destination: None,
            force,
            renew_days,
            ari: true,
            rate_limit_wait: std::time::Duration::from_secs(120),
            domains: Vec::new(),
        }
    }

    fn material(names: &[&str], not_after: DateTime<Utc>) -> CertMaterial {
        CertMaterial {
            dir: PathBuf::from("/x"),
            names: names.iter().map(|s| s.to_string()).collect(),
            serial: "01".into(),
            fingerprint: "00".into(),
            not_after,
            issued_at: not_after,
            deployed_at: None,
            tlsa_published_at: None,
            tlsa_joined_ttl: None,
            tlsa_served: None,
            key_type: None,
        }
    }

    #[test]
    fn when_prepare_renews() {
        let now = Utc::now();
        let names = vec!["a.test".to_string(), "b.test".to_string()];
        let fresh = CertState {
            current: Some(material(
                &["b.test", "a.test"],
                now + chrono::Duration::days(60),
            )),
            ..CertState::default()
        };
        assert_eq!(
            renewal_reason(&cert(30, false), &names, &fresh, now, false),
            None
        );
        assert!(renewal_reason(&cert(30, true), &names, &fresh, now, false).is_some());
        assert!(renewal_reason(&cert(30, false), &names, &fresh, now, true).is_some());
        assert!(renewal_reason(&cert(61, false), &names, &fresh, now, false).is_some());
        assert!(
            renewal_reason(&cert(30, false), &names[..1], &fresh, now, false)
                .is_some_and(|r| r.contains("names changed"))
        );
        assert!(
            renewal_reason(&cert(30, false), &names, &CertState::default(), now, false).is_some()
        );
        // A prepared certificate counts: a second prepare keeps it.
        let prepared = CertState {
            prepared: Some(material(
                &["a.test", "b.test"],
                now + chrono::Duration::days(90),
            )),
            ..CertState::default()
        };
        assert_eq!(
            renewal_reason(&cert(30, false), &names, &prepared, now, false),
            None
        );
    }

    #[test]
    fn chain_splits_into_blocks() {
        let chain = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(chain);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].contains("AAA") && blocks[1].contains("BBB"));
        assert!(blocks[1].starts_with("-----BEGIN") && blocks[1].ends_with("-----\n"));
    }
}
