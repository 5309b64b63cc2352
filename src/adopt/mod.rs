//! `--adopt`: takes the certificates and DKIM keys already in place (deployed
//! by the Python original, certbot, lego or dehydrated) as each section's
//! current material, so that the next run renews only when due instead of at
//! once.
//!
//! Certificates are looked for at `destination` for each name of a `[cert]`
//! section: `NAME/fullchain.pem` (or `NAME/cert.pem` and `NAME/chain.pem`)
//! with `NAME/privkey.pem` (the original, certbot's `live/`, dehydrated's
//! `certs/`), or lego's `NAME.crt` and `NAME.key` (with `NAME.issuer.crt`).
//! DKIM keys at `keylocation/keyname`, with the selector from the signing
//! configuration or, failing that, from the DKIM record in DNS that publishes
//! the key. Every section is checked first ([`check`]); if one is refused,
//! nothing at all is changed. Adopted material is copied into the state
//! directory (keys 0600, atomic writes) and recorded in the state as current.

pub(crate) mod check;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use log::{error, info, warn};

use crate::apply::StepError;
use crate::apply::fs::{self as afs, PRIVATE_DIR, PRIVATE_FILE, PUBLIC_FILE};
use crate::clock;
use crate::config::cert::CertSection;
use crate::config::dkim::{DkimHandler, DkimSection};
use crate::config::model::Config;
use crate::dns::provider::Providers;
use crate::dns::record::{Name, RData, RecordType};
use crate::state::{CertMaterial, DkimKeyState, LoggedStep, Store};
use check::{AdoptedCert, AdoptedDkim, DkimContext, FoundCert};

/// What `--adopt` found for one section: the section, where, and what.
enum Finding<'a> {
    Cert(&'a CertSection, String, AdoptedCert),
    Dkim(&'a DkimSection, String, AdoptedDkim, Option<PathBuf>),
}

/// Adopts what is in place for every section. Returns false when something
/// was refused (then nothing was changed) or when nothing was found.
pub(crate) async fn adopt(
    config: &Config,
    providers: &Providers,
    store: &Store,
    force: bool,
) -> bool {
    let now = clock::now();
    let state = store.snapshot().await;
    let mut findings = Vec::new();
    let mut refusals = Vec::new();
    let mut absent = Vec::new();
    for cert in &config.certs {
        let Some(dest) = &cert.destination else {
            absent.push(format!("[cert:{}] has no destination", cert.name));
            continue;
        };
        let found = match find_cert(dest, &cert.domains) {
            None => {
                absent.push(format!(
                    "[cert:{}]: no certificate at {} for {}",
                    cert.name,
                    dest.display(),
                    names_text(&cert.domains)
                ));
                continue;
            }
            Some(Err(e)) => {
                refusals.push(format!("[cert:{}] {e}", cert.name));
                continue;
            }
            Some(Ok(found)) => found,
        };
        let adopted = match check::check_cert(cert, &found, now) {
            Ok(adopted) => adopted,
            Err(e) => {
                refusals.push(format!("[cert:{}] {e}", cert.name));
                continue;
            }
        };
        let entry = state.certs.get(&cert.name);
        let current = entry.and_then(|e| e.current.as_ref());
        if current.is_some_and(|c| c.fingerprint == adopted.info.sha256_fingerprint) {
            info!(
                "[cert:{}] the certificate at {} (serial {}) is already the current one",
                cert.name, found.place, adopted.info.serial
            );
            continue;
        }
        if let Some(existing) = current.or(entry.and_then(|e| e.prepared.as_ref()))
            && !force
        {
            refusals.push(format!(
                "[cert:{}] already has a certificate of its own (serial {}); --adopt --force replaces it with the one at {}",
                cert.name, existing.serial, found.place
            ));
            continue;
        }
        findings.push(Finding::Cert(cert, found.place, adopted));
    }
    for dkim in &config.dkims {
        let path = dkim.key_path();
        let key_pem = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                absent.push(format!(
                    "[dkim:{}]: no key at {}",
                    dkim.name,
                    path.display()
                ));
                continue;
            }
            Err(e) => {
                refusals.push(format!(
                    "[dkim:{}] cannot read {}: {e}",
                    dkim.name,
                    path.display()
                ));
                continue;
            }
        };
        match adopt_dkim_check(config, providers, dkim, &key_pem, now).await {
            Ok(adopted) => {
                let current = state.dkim.get(&dkim.name).and_then(|d| d.current.as_ref());
                if current.is_some_and(|c| c.selector == adopted.selector) {
                    info!(
                        "[dkim:{}] selector {} is already the current key",
                        dkim.name, adopted.selector
                    );
                    continue;
                }
                if let Some(existing) = current
                    && !force
                {
                    refusals.push(format!(
                        "[dkim:{}] already has a key of its own (selector {}); --adopt --force replaces it with the one at {}",
                        dkim.name,
                        existing.selector,
                        path.display()
                    ));
                    continue;
                }
                let installed = installed_file(dkim);
                findings.push(Finding::Dkim(
                    dkim,
                    path.display().to_string(),
                    adopted,
                    installed,
                ));
            }
            Err(e) => refusals.push(format!("[dkim:{}] {e}", dkim.name)),
        }
    }

    for line in &absent {
        info!("{line}; nothing to adopt there");
    }
    if !refusals.is_empty() {
        for refusal in &refusals {
            error!("{refusal}");
        }
        error!("nothing was adopted; nothing was changed");
        return false;
    }
    if findings.is_empty() {
        info!("nothing to adopt");
        return absent.is_empty();
    }
    let mut ok = true;
    for finding in findings {
        let result = match &finding {
            Finding::Cert(cert, place, adopted) => record_cert(store, cert, place, adopted).await,
            Finding::Dkim(dkim, place, adopted, installed) => {
                record_dkim(store, dkim, place, adopted, installed.clone()).await
            }
        };
        if let Err(e) = result {
            error!("{e}");
            ok = false;
        }
    }
    ok
}

fn names_text(names: &[Name]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The certificate files for the first of `names` that has some at `dest`.
/// `None` when there are none; an error when they cannot be read or are
/// incomplete.
pub(crate) fn find_cert(dest: &Path, names: &[Name]) -> Option<Result<FoundCert, String>> {
    for name in names {
        let dir = dest.join(name.as_str());
        let file = |f: &str| dir.join(f);
        if file("fullchain.pem").exists() || file("cert.pem").exists() {
            return Some(read_dir_layout(&dir));
        }
        // lego: certificates/NAME.crt, `*.` written as `_.`.
        let base = name.as_str().replace('*', "_");
        for dir in [dest.to_path_buf(), dest.join("certificates")] {
            let crt = dir.join(format!("{base}.crt"));
            if crt.exists() {
                return Some(read_lego_layout(&dir, &base));
            }
        }
    }
    None
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `fullchain.pem` (or `cert.pem` + `chain.pem`) and `privkey.pem` in `dir`.
fn read_dir_layout(dir: &Path) -> Result<FoundCert, String> {
    let fullchain = dir.join("fullchain.pem");
    let chain_pem = if fullchain.exists() {
        read(&fullchain)?
    } else {
        let chain = dir.join("chain.pem");
        let issuers = if chain.exists() {
            read(&chain)?
        } else {
            String::new()
        };
        format!("{}\n{issuers}", read(&dir.join("cert.pem"))?)
    };
    let key = dir.join("privkey.pem");
    if !key.exists() {
        return Err(format!(
            "{} has a certificate but no private key (privkey.pem)",
            dir.display()
        ));
    }
    Ok(FoundCert {
        place: dir.display().to_string(),
        chain_pem,
        key_pem: read(&key)?,
    })
}

/// lego's `BASE.crt` (the chain unless lego ran with `--no-bundle`, then
/// `BASE.issuer.crt` holds the issuers) and `BASE.key`.
fn read_lego_layout(dir: &Path, base: &str) -> Result<FoundCert, String> {
    let crt = dir.join(format!("{base}.crt"));
    let mut chain_pem = read(&crt)?;
    let issuer = dir.join(format!("{base}.issuer.crt"));
    if check::pem_blocks(&chain_pem).len() < 2 && issuer.exists() {
        chain_pem = format!("{chain_pem}\n{}", read(&issuer)?);
    }
    let key = dir.join(format!("{base}.key"));
    if !key.exists() {
        return Err(format!(
            "{} has no private key next to it ({base}.key)",
            crt.display()
        ));
    }
    Ok(FoundCert {
        place: crt.display().to_string(),
        chain_pem,
        key_pem: read(&key)?,
    })
}

/// Checks the DKIM key of `dkim` against its signing configuration and DNS.
async fn adopt_dkim_check(
    config: &Config,
    providers: &Providers,
    dkim: &DkimSection,
    key_pem: &str,
    now: DateTime<Utc>,
) -> Result<AdoptedDkim, String> {
    let path = dkim.key_path();
    let key_text = path.display().to_string();
    let signing = match &dkim.handler {
        DkimHandler::Rspamd { conf, .. } => Some(conf.clone()),
        DkimHandler::OpenDkim { key_table, .. } => Some(key_table.clone()),
        DkimHandler::File => None,
    };
    let mut configured_selector = None;
    if let Some(conf) = signing.filter(|c| c.exists()) {
        let text = read(&conf)?;
        // A key installed by this program is a link to SELECTOR.key, and the
        // configuration names that file.
        let named = std::fs::canonicalize(&path).unwrap_or(path.clone());
        let mut selector = check::selector_in_config(&text, &key_text)
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        if selector.is_none() && named != path {
            selector = check::selector_in_config(&text, &named.display().to_string())
                .map_err(|e| format!("{}: {e}", conf.display()))?;
        }
        configured_selector = selector;
    }
    let records = dkim_records(config, providers, dkim).await?;
    let file_time = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    check::check_dkim(
        dkim,
        key_pem,
        &DkimContext {
            place: key_text,
            configured_selector,
            records: &records,
            file_time,
            now,
        },
    )
}

/// The TXT records below `_domainkey.DOMAIN` of each domain of `dkim`, read
/// from its zone through the domain's provider (each zone once).
async fn dkim_records(
    config: &Config,
    providers: &Providers,
    dkim: &DkimSection,
) -> Result<Vec<(Name, String)>, String> {
    let mut zones: BTreeMap<(usize, Name), Vec<crate::dns::record::Record>> = BTreeMap::new();
    let mut out = Vec::new();
    for name in &dkim.domains {
        let Some(domain) = config.domains.iter().find(|d| &d.name == name) else {
            continue;
        };
        let id = domain.provider.id;
        let Some(provider) = providers.get(id) else {
            continue;
        };
        let zone = provider.find_zone(name).await.map_err(|e| {
            format!("cannot find the zone of {name} to compare the key with its DKIM record: {e}")
        })?;
        let key = (id, zone.clone());
        if !zones.contains_key(&key) {
            let records = provider.read_zone(&zone).await.map_err(|e| {
                format!("cannot read zone {zone} to compare the key with its DKIM record: {e}")
            })?;
            zones.insert(key.clone(), records);
        }
        let base = name
            .prepend("_domainkey")
            .map_err(|e| format!("{name}: {e}"))?;
        for record in zones.get(&key).into_iter().flatten() {
            if let RData::Txt(text) = &record.data
                && record.record_type() == RecordType::Txt
                && record.name.labels_below(&base).is_some()
            {
                out.push((record.name.clone(), text.clone()));
            }
        }
    }
    Ok(out)
}

/// The file `keylocation/keyname` points at when it is a link into
/// `keylocation` (a key this program installed); `None` for a plain file.
fn installed_file(dkim: &DkimSection) -> Option<PathBuf> {
    let target = std::fs::read_link(dkim.key_path()).ok()?;
    let full = dkim.key_location.join(target);
    (full.parent() == Some(dkim.key_location.as_path())).then_some(full)
}

fn logged(s: &mut crate::state::State, key: String, at: DateTime<Utc>) {
    s.sections.entry(key).or_default().last_success = Some(LoggedStep {
        at,
        step: "adopt".into(),
        error: None,
    });
}

/// Copies an adopted certificate into the state directory and records it as
/// the current one.
async fn record_cert(
    store: &Store,
    cert: &CertSection,
    place: &str,
    adopted: &AdoptedCert,
) -> Result<(), StepError> {
    let info = &adopted.info;
    let not_after = Utc
        .timestamp_opt(info.not_after, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let issued_at = Utc
        .timestamp_opt(info.not_before, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    for note in &adopted.notes {
        warn!("[cert:{}] {note}", cert.name);
    }
    if store.dry_run() {
        info!(
            "[cert:{}] would adopt the certificate at {place}: serial {}, valid until {}, for {}",
            cert.name,
            info.serial,
            not_after.format(crate::plan::timing::WHEN),
            info.sans.join(", ")
        );
        return Ok(());
    }
    let dir = crate::apply::cert::new_material_dir(store.statedir(), &cert.name)?;
    afs::write_atomic(
        &dir.join("privkey.pem"),
        adopted.key.expose().as_bytes(),
        PRIVATE_FILE,
    )?;
    let fullchain = format!("{}{}", adopted.leaf_pem, adopted.issuers_pem);
    for (file, contents) in [
        ("cert.pem", adopted.leaf_pem.as_str()),
        ("chain.pem", adopted.issuers_pem.as_str()),
        ("fullchain.pem", fullchain.as_str()),
    ] {
        afs::write_atomic(&dir.join(file), contents.as_bytes(), PUBLIC_FILE)?;
    }
    let now = clock::now();
    let material = CertMaterial {
        dir,
        names: crate::plan::cert::names_of(cert),
        serial: info.serial.clone(),
        fingerprint: info.sha256_fingerprint.clone(),
        not_after,
        issued_at,
        deployed_at: Some(now),
        tlsa_published_at: None,
        tlsa_joined_ttl: None,
        tlsa_served: None,
        key_type: Some(adopted.key_type.clone()),
    };
    store
        .update(|s| {
            let entry = s.certs.entry(cert.name.clone()).or_default();
            if let Some(old) = entry.current.replace(material) {
                entry.superseded.push(old);
            }
            entry.ari = None;
            logged(s, format!("cert:{}", cert.name), now);
        })
        .await?;
    // Without the CA's renewal information yet, `renewdays` decides.
    let due = not_after - chrono::Duration::days(i64::from(cert.renew_days));
    info!(
        "[cert:{}] adopted the certificate at {place}: serial {}, valid until {}, for {}; renewal is due {} (renewdays = {}){}",
        cert.name,
        info.serial,
        not_after.format(crate::plan::timing::WHEN),
        info.sans.join(", "),
        due.format(crate::plan::timing::WHEN),
        cert.renew_days,
        if cert.ari {
            ", or when the CA's renewal information says"
        } else {
            ""
        }
    );
    Ok(())
}

/// Copies an adopted DKIM key into the state directory and records it as the
/// current one.
async fn record_dkim(
    store: &Store,
    dkim: &DkimSection,
    place: &str,
    adopted: &AdoptedDkim,
    installed_file: Option<PathBuf>,
) -> Result<(), StepError> {
    for note in &adopted.notes {
        warn!("[dkim:{}] {note}", dkim.name);
    }
    if store.dry_run() {
        info!(
            "[dkim:{}] would adopt the {} key at {place} as selector {}",
            dkim.name, adopted.key_type, adopted.selector
        );
        return Ok(());
    }
    let key_file = store
        .statedir()
        .join("dkim")
        .join(&dkim.name)
        .join(format!("{}.key", adopted.selector));
    if let Some(dir) = key_file.parent() {
        afs::create_dir(dir, PRIVATE_DIR)?;
    }
    afs::write_atomic(&key_file, adopted.key.expose().as_bytes(), PRIVATE_FILE)?;
    let now = clock::now();
    let entry = DkimKeyState {
        selector: adopted.selector.clone(),
        key_file,
        key_type: adopted.key_type.clone(),
        txt: adopted.txt.clone(),
        created: adopted.created,
        domains: adopted.published.iter().map(ToString::to_string).collect(),
        published: (!adopted.published.is_empty()).then_some(now),
        installed: Some(now),
        installed_file,
        retired: None,
        joined_ttl: None,
        served: None,
    };
    store
        .update(|s| {
            let state = s.dkim.entry(dkim.name.clone()).or_default();
            if let Some(mut old) = state.current.replace(entry) {
                old.retired = Some(now);
                state.retired.push(old);
            }
            logged(s, format!("dkim:{}", dkim.name), now);
        })
        .await?;
    info!(
        "[dkim:{}] adopted the {} key at {place} as selector {}; a new key is due {} (rotatedays = {})",
        dkim.name,
        adopted.key_type,
        adopted.selector,
        (adopted.created + chrono::Duration::days(i64::from(dkim.rotate_days)))
            .format(crate::plan::timing::WHEN),
        dkim.rotate_days
    );
    Ok(())
}
