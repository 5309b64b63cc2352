//! What a wait for new records to be served has seen of each authoritative
//! server, and when it is hopeless: a server that refused every connection or
//! answered none of the questions for [`UNREACHABLE_LIMIT`] will not start
//! serving the records by itself, so waiting the whole `propagationtimeout`
//! for it only hides the problem (usually: the addresses of the zone's NS
//! records cannot be reached from this host). Pure: times come in as
//! durations.

use std::time::Duration;

use crate::dns::observe::Server;
use crate::dns::provider::ProviderError;

/// How long a server may refuse or ignore every question before the wait ends.
pub(crate) const UNREACHABLE_LIMIT: Duration = Duration::from_secs(10);

/// The last thing a server said (or did not say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not asked yet.
    Nothing,
    /// It serves every record.
    Served,
    /// It answered, without the new records (NXDOMAIN or other data).
    OldAnswer,
    /// The TCP connection was refused or could not be made.
    Refused(String),
    /// It did not answer in time.
    NoAnswer(String),
    /// It answered with an error (REFUSED, SERVFAIL, not authoritative, ...).
    Failed(String),
}

impl Seen {
    /// What a question's outcome says.
    pub(crate) fn of(result: &Result<bool, ProviderError>) -> Seen {
        match result {
            Ok(true) => Seen::Served,
            Ok(false) => Seen::OldAnswer,
            Err(ProviderError::Unreachable { reason, .. }) => Seen::Refused(reason.clone()),
            Err(ProviderError::Timeout { seconds, .. }) => {
                Seen::NoAnswer(format!("no answer within {seconds} s"))
            }
            Err(e) => Seen::Failed(e.to_string()),
        }
    }

    /// True when the server could not be talked to at all.
    pub(crate) fn unreachable(&self) -> bool {
        matches!(self, Seen::Refused(_) | Seen::NoAnswer(_))
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Nothing => f.write_str("not asked yet"),
            Seen::Served => f.write_str("serves them"),
            Seen::OldAnswer => f.write_str("an old answer (the new records are not there yet)"),
            Seen::Refused(reason) => write!(f, "connection failed: {reason}"),
            Seen::NoAnswer(reason) => f.write_str(reason),
            Seen::Failed(reason) => write!(f, "an error: {reason}"),
        }
    }
}

/// One server being waited for.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    pub server: Server,
    pub seen: Seen,
    /// When the first of the unbroken run of unreachable tries began (time
    /// since the wait started).
    pub unreachable_since: Option<Duration>,
}

impl Watch {
    pub(crate) fn new(server: Server) -> Self {
        Watch {
            server,
            seen: Seen::Nothing,
            unreachable_since: None,
        }
    }

    /// Records what a try begun at `tried_at` saw; true when that differs
    /// from what the previous try saw (worth a log line).
    pub(crate) fn saw(&mut self, seen: Seen, tried_at: Duration) -> bool {
        if seen.unreachable() {
            self.unreachable_since.get_or_insert(tried_at);
        } else {
            self.unreachable_since = None;
        }
        let changed = std::mem::discriminant(&seen) != std::mem::discriminant(&self.seen);
        self.seen = seen;
        changed
    }

    /// True when the server has been unreachable on every try for
    /// [`UNREACHABLE_LIMIT`] at `now` (time since the wait started).
    pub(crate) fn hopeless(&self, now: Duration) -> bool {
        self.unreachable_since
            .is_some_and(|since| now.saturating_sub(since) >= UNREACHABLE_LIMIT)
    }
}

/// The error that ends a wait because `watch`'s server cannot be reached,
/// with what to change. `configured`: the servers come from `nameservers`.
pub(crate) fn unreachable_advice(zone: &str, watch: &Watch, configured: bool) -> String {
    let what = match &watch.seen {
        Seen::NoAnswer(_) => "answered none of the questions",
        _ => "refused or failed every connection",
    };
    let head = format!(
        "the authoritative server {} of zone {zone} {what} for {} s (last: {}), so it cannot be asked whether it serves the challenge records",
        watch.server,
        UNREACHABLE_LIMIT.as_secs(),
        watch.seen
    );
    if configured {
        format!(
            "{head}. Check the nameservers key in [domain]: it should list servers of the zone that this host can reach (host:port, ...)"
        )
    } else {
        format!(
            "{head}. The zone's NS records lead to addresses this host cannot reach (a firewall, or a name server on another network); set nameservers = host:port in [domain] to the zone's servers as this host reaches them, e.g. nameservers = 192.0.2.53:53"
        )
    }
}

/// The error that ends a wait at its timeout: every server still waited
/// for, with what it said last.
pub(crate) fn timeout_message(zone: &str, waiting: &[&Watch], timeout: Duration) -> String {
    let servers: Vec<String> = waiting
        .iter()
        .map(|w| format!("{} ({})", w.server, w.seen))
        .collect();
    format!(
        "zone {zone}: not every authoritative server served the challenge records within {} s (propagationtimeout): still waiting for {}. Raise propagationtimeout in [domain] or [cert] if the provider is slow to publish",
        timeout.as_secs(),
        servers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch::new(Server {
            name: "ns1.example.test".into(),
            addr: "127.0.0.1:53".parse().unwrap(),
        })
    }

    fn refused() -> Seen {
        Seen::of(&Err(ProviderError::Unreachable {
            server: "127.0.0.1:53".into(),
            reason: "Connection refused (os error 111)".into(),
        }))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn unreachable_on_every_try_for_the_limit_is_hopeless() {
        let mut w = watch();
        assert!(w.saw(refused(), secs(0)));
        assert!(!w.saw(refused(), secs(5)), "the same seen twice is no news");
        assert!(!w.hopeless(secs(9)));
        assert!(w.hopeless(secs(10)));
    }

    #[test]
    fn an_answer_in_between_starts_the_count_again() {
        let mut w = watch();
        w.saw(refused(), secs(0));
        assert!(w.saw(Seen::of(&Ok(false)), secs(8)));
        w.saw(refused(), secs(9));
        assert!(!w.hopeless(secs(15)));
        assert!(w.hopeless(secs(19)));
    }

    #[test]
    fn a_timeout_counts_from_when_the_try_began() {
        let mut w = watch();
        w.saw(
            Seen::of(&Err(ProviderError::Timeout {
                server: "127.0.0.1:53".into(),
                seconds: 10,
                what: "TXT query".into(),
            })),
            secs(0),
        );
        assert!(w.hopeless(secs(10)));
        let advice = unreachable_advice("example.test", &w, false);
        assert!(
            advice.contains("ns1.example.test (127.0.0.1:53)")
                && advice.contains("answered none of the questions")
                && advice.contains("nameservers = host:port in [domain]"),
            "{advice}"
        );
    }

    #[test]
    fn errors_other_than_unreachable_do_not_end_the_wait() {
        let mut w = watch();
        w.saw(
            Seen::of(&Err(ProviderError::NotAuthoritative {
                server: "127.0.0.1:53".into(),
                zone: "example.test".into(),
            })),
            secs(0),
        );
        assert!(!w.hopeless(secs(60)));
    }

    #[test]
    fn messages_name_server_and_what_it_said() {
        let mut w = watch();
        w.saw(refused(), secs(0));
        let advice = unreachable_advice("example.test", &w, true);
        assert!(
            advice.contains("refused or failed every connection")
                && advice.contains("Connection refused")
                && advice.contains("Check the nameservers key"),
            "{advice}"
        );
        let mut old = watch();
        old.saw(Seen::OldAnswer, secs(1));
        let text = timeout_message("example.test", &[&old], secs(300));
        assert!(
            text.contains("within 300 s")
                && text.contains("ns1.example.test (127.0.0.1:53) (an old answer"),
            "{text}"
        );
        let ip = Server {
            name: "127.0.0.1".into(),
            addr: "127.0.0.1:5353".parse().unwrap(),
        };
        assert_eq!(ip.to_string(), "127.0.0.1:5353");
    }
}
