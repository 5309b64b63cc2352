//! Reads the entries of a master file into records: `$ORIGIN` and `$TTL`, `@`,
//! relative names, omitted owners, TTLs and classes, and the record data of the
//! types the program handles. Records of other types (and names the record model
//! cannot hold, such as `\.` escapes) are kept as opaque entries: they are never
//! reported or changed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::lexer::{Entry, SyntaxError, Token, entries, unescape};
use crate::dns::presentation::decode_hex;
use crate::dns::record::{Name, RData, Record, Soa};

/// One entry of the file as understood.
#[derive(Clone, Debug)]
pub(super) struct ParsedEntry {
    pub span: Range<usize>,
    pub kind: EntryKind,
}

#[derive(Clone, Debug)]
pub(super) enum EntryKind {
    /// `$ORIGIN`, `$TTL` (or a blank-owner entry that only states a TTL): never
    /// touched by the editor.
    Directive,
    /// A resource record.
    Record {
        /// The record, when its type and names are ones the program handles.
        record: Option<Record>,
        /// False when the owner was omitted (taken from the previous record).
        owner_given: bool,
        /// The owner in absolute form (`www.example.com.`), as resolved.
        owner_fqdn: String,
        /// The index of the entry whose owner this one inherits (itself when
        /// the owner is given).
        owner_source: usize,
        /// The bytes of the SOA serial, for an SOA record.
        serial: Option<Range<usize>>,
    },
}

/// A parsed zone file.
#[derive(Clone, Debug)]
pub(super) struct ZoneFile {
    pub entries: Vec<ParsedEntry>,
    /// The zone: the owner of the (only) SOA record.
    pub zone: Name,
    /// The index of the SOA entry.
    pub soa: usize,
}

impl ZoneFile {
    /// The records the program handles, at or below the zone.
    pub(super) fn records(&self) -> Vec<Record> {
        self.entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Record {
                    record: Some(r), ..
                } if r.name.is_at_or_below(&self.zone) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The SOA record.
    pub(super) fn soa_record(&self) -> Option<(&Record, &Soa)> {
        match &self.entries[self.soa].kind {
            EntryKind::Record {
                record: Some(record),
                ..
            } => match &record.data {
                RData::Soa(soa) => Some((record, soa)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Parses a whole zone file; `origin` is the origin before any `$ORIGIN`.
///
/// # Errors
/// The first syntax error, with its line.
pub(super) fn parse(text: &str, origin: Option<&Name>) -> Result<ZoneFile, SyntaxError> {
    let mut state = State {
        origin: origin.map(Name::to_fqdn),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
    };
    let mut parsed: Vec<ParsedEntry> = Vec::new();
    let mut soa: Option<(usize, Name)> = None;
    for entry in entries(text)? {
        let index = parsed.len();
        let kind = state.entry(&entry, index)?;
        if let EntryKind::Record {
            record: Some(record),
            ..
        } = &kind
            && matches!(record.data, RData::Soa(_))
        {
            if let Some((_, zone)) = &soa {
                return Err(SyntaxError::new(
                    entry.line,
                    format!("a second SOA record (the file's zone is {zone})"),
                ));
            }
            soa = Some((index, record.name.clone()));
        }
        parsed.push(ParsedEntry {
            span: entry.span,
            kind,
        });
    }
    let Some((soa, zone)) = soa else {
        return Err(SyntaxError::new(
            text.lines().count().max(1),
            "the file has no SOA record, so it is not a zone",
        ));
    };
    Ok(ZoneFile {
        entries: parsed,
        zone,
        soa,
    })
}

/// What carries over from entry to entry.
struct State {
    /// The current origin, absolute with the trailing dot.
    origin: Option<String>,
    /// `$TTL`.
    default_ttl: Option<u32>,
    /// The last TTL stated on a record (used when there is no `$TTL`).
    last_ttl: Option<u32>,
    /// The last stated owner: (absolute text, entry index).
    last_owner: Option<(String, usize)>,
}

impl State {
    fn entry(&mut self, entry: &Entry, index: usize) -> Result<EntryKind, SyntaxError> {
        let line = entry.line;
        let err = |message: String| SyntaxError::new(line, message);
        let mut tokens = entry.tokens.iter().peekable();
        if entry.owner_given
            && let Some(first) = tokens.peek()
            && !first.quoted
            && first.text.starts_with('$')
        {
            return self.directive(entry);
        }
        let (owner_fqdn, owner_source) = if entry.owner_given {
            let token = tokens.next().ok_or_else(|| err("empty entry".into()))?;
            let fqdn = self.absolute(&token.text, line)?;
            self.last_owner = Some((fqdn.clone(), index));
            (fqdn, index)
        } else {
            self.last_owner
                .clone()
                .ok_or_else(|| err("the first record has no owner name".into()))?
        };
        let mut ttl = None;
        let mut rtype = None;
        for token in tokens.by_ref() {
            let word = token.text.as_str();
            if is_class(word) {
                if !word.eq_ignore_ascii_case("IN") {
                    return Err(err(format!("class {word} is not supported (only IN)")));
                }
            } else if word.starts_with(|c: char| c.is_ascii_digit()) && ttl.is_none() {
                ttl = Some(parse_ttl(word).ok_or_else(|| err(format!("bad TTL \"{word}\"")))?);
            } else {
                rtype = Some(word.to_ascii_uppercase());
                break;
            }
        }
        let Some(rtype) = rtype else {
            return Err(err(format!("no record type for {owner_fqdn}")));
        };
        if !is_type_word(&rtype) {
            return Err(err(format!("\"{rtype}\" is not a record type")));
        }
        let rdata: Vec<&Token> = tokens.collect();
        let data = parse_rdata(&rtype, &rdata, self, line)?;
        let ttl = match ttl {
            Some(t) => {
                self.last_ttl = Some(t);
                t
            }
            None => match (self.default_ttl, self.last_ttl, &data) {
                (Some(t), _, _) | (None, Some(t), _) => t,
                // BIND's rule: an SOA without any TTL takes its minimum field.
                (None, None, Some(RData::Soa(soa))) => {
                    self.last_ttl = Some(soa.minimum);
                    soa.minimum
                }
                _ => return Err(err("no TTL given and no $TTL before this record".into())),
            },
        };
        let serial = (rtype == "SOA")
            .then(|| rdata.get(2).map(|t| t.span.clone()))
            .flatten();
        let record = match (data, owner_name(&owner_fqdn)) {
            (Some(data), Some(name)) => Some(Record::new(name, ttl, data)),
            _ => None,
        };
        if rtype == "SOA" && record.is_none() {
            return Err(err(format!(
                "the SOA owner {owner_fqdn} is not a domain name the program handles"
            )));
        }
        Ok(EntryKind::Record {
            record,
            owner_given: entry.owner_given,
            owner_fqdn,
            owner_source,
            serial,
        })
    }

    fn directive(&mut self, entry: &Entry) -> Result<EntryKind, SyntaxError> {
        let line = entry.line;
        let words: Vec<&str> = entry.tokens.iter().map(|t| t.text.as_str()).collect();
        match words[0].to_ascii_uppercase().as_str() {
            "$ORIGIN" if words.len() == 2 => {
                self.origin = Some(self.absolute(words[1], line)?);
            }
            "$TTL" if words.len() == 2 => {
                self.default_ttl =
                    Some(parse_ttl(words[1]).ok_or_else(|| {
                        SyntaxError::new(line, format!("bad TTL \"{}\"", words[1]))
                    })?);
            }
            "$ORIGIN" | "$TTL" => {
                return Err(SyntaxError::new(
                    line,
                    format!("{} takes exactly one value", words[0]),
                ));
            }
            "$INCLUDE" | "$GENERATE" => {
                return Err(SyntaxError::new(
                    line,
                    format!("{} is not supported in a file the program edits", words[0]),
                ));
            }
            other => {
                return Err(SyntaxError::new(line, format!("unknown directive {other}")));
            }
        }
        Ok(EntryKind::Directive)
    }

    /// A name from the file in absolute form (`@` is the origin).
    fn absolute(&self, word: &str, line: usize) -> Result<String, SyntaxError> {
        if word.ends_with('.') && !word.ends_with("\\.") {
            return Ok(word.to_string());
        }
        let origin = self.origin.as_deref().ok_or_else(|| {
            SyntaxError::new(
                line,
                format!(
                    "relative name \"{word}\" but no $ORIGIN before it (add $ORIGIN or set the key zone)"
                ),
            )
        })?;
        Ok(match word {
            "@" => origin.to_string(),
            _ if origin == "." => format!("{word}."),
            _ => format!("{word}.{origin}"),
        })
    }

    /// A name inside record data, as a [`Name`]; `None` when the model cannot
    /// hold it (the root, escapes).
    fn name(&self, token: &Token, line: usize) -> Result<Option<Name>, SyntaxError> {
        Ok(owner_name(&self.absolute(&token.text, line)?))
    }
}

/// An absolute owner as a [`Name`]; `None` for names the model cannot hold
/// (escapes other than `\.`, the root).
fn owner_name(fqdn: &str) -> Option<Name> {
    Name::parse(fqdn).ok()
}

fn is_class(word: &str) -> bool {
    ["IN", "CH", "HS", "CS"]
        .iter()
        .any(|c| word.eq_ignore_ascii_case(c))
}

/// Record type mnemonics are letters and digits (`TYPE65534` included).
fn is_type_word(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A TTL in seconds, with BIND's unit suffixes (`1h30m`, `2d`, `1w`).
pub(super) fn parse_ttl(word: &str) -> Option<u32> {
    if let Ok(seconds) = word.parse::<u32>() {
        return Some(seconds);
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in word.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if number.is_some() {
        return None;
    }
    u32::try_from(total).ok()
}

/// The data of one record; `Ok(None)` for types the program does not handle,
/// for RFC 3597 `\#` data, and for names the model cannot hold.
fn parse_rdata(
    rtype: &str,
    tokens: &[&Token],
    state: &State,
    line: usize,
) -> Result<Option<RData>, SyntaxError> {
    if tokens.first().is_some_and(|t| !t.quoted && t.text == "\\#") {
        return Ok(None);
    }
    let err = |message: String| SyntaxError::new(line, format!("{rtype}: {message}"));
    let count = |n: usize| {
        if tokens.len() == n {
            Ok(())
        } else {
            Err(err(format!("expected {n} fields, found {}", tokens.len())))
        }
    };
    let number = |i: usize, what: &str| -> Result<u32, SyntaxError> {
        let word = &tokens[i].text;
        word.parse::<u32>()
            .map_err(|_| err(format!("{what} \"{word}\" is not a number")))
    };
    let small = |i: usize, what: &str, max: u32| -> Result<u32, SyntaxError> {
        let value = number(i, what)?;
        if value > max {
            return Err(err(format!("{what} {value} is larger than {max}")));
        }
        Ok(value)
    };
    let u16_at = |i, what| small(i, what, u32::from(u16::MAX)).map(|v| v as u16);
    let u8_at = |i, what| small(i, what, u32::from(u8::MAX)).map(|v| v as u8);
    let name_at = |i: usize| state.name(tokens[i], line);
    Ok(match rtype {
        "A" => {
            count(1)?;
            let word = &tokens[0].text;
            Some(RData::A(word.parse::<Ipv4Addr>().map_err(|_| {
                err(format!("\"{word}\" is not an IPv4 address"))
            })?))
        }
        "AAAA" => {
            count(1)?;
            let word = &tokens[0].text;
            Some(RData::Aaaa(word.parse::<Ipv6Addr>().map_err(|_| {
                err(format!("\"{word}\" is not an IPv6 address"))
            })?))
        }
        "MX" => {
            count(2)?;
            let preference = u16_at(0, "preference")?;
            name_at(1)?.map(|exchange| RData::Mx {
                preference,
                exchange,
            })
        }
        "SRV" => {
            count(4)?;
            let (priority, weight, port) = (
                u16_at(0, "priority")?,
                u16_at(1, "weight")?,
                u16_at(2, "port")?,
            );
            name_at(3)?.map(|target| RData::Srv {
                priority,
                weight,
                port,
                target,
            })
        }
        "CAA" => {
            count(3)?;
            let bytes = |t: &Token| unescape(&t.text).map_err(&err);
            let value = String::from_utf8_lossy(&bytes(tokens[2])?).into_owned();
            Some(RData::Caa {
                flags: u8_at(0, "flags")?,
                tag: tokens[1].text.to_ascii_lowercase(),
                value,
            })
        }
        "TXT" => {
            if tokens.is_empty() {
                return Err(err("no text".into()));
            }
            let mut joined = Vec::new();
            for token in tokens {
                let bytes = unescape(&token.text).map_err(&err)?;
                if bytes.len() > 255 {
                    return Err(err(format!(
                        "a character-string of {} bytes (at most 255; split it into several quoted strings)",
                        bytes.len()
                    )));
                }
                joined.extend(bytes);
            }
            Some(RData::Txt(String::from_utf8_lossy(&joined).into_owned()))
        }
        "TLSA" => {
            if tokens.len() < 4 {
                return Err(err(format!("expected 4 fields, found {}", tokens.len())));
            }
            let hex: String = tokens[3..].iter().map(|t| t.text.as_str()).collect();
            Some(RData::Tlsa {
                usage: u8_at(0, "usage")?,
                selector: u8_at(1, "selector")?,
                matching: u8_at(2, "matching type")?,
                data: decode_hex(&hex).ok_or_else(|| err(format!("\"{hex}\" is not hex")))?,
            })
        }
        "SOA" => {
            count(7)?;
            let time = |i: usize, what: &str| {
                parse_ttl(&tokens[i].text)
                    .ok_or_else(|| err(format!("{what} \"{}\" is not a time", tokens[i].text)))
            };
            let serial = number(2, "serial")?;
            let (Some(mname), Some(rname)) = (name_at(0)?, name_at(1)?) else {
                return Err(err("MNAME or RNAME is not a domain name".into()));
            };
            Some(RData::Soa(Soa {
                mname,
                rname,
                serial,
                refresh: time(3, "refresh")?,
                retry: time(4, "retry")?,
                expire: time(5, "expire")?,
                minimum: time(6, "minimum")?,
            }))
        }
        "NS" => {
            count(1)?;
            name_at(0)?.map(RData::Ns)
        }
        "CNAME" => {
            count(1)?;
            name_at(0)?.map(RData::Cname)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    fn records(text: &str) -> Vec<String> {
        parse(text, None)
            .unwrap()
            .records()
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    fn error(text: &str) -> (usize, String) {
        let e = parse(text, None).unwrap_err();
        (e.line, e.message)
    }

    const HEAD: &str = "$ORIGIN example.com.\n$TTL 1h\n@ SOA ns1 hostmaster 1 2h 30m 1w 300\n";

    #[test]
    fn origin_ttl_at_relative_and_omitted_owners() {
        let text = format!(
            "{HEAD}  NS ns1\nwww 60 IN A 192.0.2.1\n IN 120 AAAA 2001:DB8:0::1\n\
             $ORIGIN sub.example.com.\nx CNAME www.example.com.\n@ MX 10 mail\n*.y 30 TXT plain\n"
        );
        assert_eq!(
            records(&text),
            vec![
                "example.com 3600 SOA ns1.example.com hostmaster.example.com 1 7200 1800 604800 300",
                "example.com 3600 NS ns1.example.com",
                "www.example.com 60 A 192.0.2.1",
                "www.example.com 120 AAAA 2001:db8::1",
                "x.sub.example.com 3600 CNAME www.example.com",
                "sub.example.com 3600 MX 10 mail.sub.example.com",
                "*.y.sub.example.com 30 TXT plain",
            ]
        );
        assert_eq!(parse(&text, None).unwrap().zone, name("example.com"));
    }

    #[test]
    fn record_data_of_every_handled_type() {
        let text = format!(
            "{HEAD}t TXT \"v=spf1 \\\"q\\\" ; x\" \"more\" ( \"and\"\n  \"more\" )\n\
             c CAA 128 Issue \"letsencrypt.org\"\n\
             _443._tcp TLSA 3 1 1 ( AB01\n cd )\n\
             _imap._tcp SRV 0 5 143 mail.example.com.\n"
        );
        let file = parse(&text, None).unwrap();
        let data: Vec<RData> = file.records().into_iter().skip(1).map(|r| r.data).collect();
        assert_eq!(
            data,
            vec![
                RData::Txt("v=spf1 \"q\" ; xmoreandmore".into()),
                RData::Caa {
                    flags: 128,
                    tag: "issue".into(),
                    value: "letsencrypt.org".into()
                },
                RData::Tlsa {
                    usage: 3,
                    selector: 1,
                    matching: 1,
                    data: vec![0xab, 0x01, 0xcd]
                },
                RData::Srv {
                    priority: 0,
                    weight: 5,
                    port: 143,
                    target: name("mail.example.com")
                },
            ]
        );
    }

    #[test]
    fn other_types_and_unusual_names_are_kept_but_not_reported() {
        let text = format!(
            "{HEAD}@ DS 1 13 2 ABCD\nnull MX 0 .\nx TYPE65534 \\# 1 00\nw\\065x A 192.0.2.1\nw\\.x A 192.0.2.2\n"
        );
        let file = parse(&text, None).unwrap();
        // The SOA, and `w\.x`: an escaped dot is part of its label.
        let records = file.records();
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[1].name.to_fqdn(), "w\\.x.example.com.");
        assert_eq!(file.entries.len(), 8);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            (
                format!("{HEAD}www A 192.0.2.256\n"),
                4,
                "not an IPv4 address",
            ),
            (format!("{HEAD}www A\n"), 4, "expected 1 fields"),
            (format!("{HEAD}\nwww 1x A 192.0.2.1\n"), 5, "bad TTL"),
            (format!("{HEAD}www 60\n"), 4, "no record type"),
            (format!("{HEAD}www CH A 192.0.2.1\n"), 4, "class CH"),
            (format!("{HEAD}www MX 70000 mail\n"), 4, "larger than 65535"),
            (format!("{HEAD}$INCLUDE other.zone\n"), 4, "not supported"),
            (format!("{HEAD}@ SOA ns1 h 2 3 4 5 6\n"), 4, "a second SOA"),
            (
                format!("{HEAD}t TXT \"{}\"\n", "x".repeat(256)),
                4,
                "at most 255",
            ),
            ("www.example.com. 60 A 192.0.2.1\n".to_string(), 1, "no SOA"),
            ("www 60 A 192.0.2.1\n".to_string(), 1, "no $ORIGIN"),
            ("$TTL 60\n  A 192.0.2.1\n".to_string(), 2, "no owner"),
            (
                "$ORIGIN example.com.\nwww A 192.0.2.1\n@ 60 SOA ns1 h 1 2 3 4 5\n".to_string(),
                2,
                "no TTL",
            ),
        ];
        for (text, line, what) in cases {
            let (found_line, message) = error(&text);
            assert_eq!(found_line, line, "{text}: {message}");
            assert!(message.contains(what), "{text}: {message}");
        }
    }

    #[test]
    fn the_configured_origin_serves_files_without_origin() {
        let text = "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\nwww A 192.0.2.1\n";
        let file = parse(text, Some(&name("example.org"))).unwrap();
        assert_eq!(file.zone, name("example.org"));
        assert_eq!(file.records()[1].name, name("www.example.org"));
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("1W"), Some(604_800));
        assert_eq!(parse_ttl("1h3"), None);
        assert_eq!(parse_ttl("h"), None);
    }
}
