//! Property tests for every parser of external input: the INI reader and the
//! configuration model, the record language, names and server addresses, DNS
//! wire messages, PEM chains, and the ACME shim's header and text handling.
//! Each must return an error, never panic, whatever it is given. These run in
//! `scripts/test.sh`; raise `PROPTEST_CASES` for longer runs.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::time::{Duration, SystemTime};

use cryptdomainmgr::acme::error::sanitize;
use cryptdomainmgr::acme::http::parse_retry_after;
use cryptdomainmgr::config::ini::{self, Source};
use cryptdomainmgr::config::model;
use cryptdomainmgr::config::records::parse_rule;
use cryptdomainmgr::dns::parse_server;
use cryptdomainmgr::dns::record::Name;
use cryptdomainmgr::dns::wire::from_wire_all;
use cryptdomainmgr::material::cert::{parse_chain, pem_chain_to_der};
use proptest::prelude::*;

/// Lines that look like configuration: sections, keys of every module with
/// every operator, continuations, comments, interpolation.
fn config_line() -> impl Strategy<Value = String> {
    let section = "(domain|cert|dkim|dhparam|service|cdm|DEFAULT|[a-z:.]{0,12})";
    let key = "(ip4|ip6|mx|srv|caa|tlsa|dkim|spf|dmarc|adsp|acme|soa|cert|handler|server|ttl|statedir|keysize|[a-z]{1,10})";
    let op = "(=|[+]=|-=|:|)";
    prop_oneof![
        (section, "[a-z0-9.:-]{0,20}").prop_map(|(s, n)| {
            if n.is_empty() {
                format!("[{s}]")
            } else {
                format!("[{s}:{n}]")
            }
        }),
        (key, "(\\.[a-z0-9*_-]{0,6}){0,4}", op, "[ -~]{0,40}")
            .prop_map(|(k, dots, op, v)| format!("{k}{dots} {op} {v}")),
        "[ \t]+[ -~]{0,30}",
        "[#;][ -~]{0,20}",
        "[ -~]{0,30}%\\([a-z]{0,5}\\)s?[ -~]{0,5}",
    ]
}

/// 512 cases per property in the test suite; `PROPTEST_CASES=200000` for a
/// long run (SECURITY.md).
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 512;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ini_reader_and_model_never_panic(lines in prop::collection::vec(config_line(), 0..30)) {
        let text = lines.join("\n");
        if let Ok(ini) = ini::read(&[Source { name: "fuzz.conf".into(), text }]) {
            let _ = model::build(&ini);
        }
    }

    #[test]
    fn ini_reader_never_panics_on_any_text(text in "\\PC{0,300}") {
        let _ = ini::read(&[Source { name: "fuzz.conf".into(), text }]);
    }

    #[test]
    fn config_errors_name_the_file_and_a_line(lines in prop::collection::vec(config_line(), 1..20)) {
        let text = lines.join("\n");
        let line_count = text.lines().count().max(1);
        let errors = match ini::read(&[Source { name: "fuzz.conf".into(), text }]) {
            Err(errors) => errors,
            Ok(ini) => match model::build(&ini) {
                Err(errors) => errors,
                Ok(_) => Vec::new(),
            },
        };
        for error in errors {
            let shown = error.to_string();
            prop_assert!(shown.starts_with("fuzz.conf:"), "{shown}");
            let line: usize = shown["fuzz.conf:".len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            prop_assert!((1..=line_count).contains(&line), "{shown} (file has {line_count} lines)");
        }
    }

    #[test]
    fn record_language_never_panics(
        key in "(ip4|ip6|mx|srv|caa|tlsa|dkim|spf|dmarc|adsp|acme|soa|cert)([.][a-z0-9*_-]{0,8}){0,6}",
        value in "[ -~]{0,80}",
    ) {
        let _ = parse_rule(&key, &value);
    }

    #[test]
    fn names_and_servers_never_panic(text in "\\PC{0,300}") {
        let _ = Name::parse(&text);
        let _ = parse_server(&text);
    }

    #[test]
    fn dns_wire_messages_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(message) = hickory_proto::op::Message::from_vec(&bytes) {
            let _ = from_wire_all(&message.answers);
            let _ = from_wire_all(&message.additionals);
            let _ = from_wire_all(&message.authorities);
        }
    }

    #[test]
    fn pem_chains_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..400),
        framing in any::<bool>(),
    ) {
        use base64::Engine;
        let text = if framing {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(&body)
            )
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        let _ = pem_chain_to_der(&text);
        let _ = parse_chain(&text);
    }

    #[test]
    fn retry_after_never_panics_and_never_goes_back(value in "\\PC{0,60}", secs in any::<u64>()) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = parse_retry_after(&value, now);
        if let Some(at) = parse_retry_after(&secs.to_string(), now) {
            prop_assert!(at >= now);
        }
    }

    #[test]
    fn server_text_is_made_safe_for_a_log_line(text in "\\PC{0,800}|[\\x00-\\x1f\\x7f-\\u{9f}a-z]{0,800}") {
        let shown = sanitize(&text);
        prop_assert!(!shown.chars().any(char::is_control));
        prop_assert!(shown.chars().count() <= 501);
    }
}
