//! A reader for INI files that behaves like Python's `configparser` (the original
//! program read its configuration with it), so existing files keep working:
//! `key = value` or `key: value`, keys case-insensitive, `#`/`;` comment lines,
//! indented continuation lines, `[DEFAULT]`, `%(key)s` interpolation and `%%`.
//! Several sources merge, the last one read wins. Unlike configparser, every
//! value keeps the file and line it came from, so errors can name them, and all
//! errors of all sources are reported at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// Where a value was read: a file (or `--config-content`) and a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub source: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// A configuration problem at a place in a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub span: Span,
    pub message: String,
}

impl ConfigError {
    pub fn new(span: &Span, message: impl Into<String>) -> Self {
        ConfigError {
            span: span.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.span, self.message)
    }
}

/// One text to read: its name for messages (a path or `--config-content`).
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// A value after interpolation, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub span: Span,
    /// True when the value comes from `[DEFAULT]` rather than its own section.
    pub from_default: bool,
}

/// A section after merging all sources: keys (lower-case) to values.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Where the section header first appeared.
    pub span: Option<Span>,
    pub entries: BTreeMap<String, Value>,
}

/// All sections of all sources, merged; `[DEFAULT]` already applied.
#[derive(Clone, Debug, Default)]
pub struct Ini {
    /// Section names in the order they first appeared.
    pub order: Vec<String>,
    pub sections: HashMap<String, Section>,
    /// The names of the sources read, in order (for messages about keys that
    /// none of them holds).
    pub sources: Vec<String>,
}

impl Ini {
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.order
            .iter()
            .filter_map(|name| self.sections.get(name).map(|s| (name.as_str(), s)))
    }
}

const DEFAULT_SECTION: &str = "DEFAULT";
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Reads and merges `sources` in order.
///
/// # Errors
/// Every problem found, each with its file and line.
pub fn read(sources: &[Source]) -> Result<Ini, Vec<ConfigError>> {
    let mut raw = RawIni::default();
    let mut errors = Vec::new();
    for source in sources {
        parse_source(source, &mut raw, &mut errors);
    }
    let mut ini = raw.finish(&mut errors);
    ini.sources = sources.iter().map(|s| s.name.clone()).collect();
    if errors.is_empty() {
        Ok(ini)
    } else {
        Err(errors)
    }
}

/// Sections before interpolation and `[DEFAULT]`.
#[derive(Default)]
struct RawIni {
    order: Vec<String>,
    sections: HashMap<String, Section>,
    defaults: Section,
}

/// A key being read, to which continuation lines are appended.
struct OpenValue {
    section: String,
    key: String,
    indent: usize,
    blank_lines: usize,
}

fn parse_source(source: &Source, raw: &mut RawIni, errors: &mut Vec<ConfigError>) {
    let name: Arc<str> = Arc::from(source.name.as_str());
    let span = |line: usize| Span {
        source: name.clone(),
        line,
    };
    // Within one source a repeated section or key is an error (configparser's strict mode).
    let mut sections_here: HashMap<String, usize> = HashMap::new();
    let mut keys_here: HashMap<(String, String), usize> = HashMap::new();
    let mut section: Option<String> = None;
    let mut open: Option<OpenValue> = None;

    for (index, line) in source.text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            if let Some(open) = open.as_mut() {
                open.blank_lines += 1;
            }
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if let Some(value) = open.as_mut().filter(|o| indent > o.indent) {
            let target = raw.entry_mut(&value.section, &value.key);
            for _ in 0..value.blank_lines {
                target.text.push('\n');
            }
            value.blank_lines = 0;
            target.text.push('\n');
            target.text.push_str(trimmed);
            continue;
        }
        open = None;

        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(header) = header.strip_suffix(']') else {
                errors.push(ConfigError::new(
                    &span(line_no),
                    format!("section header \"{trimmed}\" lacks the closing ']'"),
                ));
                section = None;
                continue;
            };
            let header = header.trim().to_string();
            if header.is_empty() {
                errors.push(ConfigError::new(&span(line_no), "empty section name"));
                section = None;
                continue;
            }
            if let Some(first) = sections_here.insert(header.clone(), line_no) {
                errors.push(ConfigError::new(
                    &span(line_no),
                    format!("section [{header}] already appears in this source at line {first}"),
                ));
            }
            raw.open_section(&header, span(line_no));
            section = Some(header);
            continue;
        }

        let Some(current) = section.clone() else {
            errors.push(ConfigError::new(
                &span(line_no),
                format!("\"{trimmed}\" stands before any [section] header"),
            ));
            continue;
        };
        let Some(at) = trimmed.find(['=', ':']) else {
            errors.push(ConfigError::new(
                &span(line_no),
                format!("\"{trimmed}\" is not of the form key = value"),
            ));
            continue;
        };
        let key = normalize_key(&trimmed[..at]);
        if key.is_empty() {
            errors.push(ConfigError::new(&span(line_no), "a value without a key"));
            continue;
        }
        let value = trimmed[at + 1..].trim().to_string();
        if let Some(first) = keys_here.insert((current.clone(), key.clone()), line_no) {
            errors.push(ConfigError::new(
                &span(line_no),
                format!(
                    "key \"{key}\" is set twice in section [{current}] (first at line {first})"
                ),
            ));
        }
        raw.set(&current, &key, value, span(line_no));
        open = Some(OpenValue {
            section: current,
            key,
            indent,
            blank_lines: 0,
        });
    }
}

/// Lower-cases a key and joins a trailing `+`/`-` operator to it, so `ip4 +=` and
/// `ip4+=` are the same key.
fn normalize_key(text: &str) -> String {
    let key = text.trim().to_lowercase();
    for op in ['+', '-'] {
        if let Some(base) = key.strip_suffix(op) {
            return format!("{}{op}", base.trim_end());
        }
    }
    key
}

impl RawIni {
    fn open_section(&mut self, name: &str, span: Span) {
        if name == DEFAULT_SECTION {
            self.defaults.span.get_or_insert(span);
            return;
        }
        if !self.sections.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.sections
            .entry(name.to_string())
            .or_default()
            .span
            .get_or_insert(span);
    }

    fn section_mut(&mut self, name: &str) -> &mut Section {
        if name == DEFAULT_SECTION {
            &mut self.defaults
        } else {
            self.sections.entry(name.to_string()).or_default()
        }
    }

    fn set(&mut self, section: &str, key: &str, text: String, span: Span) {
        self.section_mut(section).entries.insert(
            key.to_string(),
            Value {
                text,
                span,
                from_default: false,
            },
        );
    }

    fn entry_mut(&mut self, section: &str, key: &str) -> &mut Value {
        self.section_mut(section)
            .entries
            .entry(key.to_string())
            .or_insert_with(|| Value {
                text: String::new(),
                span: Span {
                    source: Arc::from(""),
                    line: 0,
                },
                from_default: false,
            })
    }

    /// Interpolates every value in its own section (with `[DEFAULT]` as fallback)
    /// and copies `[DEFAULT]` keys into sections that lack them.
    fn finish(self, errors: &mut Vec<ConfigError>) -> Ini {
        let mut sections = HashMap::new();
        for (name, section) in &self.sections {
            let mut merged = Section {
                span: section.span.clone(),
                entries: BTreeMap::new(),
            };
            let keys = section.entries.keys().chain(self.defaults.entries.keys());
            for key in keys {
                if merged.entries.contains_key(key) {
                    continue;
                }
                let (value, from_default) = match section.entries.get(key) {
                    Some(v) => (v, false),
                    None => match self.defaults.entries.get(key) {
                        Some(v) => (v, true),
                        None => continue,
                    },
                };
                let lookup = |k: &str| {
                    section
                        .entries
                        .get(k)
                        .or_else(|| self.defaults.entries.get(k))
                        .map(|v| v.text.as_str())
                };
                match interpolate(&value.text, &lookup, 0) {
                    Ok(text) => {
                        merged.entries.insert(
                            key.clone(),
                            Value {
                                text: text.trim_end().to_string(),
                                span: value.span.clone(),
                                from_default,
                            },
                        );
                    }
                    Err(message) => {
                        // A default's error is reported once, not once per section.
                        if !from_default {
                            errors.push(ConfigError::new(&value.span, message));
                        }
                    }
                }
            }
            sections.insert(name.clone(), merged);
        }
        for value in self.defaults.entries.values() {
            let lookup = |k: &str| self.defaults.entries.get(k).map(|v| v.text.as_str());
            if let Err(message) = interpolate(&value.text, &lookup, 0) {
                errors.push(ConfigError::new(&value.span, message));
            }
        }
        Ini {
            order: self.order,
            sections,
            sources: Vec::new(),
        }
    }
}

/// configparser's BasicInterpolation: `%(name)s` is replaced by the value of
/// `name` (itself interpolated), `%%` is a literal `%`.
fn interpolate<'a>(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<&'a str>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err(format!(
            "interpolation nested deeper than {MAX_INTERPOLATION_DEPTH} levels (a reference loop?)"
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('%') {
            out.push('%');
            rest = after;
        } else if let Some(after) = after.strip_prefix('(') {
            let Some(close) = after.find(")s") else {
                return Err(format!(
                    "bad interpolation in \"{text}\": '%(' must be closed by ')s'"
                ));
            };
            let name = after[..close].to_lowercase();
            let Some(value) = lookup(&name) else {
                return Err(format!(
                    "\"%({name})s\" refers to a key that is not set in this section or [DEFAULT]"
                ));
            };
            out.push_str(&interpolate(value, lookup, depth + 1)?);
            rest = &after[close + 2..];
        } else {
            return Err(format!(
                "bad interpolation in \"{text}\": '%' must be followed by '%' or '(' (write %% for a percent sign)"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits `--config-content` like the original: a run of two or more spaces is a
/// line break (so a one-line shell argument can hold a whole file).
pub fn split_inline_content(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut spaces = 0usize;
    for ch in text.chars() {
        if ch == ' ' {
            spaces += 1;
            continue;
        }
        match spaces {
            0 => {}
            1 => out.push(' '),
            _ => out.push('\n'),
        }
        spaces = 0;
        out.push(ch);
    }
    if spaces == 1 {
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    fn value(ini: &Ini, section: &str, key: &str) -> Option<String> {
        ini.sections
            .get(section)?
            .entries
            .get(key)
            .map(|v| v.text.clone())
    }

    #[test]
    fn reads_like_configparser() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("[a]\nKey = v", "a", "key", Some("v")),
            ("[a]\nkey: v", "a", "key", Some("v")),
            ("[a]\nkey=v=w", "a", "key", Some("v=w")),
            ("[a]\nkey = mail:20", "a", "key", Some("mail:20")),
            ("[a]\nkey:x=y", "a", "key", Some("x=y")),
            ("[a]\n# c\n; c\nkey = v", "a", "key", Some("v")),
            (
                "[a]\nkey = v # not a comment",
                "a",
                "key",
                Some("v # not a comment"),
            ),
            ("[a]\nkey = one,\n  two", "a", "key", Some("one,\ntwo")),
            ("[a]\nkey = one\n\n  two", "a", "key", Some("one\n\ntwo")),
            ("[a]\nkey = one\n\nother = 2", "a", "key", Some("one")),
            ("[a]\nkey =", "a", "key", Some("")),
            ("[a]\nip4 += 1.2.3.4", "a", "ip4+", Some("1.2.3.4")),
            ("[a]\nip4+=1.2.3.4", "a", "ip4+", Some("1.2.3.4")),
            ("[a]\nmx.30 -= m", "a", "mx.30-", Some("m")),
            ("[ a ]\nk = v", "a", "k", Some("v")),
            ("[a]\n  k = v\n  j = w", "a", "j", Some("w")),
            ("[DEFAULT]\nttl = 60\n[a]\nk = v", "a", "ttl", Some("60")),
            ("[DEFAULT]\nttl = 60\n[a]\nttl = 5", "a", "ttl", Some("5")),
            ("[a]\nhost = h\nk = %(host)s:1", "a", "k", Some("h:1")),
            ("[DEFAULT]\nd = x\n[a]\nk = %(D)s/y", "a", "k", Some("x/y")),
            ("[a]\nk = 100%%", "a", "k", Some("100%")),
            ("[a]\nk = v\r\n", "a", "k", Some("v")),
        ];
        for (text, section, key, expected) in cases {
            let ini = read(&[src("f", text)]).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!(
                value(&ini, section, key).as_deref(),
                *expected,
                "input {text:?}"
            );
        }
    }

    #[test]
    fn later_sources_win_and_sections_merge() {
        let ini = read(&[
            src("one.conf", "[domain]\nuser = a\nttl = 1\n"),
            src("two.conf", "[domain]\nuser = b\n[cdm]\nstatedir = /x\n"),
        ])
        .unwrap();
        assert_eq!(value(&ini, "domain", "user").as_deref(), Some("b"));
        assert_eq!(value(&ini, "domain", "ttl").as_deref(), Some("1"));
        let span = &ini.sections["domain"].entries["user"].span;
        assert_eq!(span.to_string(), "two.conf:2");
        assert_eq!(ini.order, vec!["domain", "cdm"]);
    }

    #[test]
    fn errors_name_file_and_line_and_all_are_reported() {
        let errors = read(&[src(
            "bad.conf",
            "k = v\n[a]\nno delimiter\n[b\n[a]\nx = 1\nx = 2\ny = %(nope)s\nz = 5%\n",
        )])
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text[0].starts_with("bad.conf:1: "), "{text:?}");
        assert!(text[1].starts_with("bad.conf:3: "), "{text:?}");
        assert!(text[2].starts_with("bad.conf:4: "), "{text:?}");
        assert!(text[3].starts_with("bad.conf:5: ") && text[3].contains("line 2"));
        assert!(text[4].starts_with("bad.conf:7: ") && text[4].contains("line 6"));
        assert!(
            text.iter()
                .any(|t| t.starts_with("bad.conf:8: ") && t.contains("nope"))
        );
        assert!(text.iter().any(|t| t.starts_with("bad.conf:9: ")));
        assert_eq!(errors.len(), 7, "{text:?}");
    }

    #[test]
    fn interpolation_loops_are_errors() {
        let errors = read(&[src("f", "[a]\nx = %(y)s\ny = %(x)s\n")]).unwrap_err();
        assert!(errors[0].message.contains("deeper"));
    }

    #[test]
    fn inline_content_splits_on_double_spaces() {
        assert_eq!(
            split_inline_content("[cdm]  statedir=/tmp/x"),
            "[cdm]\nstatedir=/tmp/x"
        );
        assert_eq!(
            split_inline_content("[domain:a.b]   spf = +mx -all"),
            "[domain:a.b]\nspf = +mx -all"
        );
        assert_eq!(split_inline_content("a\nb"), "a\nb");
    }

    #[test]
    fn the_tutorial_inline_form_reads() {
        // `$'[domain:x] \n handler=dnsuptools/inwx \n ip4=auto'` from the original tutorial.
        let ini = read(&[src(
            "--config-content",
            "[domain:test1234.entroserv.de] \n handler=dnsuptools/inwx \n ip4=auto",
        )])
        .unwrap();
        assert_eq!(
            value(&ini, "domain:test1234.entroserv.de", "ip4").as_deref(),
            Some("auto")
        );
        assert_eq!(
            value(&ini, "domain:test1234.entroserv.de", "handler").as_deref(),
            Some("dnsuptools/inwx")
        );
    }
}
