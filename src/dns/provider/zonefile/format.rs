//! Records in master-file presentation format (RFC 1035 §5.1) with absolute
//! names, so an appended line means the same whatever `$ORIGIN` is in force.

use crate::dns::presentation::to_presentation;
use crate::dns::record::Record;

/// One line (without the newline): `www.example.com. 300 IN A 192.0.2.1`.
pub fn zone_line(record: &Record) -> String {
    format!(
        "{} {} IN {} {}",
        record.name.to_fqdn(),
        record.ttl,
        record.record_type(),
        to_presentation(&record.data)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::{Name, RData};

    #[test]
    fn lines_use_absolute_names() {
        let record = Record::new(
            Name::parse("a.b.example.com").unwrap(),
            300,
            RData::Mx {
                preference: 10,
                exchange: Name::parse("mail.example.com").unwrap(),
            },
        );
        assert_eq!(
            zone_line(&record),
            "a.b.example.com. 300 IN MX 10 mail.example.com."
        );
    }
}
