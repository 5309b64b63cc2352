//! Change sets applied request by request, for providers without transactions
//! (INWX record by record, the `dns-update` crate and PowerDNS's fallback RRset
//! by RRset). Adds go first, then deletes. A refused change does not stop the
//! others of the zone, except the deletes of an RRset whose add was refused:
//! those are held back, so a name keeps its old records until the new ones are
//! in. A failure that would repeat for every request (the API unreachable)
//! stops the rest. [`Steps`] keeps that account and makes the outcome.

use std::collections::BTreeSet;

use crate::dns::error::ProviderError;
pub(crate) use crate::dns::error::Refusal;
use crate::dns::record::{Name, Record, RecordType};

/// `verb` and the records of one RRset, for a [`Refusal`].
pub(crate) fn change_text(verb: &str, records: &[&Record]) -> String {
    let Some(first) = records.first() else {
        return verb.to_string();
    };
    let mut text = format!("{verb} {first}");
    for record in &records[1..] {
        text.push_str(&format!(", {}", record.data));
    }
    text
}

/// The account of a change set applied request by request.
pub(crate) struct Steps {
    server: String,
    zone: Name,
    applied: usize,
    refused: Vec<Refusal>,
    /// RRsets with a refused add; their deletes are held back.
    blocked: BTreeSet<(Name, RecordType)>,
}

impl Steps {
    pub(crate) fn new(server: String, zone: &Name) -> Self {
        Steps {
            server,
            zone: zone.clone(),
            applied: 0,
            refused: Vec::new(),
            blocked: BTreeSet::new(),
        }
    }

    /// One request went through.
    pub(crate) fn applied(&mut self) {
        self.applied += 1;
    }

    /// The adds `records` (of one RRset) were refused with `answer`; the
    /// deletes of their RRset will be held back.
    pub(crate) fn refused_add(&mut self, records: &[&Record], answer: String) {
        if let Some(first) = records.first() {
            self.blocked
                .insert((first.name.clone(), first.record_type()));
        }
        self.refused(change_text("add", records), answer);
    }

    /// A change was refused with `answer`.
    pub(crate) fn refused(&mut self, change: String, answer: String) {
        self.refused.push(Refusal { change, answer });
    }

    /// True when the deletes `records` (of one RRset) must not be sent because
    /// an add to their RRset was refused; they are then listed as not sent.
    pub(crate) fn hold_back(&mut self, records: &[&Record]) -> bool {
        let Some(first) = records.first() else {
            return false;
        };
        if !self
            .blocked
            .contains(&(first.name.clone(), first.record_type()))
        {
            return false;
        }
        self.refused(
            change_text("delete", records),
            "not sent: the add to its RRset was refused, so the old record stays".into(),
        );
        true
    }

    /// The outcome when `error` stopped the rest: the error itself when no
    /// request had gone through or been refused yet (nothing changed), else
    /// [`ProviderError::Partial`] ending with it.
    pub(crate) fn stop(mut self, error: ProviderError) -> ProviderError {
        if self.applied == 0 && self.refused.is_empty() {
            return error;
        }
        self.refused.push(Refusal {
            change: "the changes not sent yet".into(),
            answer: error.to_string(),
        });
        self.partial()
    }

    /// The outcome when every change was tried.
    ///
    /// # Errors
    /// [`ProviderError::Partial`] when a change was refused.
    pub(crate) fn finish(self) -> Result<(), ProviderError> {
        if self.refused.is_empty() {
            Ok(())
        } else {
            Err(self.partial())
        }
    }

    fn partial(self) -> ProviderError {
        ProviderError::Partial {
            server: self.server,
            zone: self.zone.to_string(),
            applied: self.applied,
            refused: self.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::RData;

    fn a(name: &str, ip: &str) -> Record {
        Record::new(
            Name::parse(name).unwrap(),
            300,
            RData::A(ip.parse().unwrap()),
        )
    }

    #[test]
    fn a_refused_add_holds_back_the_deletes_of_its_rrset_only() {
        let zone = Name::parse("example.com").unwrap();
        let mut steps = Steps::new("test".into(), &zone);
        let (new, old) = (
            a("www.example.com", "192.0.2.9"),
            a("www.example.com", "192.0.2.1"),
        );
        let other = a("mail.example.com", "192.0.2.2");
        steps.refused_add(&[&new], "no".into());
        steps.applied();
        assert!(steps.hold_back(&[&old]));
        assert!(!steps.hold_back(&[&other]));
        let Err(ProviderError::Partial {
            applied, refused, ..
        }) = steps.finish()
        else {
            panic!("not partial")
        };
        assert_eq!(applied, 1);
        assert_eq!(refused.len(), 2);
        assert_eq!(refused[0].change, "add www.example.com 300 A 192.0.2.9");
        assert!(
            refused[1]
                .change
                .starts_with("delete www.example.com 300 A 192.0.2.1")
        );
    }

    #[test]
    fn a_stop_before_any_change_is_the_error_itself() {
        let zone = Name::parse("example.com").unwrap();
        let error = || ProviderError::Api {
            provider: "test".into(),
            message: "down".into(),
        };
        let steps = Steps::new("test".into(), &zone);
        assert!(matches!(steps.stop(error()), ProviderError::Api { .. }));
        let mut steps = Steps::new("test".into(), &zone);
        steps.applied();
        let ProviderError::Partial { refused, .. } = steps.stop(error()) else {
            panic!("not partial")
        };
        assert!(refused[0].answer.contains("down"));
        assert!(Steps::new("t".into(), &zone).finish().is_ok());
    }
}
