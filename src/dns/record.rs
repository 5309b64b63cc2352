//! DNS names and records in canonical form, so that the diff never re-adds what
//! already exists: names are lower-case without the trailing dot, IPv6 addresses
//! are parsed (so every spelling compares equal), TXT strings are joined and CAA
//! values unquoted. Presentation follows RFC 1035 §5.1 where the log shows a record.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A domain name: lower-case ASCII labels, no trailing dot (RFC 1035 §2.3.1, with
/// `_` allowed for service labels such as `_443._tcp` and `*` as a whole label).
/// A label may hold a dot, written `\.` as in RFC 1035 §5.1: an SOA RNAME made
/// from an address with a dot before the `@` (`first\.last.example.com`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a text is not a domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty domain name")]
    Empty,
    #[error("domain name longer than 253 characters")]
    TooLong,
    #[error("label \"{0}\" is empty or longer than 63 characters")]
    BadLabelLength(String),
    #[error("label \"{0}\" has a character other than letters, digits, '-' and '_'")]
    BadCharacter(String),
}

/// The labels of presentation text: split at the dots that are not escaped.
fn split_labels(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut labels = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => {
                labels.push(&text[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    labels.push(text.get(start..).unwrap_or_default());
    labels
}

/// The length of a label on the wire (an escape is one character), if every
/// character is allowed: letters, digits, `-`, `_` and escaped dots.
fn label_length(label: &str) -> Option<usize> {
    if label == "*" {
        return Some(1);
    }
    let bytes = label.as_bytes();
    let (mut length, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'.') => i += 2,
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => i += 1,
            _ => return None,
        }
        length += 1;
    }
    Some(length)
}

impl Name {
    /// Parses a name, accepting a trailing dot and any letter case.
    ///
    /// # Errors
    /// A [`NameError`] saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let text = text.trim();
        let text = match text.strip_suffix('.') {
            Some(stripped) if !stripped.ends_with('\\') => stripped,
            _ => text,
        };
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text.len() > 253 {
            return Err(NameError::TooLong);
        }
        for label in split_labels(text) {
            match label_length(label) {
                None => return Err(NameError::BadCharacter(label.to_string())),
                Some(0) | Some(64..) => return Err(NameError::BadLabelLength(label.to_string())),
                Some(_) => {}
            }
        }
        Ok(Name(text.to_ascii_lowercase()))
    }

    /// The name as text, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fully qualified form, with the trailing dot.
    pub fn to_fqdn(&self) -> String {
        format!("{}.", self.0)
    }

    /// `label.self`, for names like `_dmarc.example.com`.
    ///
    /// # Errors
    /// When the label makes the name invalid.
    pub fn prepend(&self, label: &str) -> Result<Name, NameError> {
        Name::parse(&format!("{label}.{}", self.0))
    }

    /// True when `self` equals `zone` or lies below it.
    pub fn is_at_or_below(&self, zone: &Name) -> bool {
        if self.0 == zone.0 {
            return true;
        }
        let Some(dot) = self.0.len().checked_sub(zone.0.len() + 1) else {
            return false;
        };
        let bytes = self.0.as_bytes();
        self.0.ends_with(&zone.0) && bytes[dot] == b'.' && (dot == 0 || bytes[dot - 1] != b'\\')
    }

    /// The labels of `self` left of `base`, if `self` lies strictly below `base`
    /// (`_443._tcp.example.com` relative to `example.com` is `["_443", "_tcp"]`).
    pub fn labels_below(&self, base: &Name) -> Option<Vec<&str>> {
        if self.0.len() <= base.0.len() || !self.is_at_or_below(base) {
            return None;
        }
        let prefix = &self.0[..self.0.len() - base.0.len() - 1];
        Some(split_labels(prefix))
    }

    /// The SOA RNAME of a mailbox (RFC 1035 §8): the `@` becomes a label
    /// boundary and dots before it are escaped (`first.last@example.com` is
    /// `first\.last.example.com`). Text without `@` is taken as a name.
    ///
    /// # Errors
    /// When the result is not a valid name.
    pub fn from_mailbox(text: &str) -> Result<Name, NameError> {
        match text.trim().split_once('@') {
            Some((local, domain)) => {
                Name::parse(&format!("{}.{domain}", local.replace('.', "\\.")))
            }
            None => Name::parse(text),
        }
    }

    /// The mailbox of an SOA RNAME, for APIs that take an address:
    /// `first\.last.example.com` is `first.last@example.com`.
    pub fn to_mailbox(&self) -> String {
        let labels = split_labels(&self.0);
        let local = labels
            .first()
            .copied()
            .unwrap_or_default()
            .replace("\\.", ".");
        match self.0.get(labels.first().map_or(0, |l| l.len()) + 1..) {
            Some(domain) if !domain.is_empty() => format!("{local}@{domain}"),
            _ => local,
        }
    }

    /// The parent name, if there is one.
    pub fn parent(&self) -> Option<Name> {
        let first = split_labels(&self.0).into_iter().next()?;
        self.0
            .get(first.len() + 1..)
            .filter(|rest| !rest.is_empty())
            .map(|rest| Name(rest.to_string()))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Name::parse(&text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

/// The record types the program reads and writes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum RecordType {
    A,
    Aaaa,
    Mx,
    Srv,
    Caa,
    Txt,
    Tlsa,
    Soa,
    Ns,
    Cname,
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Mx => "MX",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
            RecordType::Txt => "TXT",
            RecordType::Tlsa => "TLSA",
            RecordType::Soa => "SOA",
            RecordType::Ns => "NS",
            RecordType::Cname => "CNAME",
        })
    }
}

/// Record data in canonical form. Equality is the canonical comparison.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx {
        preference: u16,
        exchange: Name,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// CAA (RFC 8659): the tag lower-cased, the value without quotes.
    Caa {
        flags: u8,
        tag: String,
        value: String,
    },
    /// TXT with its character-strings joined; split again into strings of at most
    /// 255 bytes on the wire (RFC 1035 §3.3.14, RFC 7208 §3.3).
    Txt(String),
    Tlsa {
        usage: u8,
        selector: u8,
        matching: u8,
        data: Vec<u8>,
    },
    Soa(Soa),
    Ns(Name),
    Cname(Name),
}

/// The fields of an SOA record (RFC 1035 §3.3.13).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl RData {
    pub fn record_type(&self) -> RecordType {
        match self {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::Aaaa,
            RData::Mx { .. } => RecordType::Mx,
            RData::Srv { .. } => RecordType::Srv,
            RData::Caa { .. } => RecordType::Caa,
            RData::Txt(_) => RecordType::Txt,
            RData::Tlsa { .. } => RecordType::Tlsa,
            RData::Soa(_) => RecordType::Soa,
            RData::Ns(_) => RecordType::Ns,
            RData::Cname(_) => RecordType::Cname,
        }
    }

    /// TXT data as the character-strings sent on the wire, each at most 255 bytes.
    pub fn txt_strings(text: &str) -> Vec<&[u8]> {
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return vec![bytes];
        }
        bytes.chunks(255).collect()
    }
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(addr) => write!(f, "{addr}"),
            RData::Aaaa(addr) => write!(f, "{addr}"),
            RData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "{priority} {weight} {port} {target}"),
            RData::Caa { flags, tag, value } => write!(f, "{flags} {tag} \"{value}\""),
            RData::Txt(text) => f.write_str(text),
            RData::Tlsa {
                usage,
                selector,
                matching,
                data,
            } => {
                write!(f, "{usage} {selector} {matching} ")?;
                data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            RData::Soa(soa) => write!(
                f,
                "{} {} {} {} {} {} {}",
                soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
            ),
            RData::Ns(name) | RData::Cname(name) => write!(f, "{name}"),
        }
    }
}

/// One resource record. Two records are the same record when name and data are
/// equal; the TTL is carried along but not compared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: Name,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn new(name: Name, ttl: u32, data: RData) -> Self {
        Record { name, ttl, data }
    }

    pub fn record_type(&self) -> RecordType {
        self.data.record_type()
    }

    /// Same name and same data (the canonical comparison; TTL ignored).
    pub fn same_as(&self, other: &Record) -> bool {
        self.name == other.name && self.data == other.data
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.name,
            self.ttl,
            self.record_type(),
            self.data
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively_and_without_trailing_dot() {
        assert_eq!(
            Name::parse("Mail.Example.COM.").unwrap(),
            Name::parse("mail.example.com").unwrap()
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert!(matches!(
            Name::parse("a..b"),
            Err(NameError::BadLabelLength(_))
        ));
        assert!(matches!(
            Name::parse("a b.example"),
            Err(NameError::BadCharacter(_))
        ));
        assert!(Name::parse(&"a".repeat(64)).is_err());
        assert!(Name::parse("_443._tcp.example.com").is_ok());
        assert!(Name::parse("*.example.com").is_ok());
    }

    #[test]
    fn ipv6_spellings_compare_equal() {
        let a = RData::Aaaa("2001:db8::1".parse().unwrap());
        let b = RData::Aaaa("2001:0DB8:0000::0001".parse().unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn subdomain_relations() {
        let zone = Name::parse("example.com").unwrap();
        let deep = Name::parse("_443._tcp.www.example.com").unwrap();
        assert!(deep.is_at_or_below(&zone));
        assert!(zone.is_at_or_below(&zone));
        assert!(!Name::parse("badexample.com").unwrap().is_at_or_below(&zone));
        assert_eq!(
            deep.labels_below(&Name::parse("www.example.com").unwrap()),
            Some(vec!["_443", "_tcp"])
        );
        assert_eq!(zone.labels_below(&zone), None);
    }

    /// RFC 1035 §5.1: `\.` is a dot inside a label (an SOA RNAME whose
    /// mailbox has a dot), never a label boundary.
    #[test]
    fn escaped_dots_stay_inside_their_label() {
        let rname = Name::parse("First\\.Last.example.com.").unwrap();
        assert_eq!(rname.as_str(), "first\\.last.example.com");
        assert_eq!(rname.to_fqdn(), "first\\.last.example.com.");
        let zone = Name::parse("example.com").unwrap();
        assert!(rname.is_at_or_below(&zone));
        assert_eq!(rname.labels_below(&zone), Some(vec!["first\\.last"]));
        assert_eq!(rname.parent(), Some(zone.clone()));
        // `a\.example.com` is the one label "a.example" under com.
        let one = Name::parse("a\\.example.com").unwrap();
        assert!(!one.is_at_or_below(&zone));
        assert_eq!(one.parent(), Name::parse("com").ok());
        assert_eq!(zone.parent(), Name::parse("com").ok());
        assert_eq!(Name::parse("com").unwrap().parent(), None);
        assert_eq!(
            Name::from_mailbox("First.Last@example.com"),
            Ok(rname.clone())
        );
        assert_eq!(rname.to_mailbox(), "first.last@example.com");
        assert_eq!(
            Name::from_mailbox("hostmaster@example.com")
                .unwrap()
                .as_str(),
            "hostmaster.example.com"
        );
        assert!(Name::from_mailbox("a+b@example.com").is_err());
        // Other escapes and a lone backslash are refused.
        for bad in ["a\\b.example", "a\\", "a\\065.example"] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        // 63 characters on the wire: the escape counts once.
        let long = format!("{}\\.{}.example", "a".repeat(31), "b".repeat(31));
        assert!(Name::parse(&long).is_ok());
        let too_long = format!("{}\\.{}.example", "a".repeat(32), "b".repeat(31));
        assert!(Name::parse(&too_long).is_err());
    }

    #[test]
    fn long_txt_is_split_into_255_byte_strings() {
        let text = "x".repeat(600);
        let parts = RData::txt_strings(&text);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![255, 255, 90]
        );
    }
}
