//! Record data in presentation format (RFC 1035 §5.1), as HTTP APIs such as
//! PowerDNS's and INWX's exchange it: `10 mail.example.com.` for MX, quoted
//! character-strings for TXT (`"part one" "part two"`, at most 255 bytes each),
//! `0 issue "letsencrypt.org"` for CAA.

use crate::dns::record::{Name, RData, RecordType, Soa};

/// The RFC 1035 presentation of `data`; names are fully qualified (trailing dot).
pub(crate) fn to_presentation(data: &RData) -> String {
    match data {
        RData::A(addr) => addr.to_string(),
        RData::Aaaa(addr) => addr.to_string(),
        RData::Mx {
            preference,
            exchange,
        } => format!("{preference} {}", exchange.to_fqdn()),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {}", target.to_fqdn()),
        RData::Caa { flags, tag, value } => {
            format!("{flags} {tag} {}", quote(value.as_bytes()))
        }
        RData::Txt(text) => RData::txt_strings(text)
            .into_iter()
            .map(quote)
            .collect::<Vec<_>>()
            .join(" "),
        RData::Tlsa { .. } => data.to_string(),
        RData::Soa(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname.to_fqdn(),
            soa.rname.to_fqdn(),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::Ns(name) | RData::Cname(name) => name.to_fqdn(),
    }
}

/// Parses the presentation of a record of type `rtype`.
///
/// # Errors
/// A message saying what is wrong with the text.
pub(crate) fn parse_presentation(rtype: RecordType, text: &str) -> Result<RData, String> {
    let text = text.trim();
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let number = |i: usize, what: &str| -> Result<u32, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u32>().ok())
            .ok_or_else(|| format!("{rtype} \"{text}\": {what} is not a number"))
    };
    let small = |i: usize, what: &str| -> Result<u16, String> {
        u16::try_from(number(i, what)?).map_err(|_| format!("{rtype} \"{text}\": {what} too large"))
    };
    let byte = |i: usize, what: &str| -> Result<u8, String> {
        u8::try_from(number(i, what)?).map_err(|_| format!("{rtype} \"{text}\": {what} too large"))
    };
    let name = |i: usize| -> Result<Name, String> {
        let field = fields
            .get(i)
            .ok_or_else(|| format!("{rtype} \"{text}\": a name is missing"))?;
        Name::parse(field).map_err(|e| format!("{rtype} \"{text}\": {e}"))
    };
    let count = |n: usize| -> Result<(), String> {
        if fields.len() == n {
            Ok(())
        } else {
            Err(format!("{rtype} \"{text}\": expected {n} fields"))
        }
    };
    match rtype {
        RecordType::A => text
            .parse()
            .map(RData::A)
            .map_err(|_| format!("A \"{text}\" is not an IPv4 address")),
        RecordType::Aaaa => text
            .parse()
            .map(RData::Aaaa)
            .map_err(|_| format!("AAAA \"{text}\" is not an IPv6 address")),
        RecordType::Mx => {
            count(2)?;
            Ok(RData::Mx {
                preference: small(0, "preference")?,
                exchange: name(1)?,
            })
        }
        RecordType::Srv => {
            count(4)?;
            Ok(RData::Srv {
                priority: small(0, "priority")?,
                weight: small(1, "weight")?,
                port: small(2, "port")?,
                target: name(3)?,
            })
        }
        RecordType::Caa => {
            let flags = byte(0, "flags")?;
            let tag = fields
                .get(1)
                .ok_or_else(|| format!("CAA \"{text}\": the tag is missing"))?;
            // The value is everything after the tag, quoted or not.
            let rest = text
                .split_once(char::is_whitespace)
                .map(|(_, r)| r.trim_start())
                .and_then(|r| r.split_once(char::is_whitespace))
                .map(|(_, r)| r.trim())
                .unwrap_or("");
            let value = if rest.starts_with('"') {
                let strings =
                    character_strings(rest).map_err(|e| format!("CAA \"{text}\": {e}"))?;
                String::from_utf8_lossy(&strings.concat()).into_owned()
            } else {
                rest.to_string()
            };
            Ok(RData::Caa {
                flags,
                tag: tag.to_ascii_lowercase(),
                value,
            })
        }
        RecordType::Txt => {
            let strings = character_strings(text).map_err(|e| format!("TXT {text}: {e}"))?;
            Ok(RData::Txt(
                String::from_utf8_lossy(&strings.concat()).into_owned(),
            ))
        }
        RecordType::Tlsa => {
            if fields.len() < 4 {
                return Err(format!("TLSA \"{text}\": expected 4 fields"));
            }
            let hex: String = fields[3..].concat();
            Ok(RData::Tlsa {
                usage: byte(0, "usage")?,
                selector: byte(1, "selector")?,
                matching: byte(2, "matching type")?,
                data: decode_hex(&hex).ok_or_else(|| format!("TLSA \"{text}\": bad hex data"))?,
            })
        }
        RecordType::Soa => {
            count(7)?;
            Ok(RData::Soa(Soa {
                mname: name(0)?,
                rname: name(1)?,
                serial: number(2, "serial")?,
                refresh: number(3, "refresh")?,
                retry: number(4, "retry")?,
                expire: number(5, "expire")?,
                minimum: number(6, "minimum")?,
            }))
        }
        RecordType::Ns => {
            count(1)?;
            Ok(RData::Ns(name(0)?))
        }
        RecordType::Cname => {
            count(1)?;
            Ok(RData::Cname(name(0)?))
        }
    }
}

/// The record type named `text` (`A`, `aaaa`, ...), if the program handles it.
pub(crate) fn parse_type(text: &str) -> Option<RecordType> {
    Some(match text.trim().to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "MX" => RecordType::Mx,
        "SRV" => RecordType::Srv,
        "CAA" => RecordType::Caa,
        "TXT" => RecordType::Txt,
        "TLSA" => RecordType::Tlsa,
        "SOA" => RecordType::Soa,
        "NS" => RecordType::Ns,
        "CNAME" => RecordType::Cname,
        _ => return None,
    })
}

/// One quoted character-string: `"` and `\` escaped, bytes outside printable
/// ASCII as `\DDD`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// The character-strings of `text`: quoted strings (with `\X` and `\DDD`
/// escapes) or bare words, separated by white space.
fn character_strings(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = text.as_bytes();
    let mut strings = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let quoted = bytes[i] == b'"';
        if quoted {
            i += 1;
        }
        let mut current = Vec::new();
        loop {
            let Some(&b) = bytes.get(i) else {
                if quoted {
                    return Err("unterminated quoted string".into());
                }
                break;
            };
            if quoted && b == b'"' {
                i += 1;
                break;
            }
            if !quoted && b.is_ascii_whitespace() {
                break;
            }
            if b == b'\\' {
                let (byte, used) = unescape_one(&bytes[i + 1..])
                    .ok_or("a trailing backslash")?
                    .map_err(|_| "escape \\DDD above 255")?;
                current.push(byte);
                i += 1 + used;
                continue;
            }
            current.push(b);
            i += 1;
        }
        strings.push(current);
    }
    Ok(strings)
}

/// The escape after a backslash (RFC 1035 §5.1) at the start of `rest`:
/// `\DDD` is the decimal byte DDD, `\X` is X. The byte and how many bytes of
/// `rest` it takes; `Err` with the value of a `\DDD` above 255; `None` when
/// nothing follows the backslash.
pub(crate) fn unescape_one(rest: &[u8]) -> Option<Result<(u8, usize), u32>> {
    let digits = rest.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    if let Some(digits) = digits {
        let value = digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        return Some(u8::try_from(value).map(|b| (b, 3)).map_err(|_| value));
    }
    rest.first().map(|&b| Ok((b, 1)))
}

/// Bytes written as hex digits (either case, no separators); `None` for
/// anything else, the empty text included.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(rtype: RecordType, text: &str) -> RData {
        let data = parse_presentation(rtype, text).unwrap();
        assert_eq!(
            parse_presentation(rtype, &to_presentation(&data)).unwrap(),
            data,
            "{text}"
        );
        data
    }

    #[test]
    fn every_type_round_trips() {
        round_trip(RecordType::A, "192.0.2.1");
        assert_eq!(
            round_trip(RecordType::Aaaa, "2001:DB8:0::1"),
            RData::Aaaa("2001:db8::1".parse().unwrap())
        );
        round_trip(RecordType::Mx, "10 mail.example.com.");
        round_trip(RecordType::Srv, "0 5 443 www.example.com.");
        round_trip(RecordType::Tlsa, "3 1 1 ABCDEF01");
        round_trip(
            RecordType::Soa,
            "ns1.example.com. hostmaster.example.com. 7 3600 600 86400 300",
        );
        round_trip(RecordType::Ns, "ns1.example.com.");
        round_trip(RecordType::Cname, "www.example.com.");
        assert_eq!(
            round_trip(RecordType::Caa, "0 issue \"letsencrypt.org\""),
            RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into()
            }
        );
        assert_eq!(
            round_trip(RecordType::Caa, "128 ISSUEWILD ;"),
            RData::Caa {
                flags: 128,
                tag: "issuewild".into(),
                value: ";".into()
            }
        );
    }

    #[test]
    fn txt_strings_are_split_joined_and_escaped() {
        let long = format!("v=DKIM1; p={}", "A".repeat(400));
        let text = to_presentation(&RData::Txt(long.clone()));
        assert_eq!(text.matches('"').count(), 4, "two strings: {text}");
        assert_eq!(
            parse_presentation(RecordType::Txt, &text).unwrap(),
            RData::Txt(long)
        );
        let tricky = "say \"hi\" \\ ünï";
        assert_eq!(
            round_trip(
                RecordType::Txt,
                &to_presentation(&RData::Txt(tricky.into()))
            ),
            RData::Txt(tricky.into())
        );
        assert_eq!(
            parse_presentation(RecordType::Txt, "\"a\\032b\" c").unwrap(),
            RData::Txt("a bc".into())
        );
        assert!(parse_presentation(RecordType::Txt, "\"open").is_err());
    }

    #[test]
    fn text_is_quoted_and_escaped() {
        assert_eq!(
            to_presentation(&RData::Txt("say \"hi\" \\ ü".into())),
            "\"say \\\"hi\\\" \\\\ \\195\\188\""
        );
        assert_eq!(
            to_presentation(&RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into()
            }),
            "0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            to_presentation(&RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0xab, 0x01]
            }),
            "3 1 1 ab01"
        );
        assert_eq!(
            to_presentation(&RData::Txt("x".repeat(300))),
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
    }

    #[test]
    fn escapes_and_hex() {
        assert_eq!(unescape_one(b"032x"), Some(Ok((b' ', 3))));
        assert_eq!(unescape_one(b"\"x"), Some(Ok((b'"', 1))));
        assert_eq!(unescape_one(b"03x"), Some(Ok((b'0', 1))));
        assert_eq!(unescape_one(b"300"), Some(Err(300)));
        assert_eq!(unescape_one(b""), None);
        assert_eq!(decode_hex("aB01"), Some(vec![0xab, 0x01]));
        assert_eq!(decode_hex(""), None);
        assert_eq!(decode_hex("abc"), None);
    }

    #[test]
    fn bad_text_is_an_error() {
        assert!(parse_presentation(RecordType::A, "1.2.3").is_err());
        assert!(parse_presentation(RecordType::Mx, "x mail.example.com.").is_err());
        assert!(parse_presentation(RecordType::Srv, "1 2 70000 a.example.").is_err());
        assert!(parse_presentation(RecordType::Tlsa, "3 1 1 XYZ").is_err());
        assert!(parse_presentation(RecordType::Soa, "a. b. 1").is_err());
    }
}
