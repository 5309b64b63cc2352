//! What a round must observe before it can plan: which zones to read (and,
//! for providers that cannot list a zone, which RRsets), which sections' new
//! records to ask the authoritative servers about, which certificates' renewal
//! information to fetch, and which public addresses to look up. Pure: the
//! material on disk was read before ([`Observed::certs`]).

use std::collections::BTreeSet;

use super::cert::{ari_wanted, awaited_tlsa, cert_state};
use super::dkim::{awaited, dkim_state};
use super::records::{Awaited, for_domain, has_material};
use super::scope::{Filter, Names};
use super::timing::rollover_safe_at;
use super::zones::{needs_public_ip, updates_in_round, wants_caa_auto};
use super::{Input, Section};
use crate::config::model::Domain;
use crate::dns::record::{Name, RecordType};

/// What to observe in a round.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Domain sections whose zones are read.
    pub domains: Vec<Name>,
    /// Sections whose new records the authoritative servers are asked about.
    pub served: Vec<Awaited>,
    /// `[cert]` sections whose renewal information is fetched.
    pub ari: Vec<String>,
    /// Lookup URLs for public IPv4 and IPv6 addresses.
    pub ip4: BTreeSet<String>,
    pub ip6: BTreeSet<String>,
    /// Domain sections with `caa = auto`.
    pub caa: Vec<Name>,
}

/// What `input`'s round must observe (`input.observed` holds the material on
/// disk, not yet zones or answers).
pub(crate) fn needs(input: &Input<'_>) -> Needs {
    let mut needs = Needs::default();
    let config = input.config;
    for domain in &config.domains {
        let static_records = updates_in_round(input, domain);
        let material = !matches!(
            input.request,
            super::Request::Update | super::Request::Rollover
        ) && has_material(input, domain);
        if static_records || material {
            needs.domains.push(domain.name.clone());
        }
        if static_records {
            for (v4, url, set) in [
                (true, &domain.ip4_lookup, &mut needs.ip4),
                (false, &domain.ip6_lookup, &mut needs.ip6),
            ] {
                if needs_public_ip(domain, v4) {
                    set.insert(url.clone());
                }
            }
            if wants_caa_auto(domain) {
                needs.caa.push(domain.name.clone());
            }
        }
    }
    if input.request.prepares() {
        for cert in &config.certs {
            if !input.failed.contains(&Section::Cert(cert.name.clone()))
                && ari_wanted(cert, &cert_state(input.state, &cert.name), input.now)
            {
                needs.ari.push(cert.name.clone());
            }
        }
    }
    if input.request != super::Request::Update {
        served(input, &mut needs);
    }
    needs
}

/// The sections whose records are to be asked about: published and not yet
/// seen served, or (for a rollover) due now, to see they are still served.
fn served(input: &Input<'_>, needs: &mut Needs) {
    // An explicit rollover always asks: the servers it names may differ from
    // those that served the records first. `--auto` asks again only once the
    // wait is over.
    let due = |served: Option<&crate::state::Served>, joined: Option<u32>| match served {
        None => true,
        Some(_) if input.request == super::Request::Rollover => true,
        Some(s) => {
            input.request.rolls_over() && rollover_safe_at(s, joined.unwrap_or(0)) <= input.now
        }
    };
    for cert in &input.config.certs {
        let state = cert_state(input.state, &cert.name);
        let Some(prepared) = &state.prepared else {
            continue;
        };
        if prepared.tlsa_published_at.is_none()
            || !due(prepared.tlsa_served.as_ref(), prepared.tlsa_joined_ttl)
        {
            continue;
        }
        if let Ok(domains) = awaited_tlsa(input.config, &cert.name, prepared, input.observed)
            && !domains.is_empty()
        {
            needs.served.push(Awaited {
                section: Section::Cert(cert.name.clone()),
                domains,
            });
        }
    }
    for dkim in &input.config.dkims {
        let state = dkim_state(input.state, &dkim.name);
        let Some(prepared) = &state.prepared else {
            continue;
        };
        if prepared.published.is_none() || !due(prepared.served.as_ref(), prepared.joined_ttl) {
            continue;
        }
        let ttl_of = |name: &Name| {
            input
                .config
                .domains
                .iter()
                .find(|d| &d.name == name)
                .map_or(crate::config::model::DEFAULT_TTL, |d| d.ttl)
        };
        let domains = awaited(dkim, prepared, ttl_of);
        if !domains.is_empty() {
            needs.served.push(Awaited {
                section: Section::Dkim(dkim.name.clone()),
                domains,
            });
        }
    }
}

/// The RRsets a provider that cannot list a zone must read for `domains` in
/// `zone`: those the static keys speak for (and the NS RRsets that show
/// delegations), and the owners of the material records and their scopes.
pub(crate) fn rrsets(
    input: &Input<'_>,
    domains: &[Domain],
    zone: &Name,
) -> Vec<(Name, RecordType)> {
    let mut wanted: BTreeSet<(Name, RecordType)> = BTreeSet::new();
    {
        let statics: Vec<Domain> = domains
            .iter()
            .filter(|d| updates_in_round(input, d))
            .cloned()
            .collect();
        wanted.extend(super::rrsets::rrsets_to_read(&statics, zone));
    }
    for domain in domains {
        for contribution in for_domain(input, domain).contributions {
            let scope = &contribution.scope;
            match (&scope.names, &scope.filter) {
                (Names::Exact(name), _) => {
                    wanted.insert((name.clone(), scope.rtype));
                }
                (Names::ServiceBelow(base), Filter::Tlsa(f)) => {
                    if let (Some(port), Some(proto)) = (f.port, &f.proto)
                        && let Ok(owner) = base.prepend(&format!("_{port}._{proto}"))
                    {
                        wanted.insert((owner, scope.rtype));
                    }
                }
                (Names::ServiceBelow(_), _) => {}
            }
            for record in &contribution.records {
                wanted.insert((record.name.clone(), record.record_type()));
            }
        }
    }
    wanted.into_iter().collect()
}
