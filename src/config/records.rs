//! The record-key language of `[domain:NAME]` sections (docs/configuration.md): which keys
//! are records, the operator (`=` set, `+=` add, `-=` remove), dotted keys that
//! narrow the scope and supply fields, and the original's field order: key parts
//! fill a record's fields from the first, the value's first field is the content
//! and its further fields fill the record's fields from the last one backwards,
//! overriding the key's.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dns::record::Name;

/// What a key does to the records already in its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `key = a, b`: afterwards the scope holds exactly a and b.
    Set,
    /// `key += a`: add a, delete nothing.
    Add,
    /// `key -= a`: delete a if present.
    Remove,
}

/// An address entry: a fixed address or the public address (`auto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrEntry<A> {
    Fixed(A),
    Auto,
}

/// A CAA entry: explicit, or `auto` (the CA of the domain's certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaaEntry {
    Fixed {
        flags: u8,
        tag: String,
        value: String,
    },
    Auto,
}

/// SRV fields; `None` in a scope means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SrvFields {
    pub service: Option<String>,
    pub proto: Option<String>,
    pub port: Option<u16>,
    pub weight: Option<u16>,
    pub priority: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvEntry {
    pub service: String,
    pub proto: String,
    pub port: u16,
    pub weight: u16,
    pub priority: u16,
    pub target: Name,
}

/// TLSA fields; `None` in a scope means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsaFields {
    pub proto: Option<String>,
    pub port: Option<u16>,
    pub matching: Option<u8>,
    pub selector: Option<u8>,
    pub usage: Option<u8>,
}

/// A TLSA entry (`auto:USAGE:SELECTOR:MATCHINGTYPE:PORT:PROTO`): records are
/// computed from the certificates of the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsaEntry {
    pub proto: String,
    pub port: u16,
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
}

/// The SOA fields a key can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaField {
    PrimaryNs,
    Hostmaster,
    Refresh,
    Retry,
    Expire,
    NegativeTtl,
}

/// A record key with its parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Ip4(Vec<AddrEntry<Ipv4Addr>>),
    Ip6(Vec<AddrEntry<Ipv6Addr>>),
    Mx {
        scope_priority: Option<u16>,
        entries: Vec<(Name, u16)>,
    },
    Srv {
        scope: SrvFields,
        entries: Vec<SrvEntry>,
    },
    Caa(Vec<CaaEntry>),
    Tlsa {
        scope: TlsaFields,
        entries: Vec<TlsaEntry>,
    },
    /// DKIM records of the named `[dkim:...]` sections.
    Dkim {
        scope_section: Option<String>,
        sections: Vec<String>,
    },
    /// SPF mechanisms, `all` last.
    Spf(Vec<String>),
    /// `dmarc.TAG = value` (tag `None` for the bare `dmarc` key).
    Dmarc {
        tag: Option<String>,
        value: Option<String>,
    },
    Adsp(Option<String>),
    /// `tlsrpt = mailto:..., https://...`: the report URIs of the one
    /// `v=TLSRPTv1` TXT at `_smtp._tls.NAME` (RFC 8460).
    TlsRpt(Vec<String>),
    Acme(Vec<String>),
    Soa {
        field: SoaField,
        value: Option<String>,
    },
}

impl RecordKind {
    /// The word the log shows for records of this key (the original's words).
    pub fn log_type(&self) -> &'static str {
        match self {
            RecordKind::Ip4(_) => "A",
            RecordKind::Ip6(_) => "AAAA",
            RecordKind::Mx { .. } => "MX",
            RecordKind::Srv { .. } => "SRV",
            RecordKind::Caa(_) => "CAA",
            RecordKind::Tlsa { .. } => "TLSA",
            RecordKind::Dkim { .. } => "DKIM",
            RecordKind::Spf(_) => "SPF",
            RecordKind::Dmarc { .. } => "DMARC",
            RecordKind::Adsp(_) => "ADSP",
            RecordKind::TlsRpt(_) => "TLSRPT",
            RecordKind::Acme(_) => "ACME",
            RecordKind::Soa { .. } => "SOA",
        }
    }

    /// True for the records the update phase sets (TLSA and DKIM follow material).
    pub fn is_static(&self) -> bool {
        !matches!(self, RecordKind::Tlsa { .. } | RecordKind::Dkim { .. })
    }

    /// True when the value asks for the public IP address.
    pub fn needs_public_ip4(&self) -> bool {
        matches!(self, RecordKind::Ip4(e) if e.contains(&AddrEntry::Auto))
    }

    pub fn needs_public_ip6(&self) -> bool {
        matches!(self, RecordKind::Ip6(e) if e.contains(&AddrEntry::Auto))
    }
}

/// A record key of a domain section, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRule {
    /// The key as written (lower-case, with its operator), for messages.
    pub key: String,
    pub op: Op,
    pub kind: RecordKind,
}

impl RecordRule {
    /// True for `key =` / `key = none`: delete everything in scope.
    pub fn clears_scope(&self) -> bool {
        self.op == Op::Set
            && match &self.kind {
                RecordKind::Ip4(e) => e.is_empty(),
                RecordKind::Ip6(e) => e.is_empty(),
                RecordKind::Mx { entries, .. } => entries.is_empty(),
                RecordKind::Srv { entries, .. } => entries.is_empty(),
                RecordKind::Caa(e) => e.is_empty(),
                RecordKind::Tlsa { entries, .. } => entries.is_empty(),
                RecordKind::Dkim { sections, .. } => sections.is_empty(),
                RecordKind::Spf(e) | RecordKind::Acme(e) | RecordKind::TlsRpt(e) => e.is_empty(),
                RecordKind::Dmarc { value, .. } | RecordKind::Adsp(value) => value.is_none(),
                RecordKind::Soa { .. } => false,
            }
    }
}

/// Record keys and how each is recognised: `dmarc` and `soa` by the part before
/// the first dot, the others by their name followed by nothing, `.`, `+` or `-`.
const RECORD_KEYS: &[&str] = &[
    "ip4", "ip6", "mx", "srv", "caa", "tlsa", "dkim", "spf", "adsp", "acme", "dmarc", "soa",
    "tlsrpt",
];

/// True for a key that says "change nothing": `soa =` with no value, which the
/// original read as an SOA without fields to set.
pub fn changes_nothing(key: &str, value: &str) -> bool {
    key == "soa" && value.trim().is_empty()
}

/// Parses `key` (lower-case, operator attached) with `value`. `Ok(None)` when the
/// key is not a record key at all.
///
/// # Errors
/// A message saying what is wrong with a record key or its value.
pub fn parse_rule(key: &str, value: &str) -> Result<Option<RecordRule>, String> {
    let (base, op) = match key.as_bytes().last() {
        Some(b'+') => (&key[..key.len() - 1], Op::Add),
        Some(b'-') => (&key[..key.len() - 1], Op::Remove),
        _ => (key, Op::Set),
    };
    let mut parts = base.split('.');
    let name = parts.next().unwrap_or_default();
    if !RECORD_KEYS.contains(&name) {
        return Ok(None);
    }
    let key_parts: Vec<&str> = parts.collect();
    // `caa.accounturi` qualifies `caa = auto` (config::mailpolicy), it is no record.
    if name == "caa" && key_parts == ["accounturi"] {
        return Ok(None);
    }
    if key_parts.iter().any(|p| p.is_empty()) {
        return Err(format!("\"{key}\" has an empty part between dots"));
    }
    let entries = split_entries(value);
    let kind = match name {
        "ip4" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Ip4(addresses(&entries)?)
        }
        "ip6" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Ip6(addresses(&entries)?)
        }
        "mx" => parse_mx(&key_parts, &entries)?,
        "srv" => parse_srv(&key_parts, &entries)?,
        "caa" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Caa(
                entries
                    .iter()
                    .map(|e| parse_caa(e))
                    .collect::<Result<_, _>>()?,
            )
        }
        "tlsa" => parse_tlsa(&key_parts, &entries)?,
        "dkim" => parse_dkim(&key_parts, &entries)?,
        "spf" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Spf(parse_spf(&entries)?)
        }
        "adsp" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Adsp(parse_adsp(&entries)?)
        }
        "tlsrpt" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::TlsRpt(parse_tlsrpt(&entries)?)
        }
        "acme" => {
            no_key_parts(name, &key_parts)?;
            RecordKind::Acme(entries.iter().map(|e| e.to_string()).collect())
        }
        "dmarc" => parse_dmarc(&key_parts, value)?,
        "soa" => parse_soa(&key_parts, value)?,
        _ => return Ok(None),
    };
    Ok(Some(RecordRule {
        key: key.to_string(),
        op,
        kind,
    }))
}

/// Splits a value into entries at commas and line breaks; `none` alone (or an
/// empty value) means no entries.
fn split_entries(value: &str) -> Vec<&str> {
    let entries: Vec<&str> = value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() == 1 && entries[0].eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    entries
}

fn no_key_parts(name: &str, parts: &[&str]) -> Result<(), String> {
    if parts.is_empty() {
        Ok(())
    } else {
        Err(format!("\"{name}\" takes no dotted key parts"))
    }
}

/// The original's field rule. `fields` are the record's fields in key order.
/// Returns the content and each field's value (key parts first, then value
/// fields from the last field backwards, overriding).
fn fill_fields<'a>(
    record: &str,
    fields: &[&str],
    key_parts: &[&'a str],
    entry: &'a str,
) -> Result<(&'a str, Vec<Option<&'a str>>), String> {
    if key_parts.len() > fields.len() {
        return Err(format!(
            "\"{record}\" takes at most {} dotted key parts ({})",
            fields.len(),
            fields.join(", ")
        ));
    }
    let mut values: Vec<Option<&str>> = vec![None; fields.len()];
    for (slot, part) in values.iter_mut().zip(key_parts) {
        *slot = Some(*part);
    }
    let mut value_fields = entry.split(':').map(str::trim);
    let content = value_fields.next().unwrap_or_default();
    let rest: Vec<&str> = value_fields.collect();
    if rest.len() > fields.len() {
        return Err(format!(
            "\"{entry}\" has more fields than a {record} record: content and at most {} more ({})",
            fields.len(),
            fields.iter().rev().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    for (i, value) in rest.into_iter().enumerate() {
        values[fields.len() - 1 - i] = Some(value);
    }
    Ok((content, values))
}

fn number<T: std::str::FromStr>(what: &str, text: Option<&str>) -> Result<Option<T>, String> {
    text.map(|t| {
        t.parse()
            .map_err(|_| format!("{what} \"{t}\" is not a valid number"))
    })
    .transpose()
}

fn host(text: &str) -> Result<Name, String> {
    Name::parse(text).map_err(|e| format!("\"{text}\" is not a host name: {e}"))
}

fn addresses<A: std::str::FromStr>(entries: &[&str]) -> Result<Vec<AddrEntry<A>>, String> {
    entries
        .iter()
        .map(|e| {
            if e.eq_ignore_ascii_case("auto") {
                Ok(AddrEntry::Auto)
            } else {
                e.parse()
                    .map(AddrEntry::Fixed)
                    .map_err(|_| format!("\"{e}\" is not an IP address (nor auto)"))
            }
        })
        .collect()
}

fn parse_mx(key_parts: &[&str], entries: &[&str]) -> Result<RecordKind, String> {
    const FIELDS: &[&str] = &["priority"];
    let scope_priority = number("priority", key_parts.first().copied())?;
    let entries = entries
        .iter()
        .map(|entry| {
            let (content, fields) = fill_fields("mx", FIELDS, key_parts, entry)?;
            Ok((host(content)?, number("priority", fields[0])?.unwrap_or(10)))
        })
        .collect::<Result<_, String>>()?;
    if key_parts.len() > 1 {
        return Err("\"mx\" takes at most one dotted key part (priority)".into());
    }
    Ok(RecordKind::Mx {
        scope_priority,
        entries,
    })
}

/// A service or protocol name as used in `_service._proto` labels.
fn service_label(what: &str, text: &str) -> Result<String, String> {
    let label = text.trim_start_matches('_').to_ascii_lowercase();
    let valid = !label.is_empty()
        && label.len() <= 62
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(label)
    } else {
        Err(format!("{what} \"{text}\" is not a valid label"))
    }
}

fn parse_srv(key_parts: &[&str], entries: &[&str]) -> Result<RecordKind, String> {
    const FIELDS: &[&str] = &["service", "proto", "port", "weight", "priority"];
    if key_parts.len() > FIELDS.len() {
        return Err(format!(
            "\"srv\" takes at most {} dotted key parts ({})",
            FIELDS.len(),
            FIELDS.join(", ")
        ));
    }
    let part = |i: usize| key_parts.get(i).copied();
    let scope = SrvFields {
        service: part(0).map(|s| service_label("service", s)).transpose()?,
        proto: part(1).map(|s| service_label("protocol", s)).transpose()?,
        port: number("port", part(2))?,
        weight: number("weight", part(3))?,
        priority: number("priority", part(4))?,
    };
    let entries = entries
        .iter()
        .map(|entry| {
            let (content, f) = fill_fields("srv", FIELDS, key_parts, entry)?;
            Ok(SrvEntry {
                service: service_label("service", f[0].unwrap_or("http"))?,
                proto: service_label("protocol", f[1].unwrap_or("tcp"))?,
                port: number("port", f[2])?.unwrap_or(443),
                weight: number("weight", f[3])?.unwrap_or(0),
                priority: number("priority", f[4])?.unwrap_or(0),
                target: host(content)?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(RecordKind::Srv { scope, entries })
}

fn parse_caa(entry: &str) -> Result<CaaEntry, String> {
    if entry.eq_ignore_ascii_case("auto") {
        return Ok(CaaEntry::Auto);
    }
    let mut words = entry.split_whitespace();
    let (Some(flags), Some(tag)) = (words.next(), words.next()) else {
        return Err(format!(
            "CAA \"{entry}\" is not FLAG TAG VALUE (e.g. 0 issue letsencrypt.org) nor auto"
        ));
    };
    let flags: u8 = flags
        .parse()
        .map_err(|_| format!("CAA flag \"{flags}\" is not a number from 0 to 255"))?;
    let tag = tag.to_ascii_lowercase();
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("CAA tag \"{tag}\" is not alphanumeric"));
    }
    let value = words.collect::<Vec<_>>().join(" ");
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(&value)
        .to_string();
    Ok(CaaEntry::Fixed { flags, tag, value })
}

fn tlsa_number(what: &str, text: Option<&str>, max: u8) -> Result<Option<u8>, String> {
    match number::<u8>(what, text)? {
        Some(n) if n > max => Err(format!(
            "TLSA {what} {n} is not one of {}",
            (0..=max)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        other => Ok(other),
    }
}

fn parse_tlsa(key_parts: &[&str], entries: &[&str]) -> Result<RecordKind, String> {
    const FIELDS: &[&str] = &["proto", "port", "matchingtype", "selector", "usage"];
    if key_parts.len() > FIELDS.len() {
        return Err(format!(
            "\"tlsa\" takes at most {} dotted key parts ({})",
            FIELDS.len(),
            FIELDS.join(", ")
        ));
    }
    let part = |i: usize| key_parts.get(i).copied();
    let scope = TlsaFields {
        proto: part(0).map(|s| service_label("protocol", s)).transpose()?,
        port: number("port", part(1))?,
        matching: tlsa_number("matching type", part(2), 2)?,
        selector: tlsa_number("selector", part(3), 1)?,
        usage: tlsa_number("usage", part(4), 3)?,
    };
    let entries = entries
        .iter()
        .map(|entry| {
            let (content, f) = fill_fields("tlsa", FIELDS, key_parts, entry)?;
            if !content.eq_ignore_ascii_case("auto") {
                return Err(format!(
                    "TLSA value \"{entry}\" must start with auto (records come from the certificates)"
                ));
            }
            Ok(TlsaEntry {
                proto: service_label("protocol", f[0].unwrap_or("tcp"))?,
                port: number("port", f[1])?
                    .ok_or_else(|| format!("TLSA \"{entry}\" names no port (tlsa.tcp.PORT or auto:U:S:M:PORT)"))?,
                matching: tlsa_number("matching type", f[2], 2)?.unwrap_or(1),
                selector: tlsa_number("selector", f[3], 1)?.unwrap_or(0),
                usage: tlsa_number("usage", f[4], 3)?.unwrap_or(3),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(RecordKind::Tlsa { scope, entries })
}

fn parse_dkim(key_parts: &[&str], entries: &[&str]) -> Result<RecordKind, String> {
    const FIELDS: &[&str] = &["dkimsection"];
    let scope_section = key_parts.first().map(|s| s.to_string());
    let sections = entries
        .iter()
        .map(|entry| {
            let (content, f) = fill_fields("dkim", FIELDS, key_parts, entry)?;
            if !content.eq_ignore_ascii_case("auto") {
                return Err(format!("DKIM value \"{entry}\" must be auto:DKIMSECTION"));
            }
            f[0].map(str::to_string).ok_or_else(|| {
                format!(
                    "DKIM \"{entry}\" names no [dkim:...] section (auto:NAME or dkim.NAME = auto)"
                )
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(RecordKind::Dkim {
        scope_section,
        sections,
    })
}

/// SPF terms (RFC 7208 §4.6.1, §5, §6): an optional qualifier and a mechanism,
/// or a modifier `name=value`.
fn parse_spf(entries: &[&str]) -> Result<Vec<String>, String> {
    const MECHANISMS: &[&str] = &["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"];
    let mut terms = Vec::new();
    for entry in entries {
        for term in entry.split_whitespace() {
            if term.eq_ignore_ascii_case("v=spf1") {
                continue;
            }
            let bare = term.trim_start_matches(['+', '-', '?', '~']);
            let name = bare
                .split([':', '/', '='])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let modifier = bare.contains('=') && matches!(name.as_str(), "redirect" | "exp");
            if !modifier && name == "aaaa" {
                return Err(format!(
                    "\"{term}\" is not an SPF mechanism (receivers fail the whole record on it, RFC 7208 §4.6.1); \"a\" already matches the name's AAAA records too: write {}a",
                    &term[..term.len() - bare.len()]
                ));
            }
            if !modifier && !MECHANISMS.contains(&name.as_str()) {
                return Err(format!(
                    "\"{term}\" is not an SPF mechanism or modifier (mechanisms: {})",
                    MECHANISMS.join(", ")
                ));
            }
            terms.push(term.to_string());
        }
    }
    Ok(terms)
}

/// TLS-RPT report URIs (RFC 8460 §3): `mailto:` or `https:`, no `,` or `;`
/// inside (they separate URIs and fields).
fn parse_tlsrpt(entries: &[&str]) -> Result<Vec<String>, String> {
    entries
        .iter()
        .map(|entry| {
            let lower = entry.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("mailto:")
                .or_else(|| lower.strip_prefix("https://"));
            match rest {
                Some(rest) if !rest.is_empty() && !entry.contains([';', ' ', '"']) => {
                    Ok(entry.to_string())
                }
                _ => Err(format!(
                    "TLS-RPT report URI \"{entry}\" is not a mailto: or https:// URI (RFC 8460 §3)"
                )),
            }
        })
        .collect()
}

fn parse_adsp(entries: &[&str]) -> Result<Option<String>, String> {
    match entries {
        [] => Ok(None),
        [value] => {
            let value = value.to_ascii_lowercase();
            if matches!(value.as_str(), "all" | "unknown" | "discardable") {
                Ok(Some(value))
            } else {
                Err(format!(
                    "ADSP \"{value}\" is not one of all, unknown, discardable"
                ))
            }
        }
        _ => Err("ADSP takes one value".into()),
    }
}

fn parse_dmarc(key_parts: &[&str], value: &str) -> Result<RecordKind, String> {
    let value = value.trim();
    let value =
        (!value.is_empty() && !value.eq_ignore_ascii_case("none")).then(|| value.to_string());
    match key_parts {
        [] => {
            if value.is_some() {
                return Err(
                    "\"dmarc\" without a tag only takes an empty value (\"only the tags given here\"); set tags with dmarc.TAG".into(),
                );
            }
            Ok(RecordKind::Dmarc { tag: None, value })
        }
        [tag] => {
            let tag = tag.to_ascii_lowercase();
            if tag == "v" {
                return Err("dmarc.v is always DMARC1 and cannot be set".into());
            }
            if let Some(v) = &value
                && v.contains(';')
            {
                return Err(format!("DMARC value \"{v}\" must not contain ';'"));
            }
            if tag == "p" && value.is_none() {
                return Err("dmarc.p cannot be empty (none, quarantine or reject)".into());
            }
            Ok(RecordKind::Dmarc {
                tag: Some(tag),
                value,
            })
        }
        _ => Err("\"dmarc\" takes one dotted key part, the tag (dmarc.p, dmarc.rua, ...)".into()),
    }
}

fn parse_soa(key_parts: &[&str], value: &str) -> Result<RecordKind, String> {
    let field = match key_parts {
        [field] => match *field {
            "primns" => SoaField::PrimaryNs,
            "hostmaster" => SoaField::Hostmaster,
            "refresh" => SoaField::Refresh,
            "retry" => SoaField::Retry,
            "expire" => SoaField::Expire,
            "ncttl" => SoaField::NegativeTtl,
            other => {
                return Err(format!(
                    "\"soa.{other}\" is not an SOA field (primns, hostmaster, refresh, retry, expire, ncttl)"
                ));
            }
        },
        _ => return Err("SOA keys are soa.FIELD (soa.primns, soa.refresh, ...)".into()),
    };
    let value = value.trim();
    let value = (!value.is_empty()).then(|| value.to_string());
    let Some(text) = &value else {
        return Err(format!("soa.{} needs a value", key_parts[0]));
    };
    match field {
        SoaField::PrimaryNs => {
            host(text)?;
        }
        SoaField::Hostmaster => {
            hostmaster_to_rname(text)?;
        }
        _ => {
            text.parse::<u32>().map_err(|_| {
                format!("soa.{} \"{text}\" is not a number of seconds", key_parts[0])
            })?;
        }
    }
    Ok(RecordKind::Soa { field, value })
}

/// The SOA RNAME for a hostmaster e-mail address (RFC 1035 §8): the `@` becomes
/// a label boundary; dots before it are escaped (`first.last@example.com` is
/// `first\.last.example.com.`), as the original accepted.
///
/// # Errors
/// When the text is not an address (or a name) usable as RNAME.
pub fn hostmaster_to_rname(text: &str) -> Result<Name, String> {
    Name::from_mailbox(text).map_err(|e| {
        format!(
            "hostmaster \"{text}\" is not a mailbox the SOA can hold: {e} (write an address such as hostmaster@example.com)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(key: &str, value: &str) -> RecordRule {
        parse_rule(key, value)
            .unwrap_or_else(|e| panic!("{key} = {value}: {e}"))
            .unwrap_or_else(|| panic!("{key} is not a record key"))
    }

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    #[test]
    fn operators_and_addresses() {
        let r = rule("ip4", "1.2.3.4,5.6.7.8,auto");
        assert_eq!(r.op, Op::Set);
        assert_eq!(
            r.kind,
            RecordKind::Ip4(vec![
                AddrEntry::Fixed("1.2.3.4".parse().unwrap()),
                AddrEntry::Fixed("5.6.7.8".parse().unwrap()),
                AddrEntry::Auto
            ])
        );
        assert_eq!(rule("ip4+", "6.5.4.3").op, Op::Add);
        assert_eq!(rule("ip4-", "6.5.4.3").op, Op::Remove);
        assert!(rule("ip4", "none").clears_scope());
        assert!(rule("ip4", "").clears_scope());
        assert!(!rule("ip4+", "").clears_scope());
        // AAAA entries are not split at ':'.
        assert_eq!(
            rule("ip6", "2001:db8::1").kind,
            RecordKind::Ip6(vec![AddrEntry::Fixed("2001:db8::1".parse().unwrap())])
        );
    }

    #[test]
    fn field_orders_follow_the_table() {
        assert_eq!(
            rule("mx", "mail.example.com").kind,
            RecordKind::Mx {
                scope_priority: None,
                entries: vec![(name("mail.example.com"), 10)]
            }
        );
        assert_eq!(
            rule("mx.30", "mail.example.com").kind,
            RecordKind::Mx {
                scope_priority: Some(30),
                entries: vec![(name("mail.example.com"), 30)]
            }
        );
        // Fields in the value override the key's.
        assert_eq!(
            rule("mx.30", "mail.example.com:20").kind,
            RecordKind::Mx {
                scope_priority: Some(30),
                entries: vec![(name("mail.example.com"), 20)]
            }
        );
        // srv.imap.tcp.143 = mail.example.com:11:19 is prio 11, weight 19, port 143.
        let RecordKind::Srv { scope, entries } =
            rule("srv.imap.tcp.143", "mail.example.com:11:19").kind
        else {
            panic!()
        };
        assert_eq!(
            entries,
            vec![SrvEntry {
                service: "imap".into(),
                proto: "tcp".into(),
                port: 143,
                weight: 19,
                priority: 11,
                target: name("mail.example.com")
            }]
        );
        assert_eq!(scope.service.as_deref(), Some("imap"));
        assert_eq!(scope.port, Some(143));
        assert_eq!(scope.weight, None);
        // Defaults: service http, proto tcp, port 443, weight 0, prio 0.
        let RecordKind::Srv { entries, .. } = rule("srv", "web.example.com").kind else {
            panic!()
        };
        assert_eq!(
            (
                entries[0].service.as_str(),
                entries[0].proto.as_str(),
                entries[0].port,
                entries[0].weight,
                entries[0].priority
            ),
            ("http", "tcp", 443, 0, 0)
        );
    }

    #[test]
    fn tlsa_forms() {
        let entry = |usage, selector, matching, port: u16, proto: &str| TlsaEntry {
            proto: proto.into(),
            port,
            usage,
            selector,
            matching,
        };
        let RecordKind::Tlsa { scope, entries } =
            rule("tlsa.tcp.443", "auto:3:1:1, auto:2:0:1").kind
        else {
            panic!()
        };
        assert_eq!(
            entries,
            vec![entry(3, 1, 1, 443, "tcp"), entry(2, 0, 1, 443, "tcp")]
        );
        assert_eq!(
            (scope.proto.as_deref(), scope.port),
            (Some("tcp"), Some(443))
        );
        let RecordKind::Tlsa { scope, entries } = rule("tlsa", "auto:3:1:1:25:tcp").kind else {
            panic!()
        };
        assert_eq!(entries, vec![entry(3, 1, 1, 25, "tcp")]);
        assert_eq!(scope, TlsaFields::default());
        let RecordKind::Tlsa { entries, .. } = rule("tlsa.tcp.25", "auto").kind else {
            panic!()
        };
        assert_eq!(entries, vec![entry(3, 0, 1, 25, "tcp")]);
        let RecordKind::Tlsa { entries, .. } = rule("tlsa.tcp.143.1.0.2", "auto").kind else {
            panic!()
        };
        assert_eq!(entries, vec![entry(2, 0, 1, 143, "tcp")]);
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            rule("caa", "0 issue letsencrypt.org, 0 iodef \"mailto:a@b.c\"").kind,
            RecordKind::Caa(vec![
                CaaEntry::Fixed {
                    flags: 0,
                    tag: "issue".into(),
                    value: "letsencrypt.org".into()
                },
                CaaEntry::Fixed {
                    flags: 0,
                    tag: "iodef".into(),
                    value: "mailto:a@b.c".into()
                }
            ])
        );
        assert_eq!(
            rule("caa", "auto").kind,
            RecordKind::Caa(vec![CaaEntry::Auto])
        );
        assert_eq!(
            rule("spf", "+mx, -ip4:192.0.2.1 a ?all").kind,
            RecordKind::Spf(vec![
                "+mx".into(),
                "-ip4:192.0.2.1".into(),
                "a".into(),
                "?all".into()
            ])
        );
        assert_eq!(
            rule("dmarc.rua", "mailto:a@example.com,mailto:b@example.com").kind,
            RecordKind::Dmarc {
                tag: Some("rua".into()),
                value: Some("mailto:a@example.com,mailto:b@example.com".into())
            }
        );
        assert!(rule("dmarc", "").clears_scope());
        assert_eq!(
            rule("adsp", "All").kind,
            RecordKind::Adsp(Some("all".into()))
        );
        assert!(rule("adsp", "").clears_scope());
        assert_eq!(
            rule("dkim", "auto:mail").kind,
            RecordKind::Dkim {
                scope_section: None,
                sections: vec!["mail".into()]
            }
        );
        assert_eq!(
            rule("dkim.mail", "auto").kind,
            RecordKind::Dkim {
                scope_section: Some("mail".into()),
                sections: vec!["mail".into()]
            }
        );
        assert_eq!(
            rule("soa.hostmaster", "admin@example.com").kind,
            RecordKind::Soa {
                field: SoaField::Hostmaster,
                value: Some("admin@example.com".into())
            }
        );
    }

    #[test]
    fn tlsrpt_uris() {
        assert_eq!(
            rule("tlsrpt", "mailto:tls@example.com, https://r.example.com/v1").kind,
            RecordKind::TlsRpt(vec![
                "mailto:tls@example.com".into(),
                "https://r.example.com/v1".into()
            ])
        );
        assert!(rule("tlsrpt", "none").clears_scope());
        assert!(rule("tlsrpt", "").clears_scope());
    }

    #[test]
    fn non_record_keys_are_not_records() {
        for key in [
            "caa.accounturi",
            "handler",
            "ip4lookup",
            "ttl",
            "cert",
            "mxx",
            "dkimdrain",
            "spfx",
        ] {
            assert_eq!(parse_rule(key, "x"), Ok(None), "{key}");
        }
    }

    #[test]
    fn bad_values_are_errors() {
        let cases = [
            ("ip4", "1.2.3.4 # old"),
            ("ip4", "1.2.3"),
            ("ip6", "1.2.3.4"),
            ("ip4.x", "1.2.3.4"),
            ("mx", "a:20:30"),
            ("mx.x", "a"),
            ("mx.10.20", "a"),
            ("srv.*.tcp", "a"),
            ("srv", "a:1:2:3:tcp:imap:7"),
            ("tlsa.tcp.443.9", "auto"),
            ("tlsa.tcp.443", "auto:4"),
            ("tlsa", "auto:3:1:1"),
            ("tlsa.tcp.443", "abcd"),
            ("caa", "issue"),
            ("caa", "x issue a"),
            ("spf", "+mxx"),
            ("adsp", "sometimes"),
            ("dmarc", "p=none"),
            ("dmarc.p", ""),
            ("dmarc.a.b", "x"),
            ("soa.serial", "5"),
            ("soa.refresh", "soon"),
            ("soa.hostmaster", "john+doe@example.com"),
            ("dkim", "auto"),
            ("ip4..", "x"),
            ("tlsrpt", "http://reports.example.com/tlsrpt"),
            ("tlsrpt", "reports@example.com"),
            ("tlsrpt", "mailto:"),
            ("tlsrpt", "mailto:a@example.com; x"),
            ("tlsrpt.x", "mailto:a@example.com"),
            ("caa.issuer", "auto"),
        ];
        for (key, value) in cases {
            assert!(
                parse_rule(key, value).is_err(),
                "{key} = {value} should be an error"
            );
        }
    }

    #[test]
    fn rname_from_address() {
        assert_eq!(
            hostmaster_to_rname("hostmaster@example.com"),
            Ok(name("hostmaster.example.com"))
        );
        assert_eq!(
            hostmaster_to_rname("stefan.helmert@t-online.de").map(|n| n.to_fqdn()),
            Ok("stefan\\.helmert.t-online.de.".to_string())
        );
    }
}
