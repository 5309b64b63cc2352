//! Applies a [`ChangeSet`] to the text of a zone file: the lines of deleted
//! records are removed, new records are appended in presentation format, the
//! SOA serial is raised; every other byte stays as it was (comments, layout,
//! records of other types). Pure: the caller reads and writes the file.
//!
//! As in an RFC 2136 UPDATE, adds come before deletes: a record both added and
//! deleted ends up absent, adding a record that is there changes nothing, and
//! deleting one that is not there is no error.

use std::collections::BTreeSet;

use super::format::zone_line;
use super::parse::{EntryKind, ZoneFile, parse};
use crate::dns::provider::ChangeSet;
use crate::dns::record::{Name, RData, Record, RecordType};

/// The new text of a file and what changed.
#[derive(Debug)]
pub(super) struct Edited {
    pub text: String,
    pub serial: u32,
    pub added: usize,
    pub removed: usize,
}

/// The serial after `old` on the day `today` (YYYYMMDD): `YYYYMMDD00` when that
/// is larger, otherwise one more (the common date-based convention; a counter
/// serial becomes a date serial, which is an increase in RFC 1982 arithmetic
/// as long as the old one is below 2^31 + 1).
pub fn next_serial(old: u32, today: u32) -> u32 {
    let dated = today.saturating_mul(100);
    if old < dated {
        dated
    } else {
        old.wrapping_add(1)
    }
}

/// The file text after `changes`; `Ok(None)` when nothing would change.
///
/// # Errors
/// When the edited text would not mean exactly the old records plus and minus
/// the changes (an internal safeguard: the file is then left alone).
pub(super) fn edit(
    text: &str,
    file: &ZoneFile,
    origin: Option<&Name>,
    changes: &ChangeSet,
    today: u32,
) -> Result<Option<Edited>, String> {
    let record_at = |i: usize| match &file.entries[i].kind {
        EntryKind::Record {
            record: Some(r), ..
        } => Some(r),
        _ => None,
    };
    if let Some(outside) = changes
        .adds
        .iter()
        .chain(&changes.deletes)
        .find(|r| !r.name.is_at_or_below(&file.zone))
    {
        return Err(format!("{} is not in zone {}", outside.name, file.zone));
    }
    let Some((soa_record, soa)) = file.soa_record() else {
        return Err("the SOA record cannot be read".into());
    };
    let removed: BTreeSet<usize> = (0..file.entries.len())
        .filter(|&i| i != file.soa)
        .filter(|&i| record_at(i).is_some_and(|r| changes.deletes.iter().any(|d| d.same_as(r))))
        .collect();
    let mut added: Vec<&Record> = Vec::new();
    for add in changes
        .adds
        .iter()
        .filter(|r| r.record_type() != RecordType::Soa)
    {
        let present = (0..file.entries.len())
            .filter(|i| !removed.contains(i))
            .any(|i| record_at(i).is_some_and(|r| r.same_as(add)));
        let deleted = changes.deletes.iter().any(|d| d.same_as(add));
        if !present && !deleted && !added.iter().any(|a| a.same_as(add)) {
            added.push(add);
        }
    }
    // A new SOA replaces the old one; only a change beyond the serial counts.
    let new_soa = changes.adds.iter().find_map(|r| match &r.data {
        RData::Soa(new) if r.name == file.zone => {
            let mut compared = new.clone();
            compared.serial = soa.serial;
            (compared != *soa || r.ttl != soa_record.ttl).then_some((r, new))
        }
        _ => None,
    });
    if removed.is_empty() && added.is_empty() && new_soa.is_none() {
        return Ok(None);
    }

    let serial = next_serial(soa.serial, today);
    let mut out = String::with_capacity(text.len() + 80 * added.len());
    let mut cursor = 0;
    let mut re_anchored = BTreeSet::new();
    for (i, entry) in file.entries.iter().enumerate() {
        out.push_str(&text[cursor..entry.span.start]);
        cursor = entry.span.end;
        let original = &text[entry.span.clone()];
        if removed.contains(&i) {
            continue;
        }
        if i == file.soa {
            if let Some((record, new)) = new_soa {
                let mut new = new.clone();
                new.serial = serial;
                out.push_str(&zone_line(&Record::new(
                    record.name.clone(),
                    record.ttl,
                    RData::Soa(new),
                )));
                out.push_str(line_end(original));
            } else if let EntryKind::Record {
                serial: Some(at), ..
            } = &entry.kind
            {
                out.push_str(&text[entry.span.start..at.start]);
                out.push_str(&serial.to_string());
                out.push_str(&text[at.end..entry.span.end]);
            }
            continue;
        }
        if let EntryKind::Record {
            owner_given: false,
            owner_source,
            owner_fqdn,
            ..
        } = &entry.kind
            && removed.contains(owner_source)
            && re_anchored.insert(*owner_source)
        {
            // The record this one took its owner from is gone: state the owner.
            out.push_str(owner_fqdn);
        }
        out.push_str(original);
    }
    out.push_str(&text[cursor..]);
    if !added.is_empty() && !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for record in &added {
        out.push_str(&zone_line(record));
        out.push('\n');
    }

    let expected: Vec<Record> = (0..file.entries.len())
        .filter(|i| !removed.contains(i))
        .filter_map(|i| {
            let r = record_at(i)?;
            if i != file.soa {
                return Some(r.clone());
            }
            let (ttl, mut new) = match new_soa {
                Some((record, new)) => (record.ttl, new.clone()),
                None => (r.ttl, soa.clone()),
            };
            new.serial = serial;
            Some(Record::new(r.name.clone(), ttl, RData::Soa(new)))
        })
        .chain(added.iter().map(|r| (*r).clone()))
        .collect();
    verify(&out, origin, &expected, file, &removed)?;
    Ok(Some(Edited {
        text: out,
        serial,
        added: added.len(),
        removed: removed.len(),
    }))
}

/// The newline ending `entry_text`, if any (the last line may lack one).
fn line_end(entry_text: &str) -> &'static str {
    if entry_text.ends_with("\r\n") {
        "\r\n"
    } else if entry_text.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// Parses the edited text again and compares it with what it must hold: the
/// expected records (with TTLs) and the same opaque entries at the same owners.
fn verify(
    text: &str,
    origin: Option<&Name>,
    expected: &[Record],
    before: &ZoneFile,
    removed: &BTreeSet<usize>,
) -> Result<(), String> {
    let after = parse(text, origin).map_err(|e| {
        format!(
            "the edited file would not parse (line {}: {})",
            e.line, e.message
        )
    })?;
    let all = |records: Vec<&Record>| {
        let mut lines: Vec<String> = records.into_iter().map(zone_line).collect();
        lines.sort();
        lines
    };
    let opaque = |file: &ZoneFile, skip: &BTreeSet<usize>| -> Vec<String> {
        file.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .filter_map(|(_, e)| match &e.kind {
                EntryKind::Record {
                    record: None,
                    owner_fqdn,
                    ..
                } => Some(owner_fqdn.to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    };
    let found: Vec<&Record> = after
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Record {
                record: Some(r), ..
            } => Some(r),
            _ => None,
        })
        .collect();
    if all(found) != all(expected.iter().collect())
        || opaque(&after, &BTreeSet::new()) != opaque(before, removed)
    {
        return Err(
            "editing would change records other than the ones asked for (a record without its own TTL following a removed one?)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: u32 = 20250314;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    fn record(owner: &str, ttl: u32, data: RData) -> Record {
        Record::new(name(owner), ttl, data)
    }

    fn a(owner: &str, ip: &str) -> Record {
        record(owner, 300, RData::A(ip.parse().unwrap()))
    }

    fn run(text: &str, changes: ChangeSet) -> Option<Edited> {
        let file = parse(text, None).unwrap();
        edit(text, &file, None, &changes, TODAY).unwrap()
    }

    const ZONE: &str = "\
; the example zone
$ORIGIN example.com.
$TTL 3600
@   IN SOA ns1 hostmaster (
        2024010100 ; serial
        3600 600 86400 300 )
    IN NS ns1          ; primary
ns1 IN A 192.0.2.53
www 300 IN A 192.0.2.1
    300 IN A 192.0.2.2 ; second
    300 IN AAAA 2001:db8::1
mail IN MX 10 mx.example.net.
";

    #[test]
    fn serial_is_dated_or_incremented() {
        assert_eq!(next_serial(1, TODAY), 2025031400);
        assert_eq!(next_serial(2025031400, TODAY), 2025031401);
        assert_eq!(next_serial(2025031499, TODAY), 2025031500);
        assert_eq!(next_serial(3_000_000_000, TODAY), 3_000_000_001);
    }

    #[test]
    fn adding_appends_a_line_and_bumps_only_the_serial() {
        let edited = run(
            ZONE,
            ChangeSet {
                adds: vec![a("new.example.com", "192.0.2.9")],
                deletes: vec![],
            },
        )
        .unwrap();
        let expected =
            ZONE.replace("2024010100", "2025031400") + "new.example.com. 300 IN A 192.0.2.9\n";
        assert_eq!(edited.text, expected);
        assert_eq!(
            (edited.added, edited.removed, edited.serial),
            (1, 0, 2025031400)
        );
    }

    #[test]
    fn adding_what_exists_or_deleting_what_is_absent_changes_nothing() {
        let changes = ChangeSet {
            adds: vec![record(
                "www.example.com",
                60,
                RData::Aaaa("2001:0db8:0:0::0001".parse().unwrap()),
            )],
            deletes: vec![a("www.example.com", "198.51.100.1")],
        };
        assert!(run(ZONE, changes).is_none());
    }

    #[test]
    fn deleting_the_owner_line_moves_the_owner_to_the_next_record() {
        let edited = run(
            ZONE,
            ChangeSet {
                adds: vec![],
                deletes: vec![a("www.example.com", "192.0.2.1")],
            },
        )
        .unwrap();
        assert!(!edited.text.contains("192.0.2.1\n"));
        assert!(
            edited.text.contains(
                "\nwww.example.com.    300 IN A 192.0.2.2 ; second\n    300 IN AAAA 2001:db8::1\n"
            ),
            "{}",
            edited.text
        );
        let reparsed = parse(&edited.text, None).unwrap();
        let aaaa = reparsed
            .records()
            .into_iter()
            .find(|r| r.record_type() == RecordType::Aaaa)
            .unwrap();
        assert_eq!(aaaa.name, name("www.example.com"));
    }

    #[test]
    fn deleting_several_owner_lines_in_a_row() {
        let edited = run(
            ZONE,
            ChangeSet {
                adds: vec![],
                deletes: vec![
                    a("www.example.com", "192.0.2.1"),
                    a("www.example.com", "192.0.2.2"),
                ],
            },
        )
        .unwrap();
        assert!(
            edited
                .text
                .contains("\nwww.example.com.    300 IN AAAA 2001:db8::1\n"),
            "{}",
            edited.text
        );
        assert_eq!(edited.removed, 2);
    }

    #[test]
    fn a_new_soa_replaces_the_old_one_with_a_raised_serial() {
        let file = parse(ZONE, None).unwrap();
        let (old, soa) = file.soa_record().unwrap();
        let mut new = soa.clone();
        new.refresh = 7200;
        new.serial += 1;
        let changes = ChangeSet {
            adds: vec![Record::new(old.name.clone(), old.ttl, RData::Soa(new))],
            deletes: vec![],
        };
        let edited = edit(ZONE, &file, None, &changes, TODAY).unwrap().unwrap();
        assert!(edited.text.contains(
            "\nexample.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2025031400 7200 600 86400 300\n    IN NS ns1"
        ), "{}", edited.text);
        assert!(!edited.text.contains("; serial"));
    }

    #[test]
    fn a_record_relying_on_the_previous_ttl_is_protected() {
        let text = "example.com. 60 IN SOA ns1.example.com. h.example.com. 1 2 3 4 5\n\
                    a.example.com. 120 IN A 192.0.2.1\n\
                    b.example.com. IN A 192.0.2.2\n";
        let file = parse(text, None).unwrap();
        let changes = ChangeSet {
            adds: vec![],
            deletes: vec![record(
                "a.example.com",
                120,
                RData::A("192.0.2.1".parse().unwrap()),
            )],
        };
        let err = edit(text, &file, None, &changes, TODAY).unwrap_err();
        assert!(err.contains("other than"), "{err}");
    }

    #[test]
    fn records_outside_the_zone_are_refused() {
        let file = parse(ZONE, None).unwrap();
        let changes = ChangeSet {
            adds: vec![a("www.example.org", "192.0.2.1")],
            deletes: vec![],
        };
        let err = edit(ZONE, &file, None, &changes, TODAY).unwrap_err();
        assert_eq!(err, "www.example.org is not in zone example.com");
    }

    #[test]
    fn a_last_line_without_newline_gets_one_before_the_additions() {
        let text = "$ORIGIN example.com.\n@ 60 SOA ns1 h 1 2 3 4 5\nwww 60 A 192.0.2.1";
        let edited = run(
            text,
            ChangeSet {
                adds: vec![a("x.example.com", "192.0.2.2")],
                deletes: vec![],
            },
        )
        .unwrap();
        assert_eq!(
            edited.text,
            "$ORIGIN example.com.\n@ 60 SOA ns1 h 2025031400 2 3 4 5\nwww 60 A 192.0.2.1\nx.example.com. 300 IN A 192.0.2.2\n"
        );
    }
}
