//! Conversion between our canonical [`Record`]s and `hickory-proto` wire records.
//!
//! Record data follows RFC 1035 §3.3 (A, NS, CNAME, SOA, MX, TXT), RFC 3596 (AAAA),
//! RFC 2782 (SRV), RFC 6698 §2.1 (TLSA) and RFC 8659 §4.1 (CAA: flags, tag, raw
//! value; hickory's `CAA` keeps the value as raw bytes, so any tag round-trips).
//! TXT character-strings are joined when read and split into strings of at most
//! 255 bytes when written (RFC 1035 §3.3.14). Names are sent fully qualified.

use hickory_proto::rr::rdata::{self, CAA, MX, SOA, SRV, TLSA, TXT};
use hickory_proto::rr::{self as hrr, DNSClass};

use crate::dns::record::{Name, RData, Record, RecordType, Soa};

/// A record or name that cannot be converted (for example a name with characters
/// our [`Name`] does not allow).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

/// Our name as a fully qualified hickory name.
///
/// # Errors
/// When hickory does not accept the name (should not happen for a valid [`Name`]).
pub fn to_wire_name(name: &Name) -> Result<hrr::Name, WireError> {
    hrr::Name::from_ascii(name.to_fqdn())
        .map_err(|e| WireError(format!("cannot encode name {name}: {e}")))
}

/// A hickory name as our [`Name`].
///
/// # Errors
/// When the name is the root or has characters our [`Name`] does not allow.
pub fn from_wire_name(name: &hrr::Name) -> Result<Name, WireError> {
    let text = name.to_ascii();
    Name::parse(&text).map_err(|e| WireError(format!("name {text}: {e}")))
}

/// The hickory record type of ours.
pub fn to_wire_type(rtype: RecordType) -> hrr::RecordType {
    match rtype {
        RecordType::A => hrr::RecordType::A,
        RecordType::Aaaa => hrr::RecordType::AAAA,
        RecordType::Mx => hrr::RecordType::MX,
        RecordType::Srv => hrr::RecordType::SRV,
        RecordType::Caa => hrr::RecordType::CAA,
        RecordType::Txt => hrr::RecordType::TXT,
        RecordType::Tlsa => hrr::RecordType::TLSA,
        RecordType::Soa => hrr::RecordType::SOA,
        RecordType::Ns => hrr::RecordType::NS,
        RecordType::Cname => hrr::RecordType::CNAME,
    }
}

/// Our record data as hickory record data.
///
/// # Errors
/// When a name inside the data cannot be encoded.
pub fn to_wire_rdata(data: &RData) -> Result<hrr::RData, WireError> {
    Ok(match data {
        RData::A(addr) => hrr::RData::A(rdata::A(*addr)),
        RData::Aaaa(addr) => hrr::RData::AAAA(rdata::AAAA(*addr)),
        RData::Mx {
            preference,
            exchange,
        } => hrr::RData::MX(MX::new(*preference, to_wire_name(exchange)?)),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => hrr::RData::SRV(SRV::new(*priority, *weight, *port, to_wire_name(target)?)),
        RData::Caa { flags, tag, value } => {
            // CAA is non-exhaustive: start from a constructor, then set the raw fields.
            let mut caa = CAA::new_issue(false, None, Vec::new());
            caa.issuer_critical = flags & 0x80 != 0;
            caa.reserved_flags = flags & 0x7f;
            caa.tag = tag.clone();
            caa.value = value.as_bytes().to_vec();
            hrr::RData::CAA(caa)
        }
        RData::Txt(text) => hrr::RData::TXT(TXT::from_bytes(RData::txt_strings(text))),
        RData::Tlsa {
            usage,
            selector,
            matching,
            data,
        } => hrr::RData::TLSA(TLSA::new(
            (*usage).into(),
            (*selector).into(),
            (*matching).into(),
            data.clone(),
        )),
        RData::Soa(soa) => hrr::RData::SOA(SOA::new(
            to_wire_name(&soa.mname)?,
            to_wire_name(&soa.rname)?,
            soa.serial,
            soa.refresh.cast_signed(),
            soa.retry.cast_signed(),
            soa.expire.cast_signed(),
            soa.minimum,
        )),
        RData::Ns(name) => hrr::RData::NS(rdata::NS(to_wire_name(name)?)),
        RData::Cname(name) => hrr::RData::CNAME(rdata::CNAME(to_wire_name(name)?)),
    })
}

/// Our record as a hickory record of `class` with `ttl`.
///
/// # Errors
/// When the name or data cannot be encoded.
pub fn to_wire(record: &Record, class: DNSClass, ttl: u32) -> Result<hrr::Record, WireError> {
    let mut wire = hrr::Record::from_rdata(
        to_wire_name(&record.name)?,
        ttl,
        to_wire_rdata(&record.data)?,
    );
    wire.dns_class = class;
    Ok(wire)
}

/// Hickory record data as ours; `None` for types the program does not handle.
///
/// # Errors
/// When a name inside the data is not a valid [`Name`] (the root, for example).
pub fn from_wire_rdata(data: &hrr::RData) -> Result<Option<RData>, WireError> {
    Ok(Some(match data {
        hrr::RData::A(a) => RData::A(a.0),
        hrr::RData::AAAA(a) => RData::Aaaa(a.0),
        hrr::RData::MX(mx) => RData::Mx {
            preference: mx.preference,
            exchange: from_wire_name(&mx.exchange)?,
        },
        hrr::RData::SRV(srv) => RData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: from_wire_name(&srv.target)?,
        },
        hrr::RData::CAA(caa) => RData::Caa {
            flags: caa.flags(),
            tag: caa.tag.to_ascii_lowercase(),
            value: String::from_utf8_lossy(&caa.value).into_owned(),
        },
        hrr::RData::TXT(txt) => {
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            RData::Txt(String::from_utf8_lossy(&bytes).into_owned())
        }
        hrr::RData::TLSA(tlsa) => RData::Tlsa {
            usage: tlsa.cert_usage.into(),
            selector: tlsa.selector.into(),
            matching: tlsa.matching.into(),
            data: tlsa.cert_data.clone(),
        },
        hrr::RData::SOA(soa) => RData::Soa(Soa {
            mname: from_wire_name(&soa.mname)?,
            rname: from_wire_name(&soa.rname)?,
            serial: soa.serial,
            refresh: soa.refresh.cast_unsigned(),
            retry: soa.retry.cast_unsigned(),
            expire: soa.expire.cast_unsigned(),
            minimum: soa.minimum,
        }),
        hrr::RData::NS(ns) => RData::Ns(from_wire_name(&ns.0)?),
        hrr::RData::CNAME(cname) => RData::Cname(from_wire_name(&cname.0)?),
        _ => return Ok(None),
    }))
}

/// A hickory record as ours; `None` for types (and classes other than IN) the
/// program does not handle.
///
/// # Errors
/// When the owner or a name in the data is not a valid [`Name`].
pub fn from_wire(record: &hrr::Record) -> Result<Option<Record>, WireError> {
    if record.dns_class != DNSClass::IN {
        return Ok(None);
    }
    let Some(data) = from_wire_rdata(&record.data)? else {
        return Ok(None);
    };
    Ok(Some(Record::new(
        from_wire_name(&record.name)?,
        record.ttl,
        data,
    )))
}

/// Converts the records of an answer, skipping (with a warning) the ones our model
/// cannot represent, so one odd record does not hide the rest of a zone.
pub fn from_wire_all<'a>(records: impl IntoIterator<Item = &'a hrr::Record>) -> Vec<Record> {
    records
        .into_iter()
        .filter_map(|wire| match from_wire(wire) {
            Ok(record) => record,
            Err(e) => {
                log::warn!("skipping record {} {}: {e}", wire.name, wire.record_type());
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    /// An RNAME with a dot in its first label travels as one label and comes
    /// back escaped.
    #[test]
    fn escaped_dot_round_trips() {
        let rname = name("first\\.last.example.com");
        let wire = to_wire_name(&rname).unwrap();
        assert_eq!(wire.num_labels(), 3);
        assert_eq!(wire.iter().next(), Some(&b"first.last"[..]));
        assert_eq!(from_wire_name(&wire).unwrap(), rname);
    }

    fn samples() -> Vec<Record> {
        let caa = |flags, tag: &str, value: &str| RData::Caa {
            flags,
            tag: tag.into(),
            value: value.into(),
        };
        vec![
            RData::A("192.0.2.1".parse().unwrap()),
            RData::Aaaa("2001:db8::1".parse().unwrap()),
            RData::Mx {
                preference: 10,
                exchange: name("mail.example.com"),
            },
            RData::Srv {
                priority: 0,
                weight: 5,
                port: 443,
                target: name("www.example.com"),
            },
            caa(0, "issue", "letsencrypt.org"),
            caa(0, "iodef", "mailto:a@b.c"),
            caa(128, "tbs", "x"),
            caa(0, "issue", "ca.example; account=123"),
            RData::Txt("v=spf1 \"quoted\" -all".into()),
            RData::Txt("k".repeat(700)),
            RData::Txt(String::new()),
            RData::Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0xab; 32],
            },
            RData::Soa(Soa {
                mname: name("ns1.example.com"),
                rname: name("hostmaster.example.com"),
                serial: 4_000_000_000,
                refresh: 3600,
                retry: 600,
                expire: 3_000_000_000,
                minimum: 300,
            }),
            RData::Ns(name("ns1.example.com")),
            RData::Cname(name("www.example.com")),
        ]
        .into_iter()
        .map(|data| Record::new(name("_443._tcp.Deep.Example.com"), 300, data))
        .collect()
    }

    #[test]
    fn records_round_trip_through_wire_bytes() {
        let mut message = Message::query();
        for record in samples() {
            message.add_answer(to_wire(&record, DNSClass::IN, record.ttl).unwrap());
        }
        let bytes = message.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        let back = from_wire_all(&parsed.answers);
        let expected = samples();
        assert_eq!(back.len(), expected.len());
        for (got, want) in back.iter().zip(&expected) {
            assert!(got.same_as(want), "{got} != {want}");
            assert_eq!(got.ttl, want.ttl);
        }
    }

    #[test]
    fn long_txt_goes_out_as_255_byte_strings() {
        let record = Record::new(name("example.com"), 60, RData::Txt("k".repeat(600)));
        let wire = to_wire(&record, DNSClass::IN, 60).unwrap();
        let hrr::RData::TXT(txt) = &wire.data else {
            panic!("not TXT")
        };
        let lengths: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lengths, vec![255, 255, 90]);
    }

    #[test]
    fn caa_presentation_matches_ours() {
        for (flags, tag, value, text) in [
            (0, "issue", "letsencrypt.org", "0 issue \"letsencrypt.org\""),
            (0, "iodef", "mailto:a@b.c", "0 iodef \"mailto:a@b.c\""),
            (128, "tbs", "x", "128 tbs \"x\""),
        ] {
            let ours = RData::Caa {
                flags,
                tag: tag.into(),
                value: value.into(),
            };
            assert_eq!(ours.to_string(), text);
            let wire = to_wire_rdata(&ours).unwrap();
            assert_eq!(from_wire_rdata(&wire).unwrap(), Some(ours));
        }
    }

    #[test]
    fn unknown_types_and_root_names_are_skipped() {
        let null_mx = hrr::Record::from_rdata(
            hrr::Name::from_ascii("example.com.").unwrap(),
            60,
            hrr::RData::MX(MX::new(0, hrr::Name::root())),
        );
        let ptr = hrr::Record::from_rdata(
            hrr::Name::from_ascii("example.com.").unwrap(),
            60,
            hrr::RData::PTR(rdata::PTR(hrr::Name::from_ascii("x.example.com.").unwrap())),
        );
        assert!(from_wire(&null_mx).is_err());
        assert!(from_wire(&ptr).unwrap().is_none());
        assert!(from_wire_all([&null_mx, &ptr]).is_empty());
    }
}
