//! `[dhparam]` and `[dhparam:NAME]` sections (docs/configuration.md): how DH parameters are
//! made and where rollover puts them.

use std::path::PathBuf;

use super::ini::{ConfigError, Span};
use super::section::ModuleSection;
use crate::material::dhparam::{FFDHE_SIZES, MAX_BITS, MIN_BITS};

/// The keys of `[dhparam]` sections.
pub(crate) const KEYS: &[&str] = &["handler", "keysize", "filename", "rotatedays"];

pub(crate) const DEFAULT_KEYSIZE: usize = 2048;
pub(crate) const DEFAULT_FILENAME: &str = "/etc/myssl/dh2048.pem";
/// How old generated parameters get before `--auto` makes new ones.
pub(crate) const DEFAULT_ROTATE_DAYS: u32 = 90;

/// How the parameters are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhHandler {
    /// `openssl`: a fresh safe prime in every prepare (generated natively).
    Generate,
    /// `ffdhe`: the RFC 7919 group of the size.
    Ffdhe,
}

impl DhHandler {
    pub fn name(self) -> &'static str {
        match self {
            DhHandler::Generate => "openssl",
            DhHandler::Ffdhe => "ffdhe",
        }
    }
}

/// One set of DH parameters to keep.
#[derive(Clone, Debug)]
pub struct DhParamSection {
    pub name: String,
    pub span: Option<Span>,
    pub handler: DhHandler,
    pub bits: usize,
    /// Where rollover puts the PEM file.
    pub filename: PathBuf,
    /// `--auto` makes new generated parameters when the current ones are this
    /// many days old (explicit `--prepare` makes new ones every cycle).
    pub rotate_days: u32,
}

/// Builds the `[dhparam:NAME]` sections.
pub(super) fn build_dhparams(
    sections: &[ModuleSection],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Vec<DhParamSection> {
    let mut built: Vec<DhParamSection> = Vec::new();
    for section in sections.iter().filter(|s| s.module == "dhparam") {
        let Some(dh) = build_one(section, errors, warnings) else {
            continue;
        };
        if let Some(other) = built.iter().find(|o| o.filename == dh.filename) {
            let span = section
                .entries
                .get("filename")
                .map(|v| v.span.clone())
                .unwrap_or_else(|| section.header_span());
            errors.push(ConfigError::new(
                &span,
                format!(
                    "[dhparam:{}] has the same filename {} as [dhparam:{}]",
                    dh.name,
                    dh.filename.display(),
                    other.name
                ),
            ));
            continue;
        }
        built.push(dh);
    }
    built
}

fn build_one(
    section: &ModuleSection,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<DhParamSection> {
    let entries = &section.entries;
    let before = errors.len();
    let handler = match entries.get("handler") {
        None => DhHandler::Generate,
        Some(value) => {
            // The original's handler names could carry a "/variant" suffix.
            let text = value.text.trim().to_ascii_lowercase();
            match text.split('/').next().unwrap_or_default() {
                "" | "openssl" => DhHandler::Generate,
                "ffdhe" => DhHandler::Ffdhe,
                other => {
                    errors.push(ConfigError::new(
                        &value.span,
                        format!("unknown dhparam handler \"{other}\" (use openssl or ffdhe)"),
                    ));
                    DhHandler::Generate
                }
            }
        }
    };
    let bits = match entries.get("keysize") {
        None => DEFAULT_KEYSIZE,
        Some(value) => match value.text.trim().parse::<usize>() {
            Ok(bits) => {
                let ok = match handler {
                    DhHandler::Generate => (MIN_BITS..=MAX_BITS).contains(&bits),
                    DhHandler::Ffdhe => FFDHE_SIZES.contains(&bits),
                };
                if !ok {
                    let allowed = match handler {
                        DhHandler::Generate => format!("{MIN_BITS} to {MAX_BITS}"),
                        DhHandler::Ffdhe => "2048, 3072, 4096, 6144 or 8192".into(),
                    };
                    errors.push(ConfigError::new(
                        &value.span,
                        format!(
                            "keysize {bits} is not possible for handler {} ({allowed})",
                            handler.name()
                        ),
                    ));
                } else if bits < 2048 {
                    warnings.push(ConfigError::new(
                        &value.span,
                        format!(
                            "[dhparam:{}] keysize {bits} is weak; use 2048 or more outside tests",
                            section.name
                        ),
                    ));
                }
                bits
            }
            Err(_) => {
                errors.push(ConfigError::new(
                    &value.span,
                    format!("keysize \"{}\" is not a number of bits", value.text),
                ));
                DEFAULT_KEYSIZE
            }
        },
    };
    let filename = match entries.get("filename") {
        None => PathBuf::from(DEFAULT_FILENAME),
        Some(value) if value.text.trim().is_empty() => {
            errors.push(ConfigError::new(&value.span, "filename is empty"));
            PathBuf::new()
        }
        Some(value) => PathBuf::from(value.text.trim()),
    };
    let rotate_days = match entries.get("rotatedays") {
        None => DEFAULT_ROTATE_DAYS,
        Some(value) => match value.text.trim().parse::<u32>() {
            Ok(days) if days > 0 => days,
            _ => {
                errors.push(ConfigError::new(
                    &value.span,
                    format!(
                        "rotatedays \"{}\" is not a number of days above 0",
                        value.text
                    ),
                ));
                DEFAULT_ROTATE_DAYS
            }
        },
    };
    if errors.len() > before {
        return None;
    }
    Some(DhParamSection {
        name: section.name.clone(),
        span: section.span.clone(),
        handler,
        bits,
        filename,
        rotate_days,
    })
}

/// The sections as interpreted, for `--check`.
pub(crate) fn render(dhparams: &[DhParamSection]) -> String {
    let mut out = String::new();
    for dh in dhparams {
        out.push_str(&format!(
            "\n[dhparam:{}]\nhandler = {}\nkeysize = {}\nfilename = {}\nrotatedays = {}\n",
            dh.name,
            dh.handler.name(),
            dh.bits,
            dh.filename.display(),
            dh.rotate_days
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Config, build_text};

    fn config(text: &str) -> Result<Config, Vec<String>> {
        build_text("d.conf", text)
    }

    #[test]
    fn defaults_and_inheritance() {
        let c = config(
            "[dhparam]\nkeysize = 3072\n[dhparam:a]\n[dhparam:b]\nhandler = ffdhe\nfilename = /x/ff.pem\n",
        )
        .unwrap();
        let a = &c.dhparams[0];
        assert_eq!(
            (a.name.as_str(), a.handler, a.bits),
            ("a", DhHandler::Generate, 3072)
        );
        assert_eq!(a.filename, PathBuf::from(DEFAULT_FILENAME));
        let b = &c.dhparams[1];
        assert_eq!((b.handler, b.bits), (DhHandler::Ffdhe, 3072));
        assert_eq!(b.filename, PathBuf::from("/x/ff.pem"));
        // The original's "openssl/..." spelling, and a weak size warns.
        let c = config("[dhparam:a]\nhandler = openssl/dhparam\nkeysize = 1024\n").unwrap();
        assert_eq!(c.dhparams[0].handler, DhHandler::Generate);
        assert!(c.warnings[0].to_string().starts_with("d.conf:3: "));
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, at, what) in [
            (
                "[dhparam:a]\nhandler = gnutls\n",
                "d.conf:2:",
                "unknown dhparam handler",
            ),
            ("[dhparam:a]\nkeysize = big\n", "d.conf:2:", "not a number"),
            ("[dhparam:a]\nkeysize = 256\n", "d.conf:2:", "512 to 8192"),
            (
                "[dhparam:a]\nhandler = ffdhe\nkeysize = 2049\n",
                "d.conf:3:",
                "2048, 3072",
            ),
            (
                "[dhparam:a]\nfilename =\n",
                "d.conf:2:",
                "filename is empty",
            ),
            (
                "[dhparam:a]\n[dhparam:b]\nfilename = /etc/myssl/dh2048.pem\n",
                "d.conf:3:",
                "same filename",
            ),
        ] {
            let errors = config(text)
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert!(
                errors.iter().any(|e| e.starts_with(at) && e.contains(what)),
                "{text}: {errors:?}"
            );
        }
    }
}
