//! Records in master-file presentation format (RFC 1035 §5.1) with absolute
//! names, so an appended line means the same whatever `$ORIGIN` is in force.

use std::fmt::Write;

use crate::dns::record::{RData, Record};

/// One line (without the newline): `www.example.com. 300 IN A 192.0.2.1`.
pub fn zone_line(record: &Record) -> String {
    format!(
        "{} {} IN {} {}",
        record.name.to_fqdn(),
        record.ttl,
        record.record_type(),
        rdata_text(&record.data)
    )
}

/// The record data in presentation format.
pub fn rdata_text(data: &RData) -> String {
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
        RData::Caa { flags, tag, value } => format!("{flags} {tag} {}", quoted(value.as_bytes())),
        RData::Txt(text) => RData::txt_strings(text)
            .into_iter()
            .map(quoted)
            .collect::<Vec<_>>()
            .join(" "),
        RData::Tlsa {
            usage,
            selector,
            matching,
            data,
        } => {
            let mut text = format!("{usage} {selector} {matching} ");
            for b in data {
                let _ = write!(text, "{b:02x}");
            }
            text
        }
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

/// A quoted character-string: `"` and `\` escaped, bytes outside printable
/// ASCII as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::Name;

    fn rec(data: RData) -> Record {
        Record::new(Name::parse("a.b.example.com").unwrap(), 300, data)
    }

    #[test]
    fn lines_use_absolute_names_and_quote_text() {
        assert_eq!(
            zone_line(&rec(RData::Mx {
                preference: 10,
                exchange: Name::parse("mail.example.com").unwrap()
            })),
            "a.b.example.com. 300 IN MX 10 mail.example.com."
        );
        assert_eq!(
            rdata_text(&RData::Txt("say \"hi\" \\ ü".into())),
            "\"say \\\"hi\\\" \\\\ \\195\\188\""
        );
        assert_eq!(
            rdata_text(&RData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "letsencrypt.org".into()
            }),
            "0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            rdata_text(&RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0xab, 0x01]
            }),
            "3 1 1 ab01"
        );
    }

    #[test]
    fn long_text_is_split_into_255_byte_strings() {
        let text = rdata_text(&RData::Txt("x".repeat(300)));
        assert_eq!(
            text,
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
    }
}
