//! A secret value (TSIG secret, API key, password) whose `Debug` and `Display`
//! print `***`, so it cannot reach a log line or error message by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (signing, an API header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `text` with every non-empty secret of `secrets` replaced by `***`: for
/// messages that quote a server's answer, which may echo what it was sent.
pub fn redact<'a>(mut text: String, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    for secret in secrets {
        if !secret.0.is_empty() {
            text = text.replace(&secret.0, "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_every_secret_and_ignores_empty_ones() {
        let secrets = [Secret::new("hunter2"), Secret::new(""), Secret::new("k3y")];
        assert_eq!(
            redact("pw hunter2, key k3y, hunter2 again".into(), &secrets),
            "pw ***, key ***, *** again"
        );
        assert_eq!(redact("nothing".into(), &secrets), "nothing");
    }
}
