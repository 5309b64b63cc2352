//! The timing rules of docs/timing.md, in one place: when new material may be
//! deployed, and when the records of replaced material may go.
//!
//! New records are "served" once every authoritative server of their zones
//! answers with them (asked directly). Resolvers may still hold what they were
//! told before: the old RRset for its TTL, a negative answer for the zone's
//! negative-caching TTL (RFC 2308 §5). So rollover waits, from the moment the
//! records were first served, twice the longest of the new RRset's TTL as the
//! servers give it, the TTL of the RRset the records joined, and the negative
//! TTL (RFC 7671 §8.1 asks for two TTLs).

use chrono::{DateTime, Duration, Utc};

use super::When;
use super::observed::ServedAnswers;
use crate::state::Served;

/// The time format of log lines and plans.
pub(crate) const WHEN: &str = "%Y-%m-%d %H:%M:%S UTC";

/// How long resolvers may hold answers from before the new records.
pub(crate) fn hold(served: &Served, joined_ttl: u32) -> u32 {
    served.ttl.max(joined_ttl).max(served.negative_ttl)
}

/// The TTL of new records: as the servers gave it, but never less than the
/// configured `ttl` (the configuration may have changed since they were
/// published).
fn record_ttl(served: &Served, configured: u32) -> u32 {
    served.ttl.max(configured)
}

/// When material whose records were first served as `served` says may be
/// deployed: twice the hold after that.
pub(crate) fn rollover_safe_at(served: &Served, joined_ttl: u32) -> DateTime<Utc> {
    served.at + seconds(2 * u64::from(hold(served, joined_ttl)))
}

/// When the records of material replaced at `rolled_over` may be deleted:
/// twice their TTL later (resolvers may hand them out that long, and a client
/// that saw the old certificate may still be connecting).
pub(crate) fn cleanup_safe_at(rolled_over: DateTime<Utc>, ttl: u32) -> DateTime<Utc> {
    rolled_over + seconds(2 * u64::from(ttl))
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The words of a refused rollover: why it may not happen yet.
pub(crate) fn refusal(when: &When, why: &str) -> String {
    match when {
        When::At(at) => format!(
            "resolvers may still hold answers without them: safe from {} ({why})",
            at.format(WHEN)
        ),
        _ => why.to_string(),
    }
}

/// How new records stand for a rollover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub when: When,
    /// Why, in words ("first served ... by 2/2 servers; 2 × max(...)").
    pub why: String,
}

/// Whether material whose records (of kind `what`, e.g. `TLSA`) were
/// published at `published` and first served as `served` may be deployed at
/// `now`. `answers` is what the servers serve now (asked when the safe time
/// has come, to see that the records are still there).
pub(crate) fn rollover_readiness(
    what: &str,
    published: Option<DateTime<Utc>>,
    served: Option<&Served>,
    ttls: (u32, u32),
    answers: Option<&ServedAnswers>,
    now: DateTime<Utc>,
) -> Readiness {
    let (joined_ttl, configured_ttl) = ttls;
    let waiting = |why: String| Readiness {
        when: When::Waiting(why.clone()),
        why,
    };
    if published.is_none() {
        return waiting(format!(
            "its {what} records have not been published yet (run --prepare)"
        ));
    }
    if let Some(answers) = answers.filter(|a| !a.all_served()) {
        return waiting(answers.missing());
    }
    let Some(served) = served else {
        return waiting(format!(
            "its {what} records have not yet been seen served by every authoritative server"
        ));
    };
    let ttl = record_ttl(served, configured_ttl);
    let safe = rollover_safe_at(served, joined_ttl.max(ttl));
    let why = format!(
        "{what} records first served {} by {n}/{n} servers; 2 × max(TTL {ttl} s, joined TTL {joined_ttl} s, negative TTL {} s)",
        served.at.format(WHEN),
        served.negative_ttl,
        n = served.servers,
    );
    if safe > now {
        return Readiness {
            when: When::At(safe),
            why,
        };
    }
    Readiness {
        when: When::Now,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn served(at: i64, ttl: u32, negative: u32) -> Served {
        Served {
            at: t(at),
            ttl,
            negative_ttl: negative,
            servers: 2,
        }
    }

    fn answers(serving: &[bool]) -> ServedAnswers {
        ServedAnswers {
            servers: serving
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let addr = format!("127.0.0.{}:53", i + 1).parse().unwrap();
                    (addr, Ok(s.then_some(300)))
                })
                .collect(),
            negative_ttl: Ok(60),
            unknown: Vec::new(),
            dnssec: Default::default(),
            records: vec!["www.example.test TLSA 3 1 1 00".into()],
        }
    }

    #[test]
    fn hold_is_the_longest_of_the_three() {
        for (ttl, joined, negative, expected) in [
            (300, 0, 60, 300),
            (300, 3600, 60, 3600),
            (60, 0, 900, 900),
            (0, 0, 0, 0),
        ] {
            assert_eq!(hold(&served(0, ttl, negative), joined), expected);
        }
    }

    #[test]
    fn rollover_waits_twice_the_hold_after_first_served() {
        let s = served(0, 1800, 300);
        assert_eq!(rollover_safe_at(&s, 0), t(3600));
        assert_eq!(rollover_safe_at(&s, 7200), t(14400));
        assert_eq!(cleanup_safe_at(t(0), 300), t(600));
    }

    #[test]
    fn readiness_table() {
        let s = served(0, 1800, 300);
        let all = answers(&[true, true]);
        let one = answers(&[true, false]);
        // (published, served, answers, now) -> when
        type Case<'a> = (
            Option<i64>,
            Option<&'a Served>,
            Option<&'a ServedAnswers>,
            i64,
            &'a str,
        );
        let cases: [Case<'_>; 7] = [
            (None, None, None, 0, "waiting: not been published"),
            (Some(0), None, None, 0, "waiting: not yet been seen"),
            (
                Some(0),
                None,
                Some(&one),
                0,
                "waiting: 127.0.0.2:53 does not serve",
            ),
            (Some(0), Some(&s), None, 3599, "at 3600"),
            (Some(0), Some(&s), Some(&all), 3600, "now"),
            (Some(0), Some(&s), None, 3600, "now"),
            (
                Some(0),
                Some(&s),
                Some(&one),
                3600,
                "waiting: does not serve all of",
            ),
        ];
        for (published, served, answers, now, expected) in cases {
            let r = rollover_readiness("TLSA", published.map(t), served, (0, 0), answers, t(now));
            let got = match &r.when {
                When::Now => "now".to_string(),
                When::At(at) => format!("at {}", (*at - t(0)).num_seconds()),
                When::Waiting(why) => format!("waiting: {why}"),
            };
            let (kind, detail) = expected.split_once(": ").unwrap_or((expected, ""));
            assert!(
                got.starts_with(kind) && got.contains(detail),
                "{published:?} {now}: {got} (expected {expected})"
            );
        }
    }

    #[test]
    fn the_reason_names_the_ttls() {
        let r = rollover_readiness(
            "TLSA",
            Some(t(0)),
            Some(&served(0, 1, 60)),
            (0, 30),
            None,
            t(10),
        );
        assert_eq!(r.when, When::At(t(120)));
        assert!(r.why.contains("TTL 30 s"), "{}", r.why);
        assert!(r.why.contains("negative TTL 60 s"), "{}", r.why);
        assert!(r.why.contains("by 2/2 servers"), "{}", r.why);
    }
}
