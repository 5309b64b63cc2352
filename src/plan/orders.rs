//! `maxordersperhour`: how many new ACME orders a run may start. Orders made
//! in the hour before `now` count (certificates issued, orders under way);
//! continuing an order an interrupted run left is not a new order. Issue steps
//! beyond the limit wait, in plan order, until the oldest order of the window
//! is an hour old, and the log says so.

use chrono::{DateTime, Duration, Utc};

use super::timing::WHEN;
use super::{Action, Plan, When};
use crate::state::State;

/// The times of the new orders made in the hour before `now`, oldest first.
pub(crate) fn recent_orders(state: &State, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let since = now - Duration::hours(1);
    let mut times: Vec<DateTime<Utc>> = state
        .certs
        .values()
        .flat_map(|cert| {
            let issued = cert
                .current
                .iter()
                .chain(&cert.prepared)
                .chain(&cert.superseded)
                .map(|m| m.issued_at);
            issued.chain(cert.pending.as_ref().map(|p| p.started))
        })
        .filter(|at| *at > since && *at <= now)
        .collect();
    times.sort();
    times.dedup();
    times
}

/// Holds back the issue steps due now that would exceed `max` new orders in
/// an hour.
pub(crate) fn limit(plan: &mut Plan, state: &State, max: u32, now: DateTime<Utc>) {
    let recent = recent_orders(state, now);
    let mut budget = (max as usize).saturating_sub(recent.len());
    // A slot frees when the oldest order of the window turns an hour old; with
    // none in the window (more due at once than the limit), in an hour.
    let free_at = recent.first().map_or(now, |oldest| *oldest) + Duration::hours(1);
    for step in &mut plan.steps {
        let Action::Issue(issue) = &step.action else {
            continue;
        };
        let continues = issue.resume.as_ref().is_some_and(|p| p.order_url.is_some());
        if step.when != When::Now || continues {
            continue;
        }
        if budget > 0 {
            budget -= 1;
            continue;
        }
        step.reason = format!(
            "{}; held back: maxordersperhour = {max} and {} new order(s) in the last hour, carried to a run at or after {}",
            step.reason,
            recent.len(),
            free_at.format(WHEN)
        );
        step.when = When::At(free_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Issue, Section, Step};
    use crate::state::{CertMaterial, CertState, PendingIssue};
    use std::path::PathBuf;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn issued(at: DateTime<Utc>) -> CertMaterial {
        CertMaterial {
            dir: PathBuf::from("/x"),
            names: vec!["a.test".into()],
            serial: "01".into(),
            fingerprint: "00".into(),
            not_after: at + Duration::days(90),
            issued_at: at,
            deployed_at: None,
            tlsa_published_at: None,
            tlsa_joined_ttl: None,
            tlsa_served: None,
            key_type: None,
        }
    }

    fn issue(name: &str, resume_order: Option<&str>) -> Step {
        Step::now(
            Section::Cert(name.into()),
            Action::Issue(Issue {
                names: vec![format!("{name}.test")],
                resume: resume_order.map(|url| PendingIssue {
                    dir: PathBuf::from("/x"),
                    names: vec![format!("{name}.test")],
                    order_url: Some(url.into()),
                    started: t(-5),
                }),
                replaces: None,
                key: None,
            }),
            "fewer than 30 days left",
        )
    }

    fn state(issued_at: &[i64]) -> State {
        let mut state = State::default();
        for (i, minutes) in issued_at.iter().enumerate() {
            state.certs.insert(
                format!("old{i}"),
                CertState {
                    current: Some(issued(t(*minutes))),
                    ..CertState::default()
                },
            );
        }
        state
    }

    fn plan_of(steps: Vec<Step>) -> Plan {
        Plan {
            steps,
            ..Plan::default()
        }
    }

    fn whens(plan: &Plan) -> Vec<When> {
        plan.steps.iter().map(|s| s.when.clone()).collect()
    }

    #[test]
    fn orders_beyond_the_hourly_limit_wait_for_a_free_slot() {
        // (orders in the window, minutes ago; limit; expected per step: None = now)
        type Case<'a> = (&'a str, &'a [i64], u32, [Option<i64>; 3]);
        let cases: [Case; 5] = [
            ("room for all", &[], 5, [None, None, None]),
            ("limit reached by this plan", &[], 2, [None, None, Some(60)]),
            (
                "two made 50 and 20 minutes ago",
                &[-50, -20],
                3,
                [None, Some(10), Some(10)],
            ),
            (
                "older than an hour do not count",
                &[-61, -90],
                2,
                [None, None, Some(60)],
            ),
            (
                "window full",
                &[-30, -10],
                2,
                [Some(30), Some(30), Some(30)],
            ),
        ];
        for (what, made, max, expected) in cases {
            let mut plan = plan_of(vec![issue("a", None), issue("b", None), issue("c", None)]);
            limit(&mut plan, &state(made), max, t(0));
            let want: Vec<When> = expected
                .iter()
                .map(|e| e.map_or(When::Now, |m| When::At(t(m))))
                .collect();
            assert_eq!(whens(&plan), want, "{what}");
        }
    }

    #[test]
    fn continuing_an_order_is_not_a_new_one_and_the_reason_says_why() {
        let mut plan = plan_of(vec![
            issue("a", Some("https://ca.test/order/1")),
            issue("b", None),
        ]);
        limit(&mut plan, &state(&[-10]), 1, t(0));
        assert_eq!(whens(&plan), [When::Now, When::At(t(50))]);
        assert!(
            plan.steps[1].reason.contains("maxordersperhour = 1"),
            "{}",
            plan.steps[1].reason
        );
        assert!(plan.steps[1].reason.starts_with("fewer than 30 days left"));
    }

    #[test]
    fn orders_under_way_count() {
        let mut state = State::default();
        state.certs.insert(
            "x".into(),
            CertState {
                pending: Some(PendingIssue {
                    dir: PathBuf::from("/x"),
                    names: vec!["x.test".into()],
                    order_url: None,
                    started: t(-15),
                }),
                ..CertState::default()
            },
        );
        assert_eq!(recent_orders(&state, t(0)), [t(-15)]);
        let mut plan = plan_of(vec![issue("a", None)]);
        limit(&mut plan, &state, 1, t(0));
        assert_eq!(whens(&plan), [When::At(t(45))]);
    }
}
