//! The mail policy keys of a `[domain:NAME]` section that are not records of
//! their own: MTA-STS (RFC 8461: `mtasts`, `mtasts.maxage`, `mtasts.mx`,
//! `mtastsfile`) and the account binding of `caa = auto` (RFC 8657:
//! `caa.accounturi`). `tlsrpt` is a record key (`records`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ini::{ConfigError, Span, Value};

/// The keys read here.
pub(crate) const KEYS: &[&str] = &[
    "mtasts",
    "mtasts.maxage",
    "mtasts.mx",
    "mtastsfile",
    "caa.accounturi",
];

/// RFC 8461 §3.2: `max_age` is at most 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u32 = 31_557_600;
/// One week, as RFC 8461's examples and most operators use.
pub const DEFAULT_MAX_AGE: u32 = 604_800;

/// The policy mode (RFC 8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
        }
    }
}

/// `mtasts = ...` and its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaSts {
    /// `None` for `mtasts = none` (or empty): the TXT record and the policy
    /// file are removed.
    pub mode: Option<Mode>,
    pub max_age: u32,
    /// `mtasts.mx`: the policy's MX patterns; `None` for the domain's MX hosts.
    pub mx: Option<Vec<String>>,
    /// `mtastsfile`: where the policy is written (a web root's
    /// `.well-known/mta-sts.txt`).
    pub file: Option<PathBuf>,
    pub span: Span,
}

/// Reads the MTA-STS keys of a domain section; `None` when `mtasts` is not set.
pub(crate) fn mtasts(
    name: &str,
    entries: &BTreeMap<String, Value>,
    errors: &mut Vec<ConfigError>,
) -> Option<MtaSts> {
    let Some(value) = entries.get("mtasts") else {
        for key in ["mtasts.maxage", "mtasts.mx", "mtastsfile"] {
            if let Some(v) = entries.get(key).filter(|v| !v.from_default) {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("[domain:{name}] {key} is set but mtasts is not (mtasts = enforce, testing or none)"),
                ));
            }
        }
        return None;
    };
    let mode = match value.text.trim().to_ascii_lowercase().as_str() {
        "" | "none" => None,
        "enforce" => Some(Mode::Enforce),
        "testing" => Some(Mode::Testing),
        other => {
            errors.push(ConfigError::new(
                &value.span,
                format!(
                    "[domain:{name}] mtasts \"{other}\" is not a mode: enforce, testing or none"
                ),
            ));
            return None;
        }
    };
    let max_age = match entries.get("mtasts.maxage") {
        None => DEFAULT_MAX_AGE,
        Some(v) => match v.text.trim().parse::<u32>() {
            Ok(secs) if secs <= MAX_AGE_LIMIT => secs,
            _ => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!(
                        "[domain:{name}] mtasts.maxage \"{}\" is not a number of seconds from 0 to {MAX_AGE_LIMIT} (RFC 8461 §3.2)",
                        v.text.trim()
                    ),
                ));
                return None;
            }
        },
    };
    let mx = match entries.get("mtasts.mx") {
        None => None,
        Some(v) => {
            let patterns: Vec<String> = v
                .text
                .split([',', '\n'])
                .map(|p| p.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect();
            if let Some(bad) = patterns.iter().find(|p| !valid_pattern(p)) {
                errors.push(ConfigError::new(
                    &v.span,
                    format!(
                        "[domain:{name}] mtasts.mx \"{bad}\" is not an MX pattern (a host name, or *. and a name: RFC 8461 §3.2)"
                    ),
                ));
                return None;
            }
            if patterns.is_empty() {
                None
            } else {
                Some(patterns)
            }
        }
    };
    let file = match entries.get("mtastsfile") {
        Some(v) if !v.text.trim().is_empty() => {
            let path = PathBuf::from(v.text.trim());
            if !path.is_absolute() {
                errors.push(ConfigError::new(
                    &v.span,
                    format!(
                        "[domain:{name}] mtastsfile \"{}\" is not an absolute path",
                        v.text.trim()
                    ),
                ));
                return None;
            }
            Some(path)
        }
        _ => None,
    };
    if mode.is_some() && file.is_none() {
        errors.push(ConfigError::new(
            &value.span,
            format!(
                "[domain:{name}] mtasts = {} needs mtastsfile (where the web server for mta-sts.{name} serves /.well-known/mta-sts.txt)",
                value.text.trim()
            ),
        ));
        return None;
    }
    Some(MtaSts {
        mode,
        max_age,
        mx,
        file,
        span: value.span.clone(),
    })
}

/// `caa.accounturi = yes|no` (default no).
pub(crate) fn caa_accounturi(
    name: &str,
    entries: &BTreeMap<String, Value>,
    errors: &mut Vec<ConfigError>,
) -> bool {
    let Some(value) = entries.get("caa.accounturi") else {
        return false;
    };
    match value.text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => true,
        "" | "no" | "false" | "off" | "0" => false,
        other => {
            errors.push(ConfigError::new(
                &value.span,
                format!("[domain:{name}] caa.accounturi \"{other}\" is neither yes nor no"),
            ));
            false
        }
    }
}

/// An MX pattern of RFC 8461 §3.2: a host name, or `*.` and a host name.
fn valid_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                (
                    k.to_string(),
                    Value {
                        text: v.to_string(),
                        span: Span {
                            source: Arc::from("t.conf"),
                            line: i + 1,
                        },
                        from_default: false,
                    },
                )
            })
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<MtaSts>, Vec<String>> {
        let mut errors = Vec::new();
        let parsed = mtasts("x.example", &entries(pairs), &mut errors);
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn modes_and_defaults() {
        let p = parse(&[("mtasts", "Enforce"), ("mtastsfile", "/srv/p.txt")])
            .unwrap()
            .unwrap();
        assert_eq!(p.mode, Some(Mode::Enforce));
        assert_eq!(p.max_age, DEFAULT_MAX_AGE);
        assert_eq!(p.mx, None);
        let p = parse(&[
            ("mtasts", "testing"),
            ("mtasts.maxage", "31557600"),
            ("mtasts.mx", "mx1.example.com, *.mail.example.com."),
            ("mtastsfile", "/srv/p.txt"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.mode, Some(Mode::Testing));
        assert_eq!(p.max_age, MAX_AGE_LIMIT);
        assert_eq!(
            p.mx,
            Some(vec!["mx1.example.com".into(), "*.mail.example.com".into()])
        );
        // none needs no file: it only removes.
        assert_eq!(parse(&[("mtasts", "none")]).unwrap().unwrap().mode, None);
        assert_eq!(parse(&[]).unwrap(), None);
    }

    #[test]
    fn bad_input_names_the_line() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("mtasts", "strict"), ("mtastsfile", "/p")],
                "t.conf:1: [domain:x.example] mtasts \"strict\" is not a mode",
            ),
            (
                &[
                    ("mtasts", "enforce"),
                    ("mtasts.maxage", "31557601"),
                    ("mtastsfile", "/p"),
                ],
                "t.conf:2: [domain:x.example] mtasts.maxage \"31557601\"",
            ),
            (
                &[
                    ("mtasts", "enforce"),
                    ("mtasts.maxage", "-1"),
                    ("mtastsfile", "/p"),
                ],
                "t.conf:2:",
            ),
            (
                &[("mtasts", "enforce")],
                "t.conf:1: [domain:x.example] mtasts = enforce needs mtastsfile",
            ),
            (
                &[("mtasts", "enforce"), ("mtastsfile", "rel/p.txt")],
                "t.conf:2: [domain:x.example] mtastsfile \"rel/p.txt\" is not an absolute path",
            ),
            (
                &[
                    ("mtasts", "enforce"),
                    ("mtasts.mx", "mx_1.example"),
                    ("mtastsfile", "/p"),
                ],
                "t.conf:2: [domain:x.example] mtasts.mx \"mx_1.example\"",
            ),
            (
                &[
                    ("mtasts", "enforce"),
                    ("mtasts.mx", "a.*.example"),
                    ("mtastsfile", "/p"),
                ],
                "t.conf:2:",
            ),
            (
                &[("mtastsfile", "/p")],
                "t.conf:1: [domain:x.example] mtastsfile is set but mtasts is not",
            ),
        ];
        for (pairs, expected) in cases {
            let errors = parse(pairs).unwrap_err();
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{pairs:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn accounturi_is_yes_or_no() {
        let mut errors = Vec::new();
        assert!(caa_accounturi(
            "x",
            &entries(&[("caa.accounturi", "yes")]),
            &mut errors
        ));
        assert!(!caa_accounturi(
            "x",
            &entries(&[("caa.accounturi", "no")]),
            &mut errors
        ));
        assert!(!caa_accounturi("x", &entries(&[]), &mut errors));
        assert!(errors.is_empty());
        caa_accounturi("x", &entries(&[("caa.accounturi", "maybe")]), &mut errors);
        assert_eq!(errors.len(), 1);
    }
}
