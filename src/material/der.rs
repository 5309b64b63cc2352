//! The few DER elements the program builds and reads itself (PKCS#8 wrappers,
//! an RSA SubjectPublicKeyInfo), and PEM armour. Only definite lengths up to
//! 64 KiB: every structure here is a key of at most 4096 bits.

use base64::Engine;

/// A DER element: tag, definite length, content.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one element with `tag` from the start of `input`: (the whole
/// element, its content, what follows). `None` for another tag, a length
/// form this module does not write, or a truncated element.
pub fn read(tag: u8, input: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, header, rest) = match len0 {
        0..=0x7f => (usize::from(len0), 2, rest),
        0x81 => (usize::from(*rest.first()?), 3, rest.get(1..)?),
        0x82 => (
            usize::from(*rest.first()?) << 8 | usize::from(*rest.get(1)?),
            4,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    let content = rest.get(..len)?;
    Some((input.get(..header + len)?, content, rest.get(len..)?))
}

/// PEM of `der` under `label`: 64 base64 characters a line, LF line ends,
/// as OpenSSL writes it.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The content of the first PEM block of `text` labelled `label`.
pub fn from_pem(text: &str, label: &str) -> Option<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == label)
        .map(|p| p.contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_in_every_length_form() {
        for len in [0, 5, 0x7f, 0x80, 0xff, 0x100, 600] {
            let content = vec![7u8; len];
            let mut bytes = encode(0x04, &content);
            bytes.extend([1, 2]);
            let (whole, read_content, rest) = read(0x04, &bytes).unwrap();
            assert_eq!(read_content, &content[..]);
            assert_eq!(whole.len(), bytes.len() - 2);
            assert_eq!(rest, &[1, 2]);
        }
    }

    #[test]
    fn another_tag_and_truncation_are_refused() {
        let bytes = encode(0x30, &[1, 2, 3]);
        assert!(read(0x02, &bytes).is_none());
        assert!(read(0x30, &bytes[..4]).is_none());
        assert!(read(0x30, &[]).is_none());
        assert!(read(0x30, &[0x30, 0x83, 0, 0, 1, 0]).is_none());
    }

    #[test]
    fn pem_round_trips_with_64_character_lines() {
        let der = vec![0xabu8; 100];
        let text = pem("PRIVATE KEY", &der);
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(text.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(from_pem(&text, "PRIVATE KEY").unwrap(), der);
        assert!(from_pem(&text, "RSA PRIVATE KEY").is_none());
    }
}
