//! The `zonefile` provider: edits an RFC 1035 master file that an authoritative
//! server loads, then runs `reloadcommand` so the server serves it.
//!
//! The zone is the owner of the file's SOA record. Reading parses the whole
//! file (a syntax error names file and line, and nothing is written); applying
//! removes the lines of deleted records, appends new records in presentation
//! format with absolute names, raises the SOA serial, and replaces the file
//! atomically with its mode and owner kept. Comments, layout and all other
//! records stay byte for byte. When the reload command fails, the previous
//! text is put back, so the file and the server keep agreeing and the next run
//! repeats the whole change.

mod edit;
mod format;
mod lexer;
mod parse;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{ChangeSet, DnsProvider, KeyError, KeySpec, KeyValues, ProviderError, ProviderSpec};
use crate::apply::{command, fs};
use crate::dns::observe::NsHosts;
use crate::dns::record::{Name, Record};

pub use edit::next_serial;
pub use format::zone_line;

pub const SPEC: ProviderSpec = ProviderSpec {
    name: "zonefile",
    aliases: &[],
    keys: &[
        KeySpec {
            name: "file",
            required: true,
            secret: false,
            doc: "the zone file (RFC 1035 master file) to edit",
        },
        KeySpec {
            name: "reloadcommand",
            required: false,
            secret: false,
            doc: "command run after the file changed, as words (quotes respected, no shell)",
        },
        KeySpec {
            name: "zone",
            required: false,
            secret: false,
            doc: "origin of relative names when the file has no $ORIGIN",
        },
    ],
    // The edited file replaces the old one at once.
    capabilities: super::capability::FULL_ATOMIC,
    build: |keys| Ok(Arc::new(ZoneFileProvider::from_keys(keys)?)),
};

/// How long `reloadcommand` may run.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A configured zone file.
#[derive(Debug)]
pub struct ZoneFileProvider {
    pub path: PathBuf,
    pub reload: Option<Vec<String>>,
    /// The origin before any `$ORIGIN` in the file.
    pub origin: Option<Name>,
    pub reload_timeout: Duration,
    /// One edit at a time through this instance (read, change, write, reload).
    lock: tokio::sync::Mutex<()>,
}

impl ZoneFileProvider {
    /// Builds the provider from its config keys (the file is read later).
    ///
    /// # Errors
    /// The key that is missing or invalid.
    pub fn from_keys(keys: &KeyValues) -> Result<Self, KeyError> {
        let value = |key: &str| keys.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let path = value("file")
            .ok_or_else(|| KeyError::new("file", "missing (required by handler zonefile)"))?;
        let reload = value("reloadcommand")
            .map(command::split)
            .transpose()
            .map_err(|e| KeyError::new("reloadcommand", e.to_string()))?;
        let origin = value("zone")
            .map(Name::parse)
            .transpose()
            .map_err(|e| KeyError::new("zone", format!("not a zone name: {e}")))?;
        Ok(ZoneFileProvider {
            path: PathBuf::from(path),
            reload,
            origin,
            reload_timeout: RELOAD_TIMEOUT,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    fn error(&self, message: String) -> ProviderError {
        ProviderError::Api {
            provider: "zonefile".into(),
            message,
        }
    }

    /// The file's text and its parse.
    fn load(&self) -> Result<(String, parse::ZoneFile), ProviderError> {
        let path = self.path.display();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| self.error(format!("cannot read {path}: {e}")))?;
        let file = parse::parse(&text, self.origin.as_ref()).map_err(|e| {
            self.error(format!(
                "{path}:{}: {}; the file was left unchanged",
                e.line, e.message
            ))
        })?;
        Ok((text, file))
    }

    /// The parse, checked to be the zone `zone`.
    fn load_zone(&self, zone: &Name) -> Result<(String, parse::ZoneFile), ProviderError> {
        let (text, file) = self.load()?;
        if &file.zone != zone {
            return Err(self.error(format!(
                "{} holds zone {}, not {zone}",
                self.path.display(),
                file.zone
            )));
        }
        Ok((text, file))
    }

    /// Refuses a file without any write permission bit: its owner marked it
    /// as not to be edited (root could replace it all the same).
    fn check_writable(&self, zone: &Name) -> Result<(), ProviderError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| self.error(format!("zone {zone}: {}: {e}", self.path.display())))?;
        if meta.permissions().mode() & 0o222 == 0 {
            return Err(self.error(format!(
                "zone {zone}: {} is read-only (mode {:o}); nothing was changed",
                self.path.display(),
                meta.permissions().mode() & 0o7777
            )));
        }
        Ok(())
    }

    fn write(&self, zone: &Name, text: &str) -> Result<(), ProviderError> {
        fs::replace_keeping_metadata(&self.path, text.as_bytes())
            .map_err(|e| self.error(format!("zone {zone}: {e}; nothing was changed")))
    }

    /// Runs the reload command, if there is one.
    async fn reload(&self) -> Result<(), String> {
        let Some(argv) = &self.reload else {
            return Ok(());
        };
        command::run(argv, self.reload_timeout)
            .await
            .map(|_| ())
            .map_err(|e| format!("reload command: {e}"))
    }
}

/// The zone and the records (of the handled types) of zone-file text, for
/// code that seeds a server from such text; `origin` is the origin before any
/// `$ORIGIN`.
///
/// # Errors
/// `line N: what is wrong` for the first syntax error.
pub fn parse_zone_text(text: &str, origin: Option<&Name>) -> Result<(Name, Vec<Record>), String> {
    let file = parse::parse(text, origin).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let records = file.records();
    Ok((file.zone, records))
}

/// Today's date as YYYYMMDD (UTC), for date-based serials.
fn today() -> u32 {
    let date = chrono::Utc::now().date_naive();
    use chrono::Datelike;
    u32::try_from(date.year()).unwrap_or(0) * 10_000 + date.month() * 100 + date.day()
}

#[async_trait]
impl DnsProvider for ZoneFileProvider {
    fn describe(&self) -> String {
        format!("zonefile {}", self.path.display())
    }

    /// The owner of the file's SOA record, when `name` is at or below it.
    async fn find_zone(&self, name: &Name) -> Result<Name, ProviderError> {
        let (_, file) = self.load()?;
        if name.is_at_or_below(&file.zone) {
            Ok(file.zone)
        } else {
            Err(ProviderError::NoZone {
                name: name.to_string(),
                server: self.describe(),
                reason: format!("the file holds zone {}", file.zone),
            })
        }
    }

    async fn read_zone(&self, zone: &Name) -> Result<Vec<Record>, ProviderError> {
        Ok(self.load_zone(zone)?.1.records())
    }

    /// The zone's NS records from the file, with the file's own A/AAAA
    /// records for them (the system resolver is asked for the others).
    async fn nameserver_hosts(&self, zone: &Name) -> Result<NsHosts, ProviderError> {
        let records = self.load_zone(zone)?.1.records();
        Ok(NsHosts::from_records(self.describe(), zone, &records))
    }

    async fn apply(&self, zone: &Name, changes: &ChangeSet) -> Result<(), ProviderError> {
        let _guard = self.lock.lock().await;
        let (text, file) = self.load_zone(zone)?;
        let edited =
            edit::edit(&text, &file, self.origin.as_ref(), changes, today()).map_err(|e| {
                self.error(format!(
                    "zone {zone}: {}: {e}; the file was left unchanged",
                    self.path.display()
                ))
            })?;
        let Some(edited) = edited else {
            return Ok(());
        };
        self.check_writable(zone)?;
        if std::fs::read_to_string(&self.path).ok().as_deref() != Some(text.as_str()) {
            return Err(self.error(format!(
                "zone {zone}: {} changed while it was being edited; nothing was changed",
                self.path.display()
            )));
        }
        self.write(zone, &edited.text)?;
        log::debug!(
            "zonefile: wrote {} ({} added, {} removed, serial {})",
            self.path.display(),
            edited.added,
            edited.removed,
            edited.serial
        );
        if let Err(failure) = self.reload().await {
            let restored = match fs::replace_keeping_metadata(&self.path, text.as_bytes()) {
                Ok(()) => "the file was restored to its previous text".to_string(),
                Err(e) => format!("restoring the previous text failed too: {e}"),
            };
            return Err(self.error(format!("zone {zone}: {failure}; {restored}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::RData;

    #[test]
    fn zone_text_for_seeding() {
        let (zone, records) = parse_zone_text(
            "$ORIGIN example.net.\n@ 60 SOA ns1 h 1 2 3 4 5\nwww 60 A 192.0.2.1\n",
            None,
        )
        .unwrap();
        assert_eq!(zone.as_str(), "example.net");
        assert_eq!(records.len(), 2);
        assert_eq!(
            parse_zone_text("www 60 A 192.0.2.1\n", None).unwrap_err(),
            "line 1: relative name \"www\" but no $ORIGIN before it (add $ORIGIN or set the key zone)"
        );
    }

    /// Mutated zone files (bytes that matter to the syntax inserted, deleted
    /// and swapped at pseudo-random places) never panic the parser or the
    /// editor, and an edit that succeeds always parses again.
    #[test]
    fn mutated_files_never_panic() {
        const BASE: &str = "; c\n$ORIGIN example.com.\n$TTL 1h\n@ IN SOA ns1 h ( 1 2 3 4 5 )\n  NS ns1\n\
                            ns1 A 192.0.2.1\nwww 60 IN TXT \"a\\\"b\" c ; x\n_443._tcp TLSA 3 1 1 ABCD\n\
                            m MX 10 m\u{e9}\n";
        const PIECES: &[&str] = &[
            "\"", "(", ")", ";", "\\", "\n", " ", "\t", "@", ".", "$TTL", "$ORIGIN", "\u{e9}",
            "\\0", "1", "IN",
        ];
        let zone = Name::parse("example.com").unwrap();
        let changes = ChangeSet {
            adds: vec![Record::new(zone.clone(), 60, RData::Txt("x\"y".into()))],
            deletes: vec![Record::new(
                Name::parse("ns1.example.com").unwrap(),
                1,
                RData::A("192.0.2.1".parse().unwrap()),
            )],
        };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for _ in 0..3000 {
            let mut text = BASE.to_string();
            for _ in 0..1 + next(4) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => text.insert_str(at, PIECES[next(PIECES.len())]),
                    1 => {
                        if let Some(c) = text[at..].chars().next() {
                            text.replace_range(at..at + c.len_utf8(), "");
                        }
                    }
                    _ => text.truncate(at),
                }
            }
            let Ok(file) = parse::parse(&text, None) else {
                continue;
            };
            if let Ok(Some(edited)) = edit::edit(&text, &file, None, &changes, 20250101) {
                assert!(parse::parse(&edited.text, None).is_ok(), "{text:?}");
            }
        }
    }
}
