//! What a provider can do, stated in its registry entry: the record types it
//! writes, the SOA fields it can change, and how a zone's changes reach the
//! server. The configuration check refuses a key a provider cannot honour
//! before any change is made, and `--check` prints these.

use std::fmt;

use crate::dns::record::RecordType;

/// The capabilities of one provider.
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    /// The record types it can write, besides SOA (see `soa`).
    pub types: &'static [RecordType],
    /// The SOA fields it can change; empty when it cannot write an SOA.
    pub soa: &'static [SoaField],
    pub application: Application,
}

impl Capabilities {
    /// True when the provider can write records of `rtype` (SOA: some field).
    pub fn writes(&self, rtype: RecordType) -> bool {
        if rtype == RecordType::Soa {
            !self.soa.is_empty()
        } else {
            self.types.contains(&rtype)
        }
    }

    pub fn changes_soa(&self, field: SoaField) -> bool {
        self.soa.contains(&field)
    }

    /// The record types as a list for messages (`A, AAAA, MX`), or `none`.
    pub fn types_text(&self) -> String {
        if self.types.is_empty() {
            return "none".into();
        }
        self.types
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SOA fields as a list for messages, or `none`.
    pub fn soa_text(&self) -> String {
        if self.soa.is_empty() {
            return "none".into();
        }
        self.soa
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a provider applies the change set of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Application {
    /// In one transaction: all changes or none.
    Atomic,
    /// RRset by RRset: a refused RRset leaves the others applied.
    PerRRset,
    /// Record by record: a refused record leaves the others applied.
    PerRecord,
}

impl Application {
    pub fn is_atomic(self) -> bool {
        self == Application::Atomic
    }
}

impl fmt::Display for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Application::Atomic => "atomic (all changes of a zone or none)",
            Application::PerRRset => {
                "per RRset (a refused RRset does not stop the others of the zone)"
            }
            Application::PerRecord => {
                "per record (a refused record does not stop the others of the zone)"
            }
        })
    }
}

/// An SOA field a provider may change, named as in the `soa.*` keys. The
/// serial is not among them: every provider that writes an SOA raises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaField {
    PrimaryNs,
    Hostmaster,
    Refresh,
    Retry,
    Expire,
    NegativeTtl,
}

impl fmt::Display for SoaField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SoaField::PrimaryNs => "primns",
            SoaField::Hostmaster => "hostmaster",
            SoaField::Refresh => "refresh",
            SoaField::Retry => "retry",
            SoaField::Expire => "expire",
            SoaField::NegativeTtl => "ncttl",
        })
    }
}

/// Every SOA field.
pub(crate) const ALL_SOA_FIELDS: &[SoaField] = &[
    SoaField::PrimaryNs,
    SoaField::Hostmaster,
    SoaField::Refresh,
    SoaField::Retry,
    SoaField::Expire,
    SoaField::NegativeTtl,
];

/// Every record type the program writes, besides SOA.
pub(crate) const ALL_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::Aaaa,
    RecordType::Cname,
    RecordType::Ns,
    RecordType::Mx,
    RecordType::Txt,
    RecordType::Srv,
    RecordType::Tlsa,
    RecordType::Caa,
];

/// A server or file the program changes with its own code, with SOA.
pub(crate) const FULL_ATOMIC: Capabilities = Capabilities {
    types: ALL_TYPES,
    soa: ALL_SOA_FIELDS,
    application: Application::Atomic,
};
