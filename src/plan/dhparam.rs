//! A DH parameter section's cycle: when to make parameters, deploy them, and
//! delete superseded files. DH parameters have no DNS records, so prepared
//! parameters may be deployed at once.
//!
//! Handler `openssl` makes a fresh safe prime in every explicit `--prepare` (as
//! the original ran `openssl dhparam` in every cycle); `--auto` makes new ones
//! when the current ones are `rotatedays` old. Handler `ffdhe` writes the RFC
//! 7919 group only when it is not the deployed one already.

use chrono::{DateTime, Duration, Utc};

use super::{Action, Deletion, Input, Plan, Request, Section, Step};
use crate::config::dhparam::{DhHandler, DhParamSection};
use crate::state::{DhMaterial, DhState};

/// Why new parameters are made, or `None` when the prepared or current ones
/// are kept. `ffdhe_fingerprint`: the group's, for handler `ffdhe`.
pub(crate) fn prepare_reason(
    dh: &DhParamSection,
    state: &DhState,
    ffdhe_fingerprint: Option<&str>,
    request: Request,
    now: DateTime<Utc>,
) -> Option<String> {
    let same = |m: &DhMaterial| {
        m.handler == dh.handler.name()
            && m.bits == dh.bits
            && ffdhe_fingerprint.is_none_or(|fp| fp == m.fingerprint)
    };
    if state.prepared.as_ref().is_some_and(same) {
        return None;
    }
    match (dh.handler, &state.current) {
        (DhHandler::Ffdhe, Some(current)) if same(current) => None,
        (DhHandler::Ffdhe, _) => Some(format!("the RFC 7919 group ffdhe{}", dh.bits)),
        (DhHandler::Generate, _) if request != Request::Auto => {
            Some("new parameters for this cycle".into())
        }
        (DhHandler::Generate, None) => Some("there are no parameters yet".into()),
        (DhHandler::Generate, Some(current)) if !same(current) => Some(format!(
            "the parameters changed from {} {} bits",
            current.handler, current.bits
        )),
        (DhHandler::Generate, Some(current)) => {
            let age = now - current.created_at;
            (age >= Duration::days(i64::from(dh.rotate_days))).then(|| {
                format!(
                    "the parameters are {} days old (rotatedays = {})",
                    age.num_days(),
                    dh.rotate_days
                )
            })
        }
    }
}

/// Plans `dh`'s steps of this round.
pub(crate) fn plan(input: &Input<'_>, dh: &DhParamSection, plan: &mut Plan) {
    let section = Section::DhParam(dh.name.clone());
    let state = input
        .state
        .dhparams
        .get(&dh.name)
        .cloned()
        .unwrap_or_default();
    if input.request.prepares() {
        let fingerprint = match (dh.handler, input.observed.ffdhe.get(&dh.name)) {
            (DhHandler::Ffdhe, Some(Err(e))) => {
                plan.info.push((section.clone(), e.clone()));
                return;
            }
            (DhHandler::Ffdhe, Some(Ok(fp))) => Some(fp.as_str()),
            _ => None,
        };
        match prepare_reason(dh, &state, fingerprint, input.request, input.now) {
            Some(reason) => {
                plan.steps
                    .push(Step::now(section.clone(), Action::MakeDhParams, reason))
            }
            None => plan.info.push((
                section.clone(),
                format!(
                    "kept: {}-bit parameters ({})",
                    dh.bits,
                    if state.prepared.is_some() {
                        "prepared, waiting for rollover"
                    } else {
                        "deployed"
                    }
                ),
            )),
        }
    }
    if input.request.rolls_over() {
        match (&state.prepared, &state.current) {
            (Some(prepared), _) => plan.steps.push(Step::now(
                section.clone(),
                Action::DeployDh {
                    material: prepared.clone(),
                    fresh: true,
                },
                format!("{}-bit parameters are prepared", prepared.bits),
            )),
            (None, Some(current)) if input.observed.dh_not_in_place.contains(&dh.name) => {
                plan.steps.push(Step::now(
                    section.clone(),
                    Action::DeployDh {
                        material: current.clone(),
                        fresh: false,
                    },
                    format!(
                        "{} does not hold the current parameters",
                        dh.filename.display()
                    ),
                ))
            }
            (None, Some(_)) => {}
            (None, None) if input.request == Request::Rollover && input.first_round => {
                plan.info.push((section.clone(), "nothing prepared".into()));
            }
            (None, None) => {}
        }
    }
    if input.request.cleans_up() {
        let base = input.config.cdm.statedir.join("dhparams");
        for old in &state.superseded {
            if old.file.starts_with(&base) {
                plan.steps.push(Step::now(
                    section.clone(),
                    Action::Delete(Deletion::DhFile(old.clone())),
                    "superseded parameters",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(days)
    }

    fn section(handler: DhHandler) -> DhParamSection {
        DhParamSection {
            name: "dh".into(),
            span: None,
            handler,
            bits: 2048,
            filename: "/x".into(),
            rotate_days: 90,
        }
    }

    fn material(handler: &str, fp: &str, created: i64) -> DhMaterial {
        DhMaterial {
            file: "/s".into(),
            handler: handler.into(),
            bits: 2048,
            fingerprint: fp.into(),
            created_at: t(created),
            deployed_at: None,
        }
    }

    fn deployed(m: DhMaterial) -> DhState {
        DhState {
            current: Some(m),
            ..DhState::default()
        }
    }

    fn prepared(m: DhMaterial) -> DhState {
        DhState {
            prepared: Some(m),
            ..DhState::default()
        }
    }

    #[test]
    fn when_prepare_makes_new_parameters() {
        let generate = section(DhHandler::Generate);
        let ffdhe = section(DhHandler::Ffdhe);
        let none = DhState::default();
        let p = Request::Prepare;
        let now = t(0);
        // A new cycle generates again; prepared parameters are kept.
        assert!(prepare_reason(&generate, &none, None, p, now).is_some());
        assert!(
            prepare_reason(
                &generate,
                &deployed(material("openssl", "a", 0)),
                None,
                p,
                now
            )
            .is_some()
        );
        assert!(
            prepare_reason(
                &generate,
                &prepared(material("openssl", "a", 0)),
                None,
                p,
                now
            )
            .is_none()
        );
        assert!(
            prepare_reason(
                &generate,
                &prepared(material("ffdhe", "a", 0)),
                None,
                p,
                now
            )
            .is_some()
        );
        // The fixed group is prepared only when it is not in place already.
        assert!(prepare_reason(&ffdhe, &none, Some("g"), p, now).is_some());
        assert!(
            prepare_reason(
                &ffdhe,
                &deployed(material("ffdhe", "g", 0)),
                Some("g"),
                p,
                now
            )
            .is_none()
        );
        assert!(
            prepare_reason(
                &ffdhe,
                &deployed(material("openssl", "a", 0)),
                Some("g"),
                p,
                now
            )
            .is_some()
        );
        assert!(
            prepare_reason(
                &ffdhe,
                &prepared(material("ffdhe", "g", 0)),
                Some("g"),
                p,
                now
            )
            .is_none()
        );
    }

    #[test]
    fn auto_rotates_generated_parameters_by_age() {
        let generate = section(DhHandler::Generate);
        let a = Request::Auto;
        let current = deployed(material("openssl", "a", 0));
        assert!(prepare_reason(&generate, &DhState::default(), None, a, t(0)).is_some());
        assert_eq!(prepare_reason(&generate, &current, None, a, t(89)), None);
        assert!(
            prepare_reason(&generate, &current, None, a, t(90))
                .is_some_and(|r| r.contains("90 days old"))
        );
        let other = deployed(material("ffdhe", "g", 0));
        assert!(prepare_reason(&generate, &other, None, a, t(1)).is_some());
    }
}
