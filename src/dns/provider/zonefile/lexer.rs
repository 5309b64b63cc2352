//! Splits an RFC 1035 master file (§5.1) into entries: one directive or
//! resource record each, possibly spanning lines inside parentheses. Every entry
//! keeps the byte range of the whole lines it occupies and every token its own
//! byte range, so the editor can remove an entry or change one field and leave
//! all other bytes of the file as they were.

use std::ops::Range;

use crate::dns::presentation::unescape_one;

/// One word of an entry: a bare word (escapes kept as written) or the inside
/// of a quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub text: String,
    pub quoted: bool,
    /// Bytes of the token in the file (quotes included).
    pub span: Range<usize>,
}

/// One logical entry of the file.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The 1-based line the entry starts on.
    pub line: usize,
    /// Whole lines: from the start of the first line to after the newline of
    /// the last one.
    pub span: Range<usize>,
    /// False when the entry's first line starts with a blank, so the owner is
    /// the previous entry's (RFC 1035 §5.1).
    pub owner_given: bool,
    pub tokens: Vec<Token>,
}

/// A syntax error at a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl SyntaxError {
    pub(super) fn new(line: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            line,
            message: message.into(),
        }
    }
}

/// The entries of `text`. Blank and comment-only lines belong to no entry.
///
/// # Errors
/// An unbalanced parenthesis or an unterminated quoted string, with its line.
pub(super) fn entries(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    // The entry being read: its first line, start offset, owner flag, tokens.
    let mut current: Option<(usize, usize, bool, Vec<Token>)> = None;
    let mut depth = 0usize;
    let mut open_line = 0;
    let mut line_start = 0;
    while pos < bytes.len() {
        let c = bytes[pos];
        match c {
            b'\n' => {
                pos += 1;
                line += 1;
                line_start = pos;
                if depth == 0
                    && let Some((first, start, owner_given, tokens)) = current.take()
                {
                    out.push(Entry {
                        line: first,
                        span: start..pos,
                        owner_given,
                        tokens,
                    });
                }
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                pos += 1;
                continue;
            }
            b';' => {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            _ => {}
        }
        let entry =
            current.get_or_insert_with(|| (line, line_start, pos == line_start, Vec::new()));
        match c {
            b'(' => {
                if depth == 0 {
                    open_line = line;
                }
                depth += 1;
                pos += 1;
            }
            b')' => {
                if depth == 0 {
                    return Err(SyntaxError::new(line, "')' without '('"));
                }
                depth -= 1;
                pos += 1;
            }
            b'"' => {
                let start = pos;
                pos += 1;
                let content_start = pos;
                loop {
                    match bytes.get(pos) {
                        None | Some(b'\n') => {
                            return Err(SyntaxError::new(line, "unterminated quoted string"));
                        }
                        Some(b'\\') => pos += 2,
                        Some(b'"') => break,
                        Some(_) => pos += 1,
                    }
                }
                entry.3.push(Token {
                    text: text[content_start..pos].to_string(),
                    quoted: true,
                    span: start..pos + 1,
                });
                pos += 1;
            }
            _ => {
                let start = pos;
                while pos < bytes.len() {
                    match bytes[pos] {
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                        b'\\' if bytes.get(pos + 1).is_some_and(|&b| b != b'\n') => pos += 2,
                        _ => pos += 1,
                    }
                }
                entry.3.push(Token {
                    text: text[start..pos].to_string(),
                    quoted: false,
                    span: start..pos,
                });
            }
        }
    }
    if depth > 0 {
        return Err(SyntaxError::new(open_line, "'(' is never closed"));
    }
    if let Some((first, start, owner_given, tokens)) = current {
        out.push(Entry {
            line: first,
            span: start..bytes.len(),
            owner_given,
            tokens,
        });
    }
    Ok(out)
}

/// The bytes of a quoted string or bare word with RFC 1035 escapes resolved
/// (`\DDD` is a decimal byte, `\X` is X).
///
/// # Errors
/// A `\DDD` above 255.
pub(super) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match unescape_one(&bytes[i + 1..]) {
            Some(Ok((byte, used))) => {
                out.push(byte);
                i += 1 + used;
            }
            Some(Err(value)) => return Err(format!("\\{value} is not a byte")),
            // A backslash at the very end stands for itself.
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(entry: &Entry) -> Vec<&str> {
        entry.tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn entries_span_whole_lines_and_skip_comments() {
        let text = "; header\n$ORIGIN example.com.\n\nwww  IN A 192.0.2.1 ; web\n\tIN AAAA ::1\n";
        let entries = entries(text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(words(&entries[0]), ["$ORIGIN", "example.com."]);
        assert_eq!(entries[1].line, 4);
        assert_eq!(
            &text[entries[1].span.clone()],
            "www  IN A 192.0.2.1 ; web\n"
        );
        assert!(entries[1].owner_given);
        assert!(!entries[2].owner_given);
        assert_eq!(words(&entries[2]), ["IN", "AAAA", "::1"]);
    }

    #[test]
    fn parentheses_join_lines() {
        let text =
            "@ IN SOA ns1 host (\n  2024010100 ; serial\n  3600 600 86400 300 )\nwww A 1.2.3.4";
        let entries = entries(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(words(&entries[0]).len(), 10);
        let serial = &entries[0].tokens[5];
        assert_eq!(&text[serial.span.clone()], "2024010100");
        assert_eq!(entries[1].line, 4);
        assert_eq!(entries[1].span.end, text.len());
    }

    #[test]
    fn quoted_strings_keep_semicolons_and_escapes() {
        let text = "txt TXT \"a;b \\\"c\\\"\" \"(d)\"\n";
        let entries = entries(text).unwrap();
        let t = &entries[0].tokens;
        assert_eq!(t[2].text, "a;b \\\"c\\\"");
        assert!(t[2].quoted);
        assert_eq!(t[3].text, "(d)");
        assert_eq!(unescape(&t[2].text).unwrap(), b"a;b \"c\"");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            entries("a A 1.2.3.4\nb TXT \"open\n").unwrap_err(),
            SyntaxError::new(2, "unterminated quoted string")
        );
        assert_eq!(entries("a A 1.2.3.4\n\nb SOA ( 1 2\n").unwrap_err().line, 3);
        assert_eq!(entries("a A 1.2.3.4 )\n").unwrap_err().line, 1);
    }

    #[test]
    fn unescape_decimal_and_plain() {
        assert_eq!(unescape("a\\032b\\\\c\\.").unwrap(), b"a b\\c.");
        assert!(unescape("\\300").is_err());
    }
}
