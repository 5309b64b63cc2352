//! The vocabulary every module section shares: a section with its effective
//! keys, and the value kinds several modules read. A leaf below `model` and
//! the module parsers, so that neither depends on the other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::ini::{ConfigError, Span, Value};

/// A module section with its effective keys (own keys over the module default).
#[derive(Clone, Debug)]
pub struct ModuleSection {
    pub module: String,
    pub name: String,
    pub span: Option<Span>,
    pub entries: BTreeMap<String, Value>,
}

impl ModuleSection {
    /// Where the section's header stands, for errors about the whole section
    /// (`<config>:0` for a section that has none).
    pub fn header_span(&self) -> Span {
        self.span.clone().unwrap_or_else(|| Span {
            source: Arc::from("<config>"),
            line: 0,
        })
    }
}

/// A key holding a whole number of seconds (`propagationtimeout`): `None`
/// when it is not set; an error at its line when it is not a number.
pub fn seconds_key(
    key: &str,
    value: Option<&Value>,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let value = value?;
    match value.text.trim().parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => {
            errors.push(ConfigError::new(
                &value.span,
                format!(
                    "{key} \"{}\" is not a number of seconds (e.g. {key} = 600)",
                    value.text.trim()
                ),
            ));
            None
        }
    }
}
