//! Observation of what authoritative servers serve, for the rule "a rollover is
//! safe once every authoritative nameserver serves the new record".
//!
//! Every question goes directly to an authoritative server over TCP, without
//! recursion (RD clear, RFC 1035 §4.1.1) and without TSIG; an answer counts only
//! when the AA bit is set. The zone's nameservers are its NS RRset (RFC 1034 §4.2.1),
//! resolved through glue or A/AAAA from the same server first, then the system
//! resolver. Negative caching lasts min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr as hrr;

use crate::dns::error::ProviderError;
use crate::dns::record::{Name, RData, Record, RecordType};
use crate::dns::transport::{DEFAULT_TIMEOUT, Exchange, rcode_error};
use crate::dns::wire::{from_wire_all, from_wire_name, to_wire_name, to_wire_type};

/// The DNS port nameservers are asked on.
pub const DNS_PORT: u16 = 53;

/// One authoritative nameserver of a zone: its NS host name and its addresses
/// (port 53).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameServer {
    pub host: Name,
    pub addrs: Vec<SocketAddr>,
}

/// One address of an authoritative server, with the name it is known by (the
/// NS host, or the `nameservers` entry as written), for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self
            .name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == self.addr.ip())
        {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{} ({})", self.name, self.addr)
        }
    }
}

/// The TTLs that bound negative caching of a zone (RFC 2308 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoaTtls {
    /// The TTL of the SOA record itself.
    pub soa_ttl: u32,
    /// The SOA MINIMUM field.
    pub minimum: u32,
}

impl SoaTtls {
    /// How long a resolver may cache a negative answer: the smaller of the two.
    pub fn negative_ttl(&self) -> u32 {
        self.soa_ttl.min(self.minimum)
    }
}

/// The owner of the SOA in an answer to an SOA query for `qname`: in the answer
/// section when `qname` is the apex, in the authority section when it lies below
/// the apex (NXDOMAIN or NODATA, RFC 2308 §2.1, §2.2).
pub fn soa_owner(answer: &Message, qname: &Name) -> Option<Name> {
    let soa_names = |records: &[hrr::Record]| -> Vec<Name> {
        records
            .iter()
            .filter(|r| r.record_type() == hrr::RecordType::SOA)
            .filter_map(|r| from_wire_name(&r.name).ok())
            .collect()
    };
    let in_answer = soa_names(&answer.answers);
    if in_answer.contains(qname) {
        return Some(qname.clone());
    }
    soa_names(&answer.authorities)
        .into_iter()
        .find(|zone| qname.is_at_or_below(zone))
}

/// The addresses of `host` among `records` (glue from an additional section).
pub fn glue_addresses(records: &[Record], host: &Name) -> Vec<IpAddr> {
    records
        .iter()
        .filter(|r| &r.name == host)
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a)),
            RData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
        .collect()
}

/// The records grouped by the question that asks for them (name and type), so
/// each distinct question is asked once.
pub fn questions(records: &[Record]) -> BTreeMap<(Name, RecordType), Vec<&Record>> {
    let mut groups: BTreeMap<(Name, RecordType), Vec<&Record>> = BTreeMap::new();
    for record in records {
        groups
            .entry((record.name.clone(), record.record_type()))
            .or_default()
            .push(record);
    }
    groups
}

/// True when every wanted record is among the served ones (canonical comparison,
/// TTL ignored).
pub fn all_served(wanted: &[&Record], served: &[Record]) -> bool {
    wanted
        .iter()
        .all(|want| served.iter().any(|have| have.same_as(want)))
}

/// The NS hosts of a zone as its provider lists them, before their addresses
/// are looked up (by [`resolve_nameservers`], the one place that does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NsHosts {
    /// Who listed them (the provider's description), for messages.
    pub source: String,
    /// Each NS host with the addresses the source itself knows for it (glue,
    /// the zone's own A/AAAA records).
    pub hosts: Vec<(Name, Vec<IpAddr>)>,
    /// A server that may hold the addresses of in-zone hosts without glue.
    pub ask: Option<SocketAddr>,
}

impl NsHosts {
    /// The apex NS hosts among `records` of `zone`, each with the addresses
    /// `records` give it (glue).
    pub fn from_records(source: String, zone: &Name, records: &[Record]) -> NsHosts {
        let hosts = records
            .iter()
            .filter(|r| &r.name == zone)
            .filter_map(|r| match &r.data {
                RData::Ns(host) => Some(host.clone()),
                _ => None,
            })
            .map(|host| {
                let ips = glue_addresses(records, &host);
                (host, ips)
            })
            .collect();
        NsHosts {
            source,
            hosts,
            ask: None,
        }
    }
}

/// The NS hosts of `zone` as `query_server` lists them, with the glue of its
/// answer; in-zone hosts without glue are asked of the same server later.
///
/// # Errors
/// The server cannot be asked or answers with an error.
pub async fn ns_hosts_from(
    query_server: SocketAddr,
    zone: &Name,
) -> Result<NsHosts, ProviderError> {
    let (_, answer) = ask(query_server, zone, zone, RecordType::Ns).await?;
    let mut records = from_wire_all(&answer.answers);
    records.extend(from_wire_all(&answer.additionals));
    let mut found = NsHosts::from_records(query_server.to_string(), zone, &records);
    found.ask = Some(query_server);
    Ok(found)
}

/// The addresses of each NS host of `found`: those its source knows, else the
/// A/AAAA the listing server holds, else the system resolver's. A host without
/// any address is kept (and logged): it cannot be asked, which the wait for
/// "served" reports.
///
/// # Errors
/// There is no NS host, or none has an address.
pub async fn resolve_nameservers(
    zone: &Name,
    found: NsHosts,
) -> Result<Vec<NameServer>, ProviderError> {
    let no_servers = |reason: String| ProviderError::NoZone {
        name: zone.to_string(),
        server: found.source.clone(),
        reason: format!("{reason}; set nameservers = host[:port], ... in [domain]"),
    };
    if found.hosts.is_empty() {
        return Err(no_servers("the zone has no NS records".into()));
    }
    let mut servers = Vec::new();
    for (host, known) in &found.hosts {
        let mut ips = known.clone();
        if ips.is_empty()
            && let Some(server) = found.ask
        {
            ips = addresses_from(server, zone, host).await;
        }
        let mut addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
            .collect();
        if addrs.is_empty() {
            match system_lookup(host).await {
                Ok(found) => addrs = found,
                Err(e) => log::debug!("zone {zone}: {e}"),
            }
        }
        addrs.sort();
        addrs.dedup();
        servers.push(NameServer {
            host: host.clone(),
            addrs,
        });
    }
    if servers.iter().all(|s| s.addrs.is_empty()) {
        return Err(no_servers(format!(
            "none of the zone's {} NS hosts has an address",
            servers.len()
        )));
    }
    Ok(servers)
}

/// Whether `server` serves every record of `records` (asked directly, one query
/// per distinct name and type; an NXDOMAIN or NODATA answer means "not yet").
///
/// # Errors
/// The server cannot be asked, answers with an error, or is not authoritative
/// for a name.
pub async fn served_by(server: SocketAddr, records: &[Record]) -> Result<bool, ProviderError> {
    served_ttl(server, records).await.map(|ttl| ttl.is_some())
}

/// Like [`served_by`], with the longest TTL the server gives the RRsets of
/// `records` when it serves them all (`None` when it does not).
///
/// # Errors
/// As [`served_by`].
pub async fn served_ttl(
    server: SocketAddr,
    records: &[Record],
) -> Result<Option<u32>, ProviderError> {
    Ok(served_rrsets(server, records).await?.map(|s| s.ttl))
}

/// What a server serves of the RRsets of some records, when it serves them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedRrsets {
    /// The longest TTL it gives them.
    pub ttl: u32,
    /// Every RRset came with an RRSIG covering it (asked with the DO bit,
    /// RFC 4035 §3.1.1): what a validating resolver needs.
    pub signed: bool,
}

/// Like [`served_ttl`], asking with the DO bit and noting whether every RRset
/// comes with its signature (one query per distinct name and type).
///
/// # Errors
/// As [`served_by`].
pub async fn served_rrsets(
    server: SocketAddr,
    records: &[Record],
) -> Result<Option<ServedRrsets>, ProviderError> {
    let mut longest = 0;
    let mut signed = true;
    for ((name, rtype), wanted) in questions(records) {
        let (exchange, answer) = ask(server, &name, &name, rtype).await?;
        if answer.response_code == ResponseCode::NXDomain {
            return Ok(None);
        }
        if !answer.authoritative {
            return Err(ProviderError::NotAuthoritative {
                server: exchange.server(),
                zone: name.to_string(),
            });
        }
        let served = from_wire_all(&answer.answers);
        if !all_served(&wanted, &served) {
            return Ok(None);
        }
        longest = served
            .iter()
            .filter(|r| r.name == name && r.record_type() == rtype)
            .map(|r| r.ttl)
            .fold(longest, u32::max);
        signed &= covered_by_rrsig(&answer.answers, &name, rtype);
    }
    Ok(Some(ServedRrsets {
        ttl: longest,
        signed,
    }))
}

/// True when `records` hold an RRSIG at `name` covering `rtype`.
pub fn covered_by_rrsig(records: &[hrr::Record], name: &Name, rtype: RecordType) -> bool {
    let wanted = to_wire_type(rtype);
    records.iter().any(|r| match &r.data {
        hrr::RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            sig.input().type_covered == wanted && from_wire_name(&r.name).is_ok_and(|n| &n == name)
        }
        _ => false,
    })
}

/// Whether `server` gives the `rtype` RRset at `name` with an RRSIG covering
/// it: `None` when it serves no such RRset.
///
/// # Errors
/// The server cannot be asked or is not authoritative for the name.
pub async fn rrset_signed(
    server: SocketAddr,
    zone: &Name,
    name: &Name,
    rtype: RecordType,
) -> Result<Option<bool>, ProviderError> {
    let (exchange, answer) = ask(server, zone, name, rtype).await?;
    if answer.response_code == ResponseCode::NXDomain {
        return Ok(None);
    }
    if !answer.authoritative {
        return Err(ProviderError::NotAuthoritative {
            server: exchange.server(),
            zone: zone.to_string(),
        });
    }
    let served = from_wire_all(&answer.answers)
        .iter()
        .any(|r| &r.name == name && r.record_type() == rtype);
    Ok(served.then(|| covered_by_rrsig(&answer.answers, name, rtype)))
}

/// Whether `zone` is signed as `server` serves it: a DNSKEY RRset at its apex
/// (RFC 4035 §2.1).
///
/// # Errors
/// The server cannot be asked or is not authoritative for the zone.
pub async fn zone_signed(server: SocketAddr, zone: &Name) -> Result<bool, ProviderError> {
    let (exchange, answer) = ask_wire(server, zone, zone, hrr::RecordType::DNSKEY).await?;
    if !answer.authoritative {
        return Err(ProviderError::NotAuthoritative {
            server: exchange.server(),
            zone: zone.to_string(),
        });
    }
    Ok(answer.answers.iter().any(|r| {
        r.record_type() == hrr::RecordType::DNSKEY
            && from_wire_name(&r.name).is_ok_and(|n| &n == zone)
    }))
}

/// What a validating resolver says of some records: `Ok(())` when it answers
/// every RRset with all of them and the AD bit (RFC 4035 §3.2.3, asked with
/// AD set as RFC 6840 §5.7 recommends), else why not.
///
/// # Errors
/// The resolver cannot be asked, answers with an error rcode (SERVFAIL is how
/// a validator reports bogus data), or does not validate.
pub async fn validated_by(resolver: SocketAddr, records: &[Record]) -> Result<(), String> {
    for ((name, rtype), wanted) in questions(records) {
        let exchange = Exchange {
            host: resolver.ip().to_string(),
            port: resolver.port(),
            zone: name.to_string(),
            what: format!("validated {rtype} query for {name}"),
            detail: format!("QUERY {rtype} {name} (recursive, DO)"),
            log_prefix: "observe",
            timeout: DEFAULT_TIMEOUT,
        };
        let qname = to_wire_name(&name).map_err(|e| e.0)?;
        let mut query = Message::query();
        query.add_query(Query::query(qname, to_wire_type(rtype)));
        query.metadata.recursion_desired = true;
        query.metadata.authentic_data = true;
        query.set_edns(dnssec_ok());
        let answer = exchange
            .exchange(query, None)
            .await
            .map_err(|e| format!("dnssecresolver {resolver}: {e}"))?;
        if answer.response_code != ResponseCode::NoError {
            return Err(format!(
                "dnssecresolver {resolver} answers {} for {name} {rtype} (SERVFAIL: the signatures do not validate, or it cannot reach the zone)",
                answer.response_code
            ));
        }
        let served = from_wire_all(&answer.answers);
        if !all_served(&wanted, &served) {
            return Err(format!(
                "dnssecresolver {resolver} does not yet give all of the {rtype} records at {name}"
            ));
        }
        if !answer.authentic_data {
            return Err(format!(
                "dnssecresolver {resolver} answers {name} {rtype} without the AD bit: it does not validate, or the zone is not signed"
            ));
        }
    }
    Ok(())
}

/// EDNS with the DO bit: ask for the RRSIGs too (RFC 3225).
fn dnssec_ok() -> Edns {
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(4096);
    edns
}

/// The SOA TTL and MINIMUM of `zone` as `server` serves them; see
/// [`SoaTtls::negative_ttl`].
///
/// # Errors
/// The server cannot be asked or does not serve the zone's SOA.
pub async fn soa_negative_ttl(server: SocketAddr, zone: &Name) -> Result<SoaTtls, ProviderError> {
    let (_, answer) = ask(server, zone, zone, RecordType::Soa).await?;
    from_wire_all(&answer.answers)
        .into_iter()
        .find_map(|r| match r.data {
            RData::Soa(soa) if &r.name == zone => Some(SoaTtls {
                soa_ttl: r.ttl,
                minimum: soa.minimum,
            }),
            _ => None,
        })
        .ok_or_else(|| ProviderError::NoZone {
            name: zone.to_string(),
            server: server.to_string(),
            reason: "the server does not serve an SOA record for it".into(),
        })
}

/// One non-recursive query; NOERROR and NXDOMAIN come back, other rcodes are
/// errors.
async fn ask(
    server: SocketAddr,
    zone: &Name,
    name: &Name,
    rtype: RecordType,
) -> Result<(Exchange, Message), ProviderError> {
    ask_wire(server, zone, name, to_wire_type(rtype)).await
}

/// [`ask`] for any record type, also those the record model does not hold
/// (DNSKEY).
async fn ask_wire(
    server: SocketAddr,
    zone: &Name,
    name: &Name,
    rtype: hrr::RecordType,
) -> Result<(Exchange, Message), ProviderError> {
    let exchange = Exchange {
        host: server.ip().to_string(),
        port: server.port(),
        zone: zone.to_string(),
        what: format!("{rtype} query for {name}"),
        detail: format!("QUERY {rtype} {name}"),
        log_prefix: "observe",
        timeout: DEFAULT_TIMEOUT,
    };
    let qname = to_wire_name(name).map_err(|e| ProviderError::Protocol {
        server: server.to_string(),
        reason: e.0,
    })?;
    let mut query = Message::query();
    query.add_query(Query::query(qname, rtype));
    // With the DO bit, signed zones add their RRSIGs: one question tells
    // what is served and whether it is signed.
    query.set_edns(dnssec_ok());
    let answer = exchange.exchange(query, None).await?;
    match answer.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok((exchange, answer)),
        _ => Err(rcode_error(&exchange, &answer, None)),
    }
}

/// A and AAAA of `host` from the server that lists it; errors count as "none".
async fn addresses_from(server: SocketAddr, zone: &Name, host: &Name) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for rtype in [RecordType::A, RecordType::Aaaa] {
        if let Ok((_, answer)) = ask(server, zone, host, rtype).await {
            ips.extend(glue_addresses(&from_wire_all(&answer.answers), host));
        }
    }
    ips
}

/// The system resolver's addresses for `host`, port 53.
async fn system_lookup(host: &Name) -> Result<Vec<SocketAddr>, ProviderError> {
    let unresolved = |reason: String| ProviderError::Unreachable {
        server: host.to_string(),
        reason: format!("nameserver has no address: {reason}"),
    };
    let lookup = tokio::net::lookup_host((host.as_str(), DNS_PORT));
    let addrs: Vec<SocketAddr> = tokio::time::timeout(DEFAULT_TIMEOUT, lookup)
        .await
        .map_err(|_| unresolved("the system resolver did not answer in time".into()))?
        .map_err(|e| unresolved(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(unresolved("no A or AAAA record".into()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::to_wire;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::DNSClass;
    use hickory_proto::rr::rdata::SOA;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    fn a(owner: &str, ip: &str) -> Record {
        Record::new(name(owner), 300, RData::A(ip.parse().unwrap()))
    }

    fn soa_record(owner: &str) -> hrr::Record {
        hrr::Record::from_rdata(
            hrr::Name::from_ascii(format!("{owner}.")).unwrap(),
            300,
            hrr::RData::SOA(SOA::new(
                hrr::Name::from_ascii("ns1.example.com.").unwrap(),
                hrr::Name::from_ascii("hostmaster.example.com.").unwrap(),
                1,
                3600,
                600,
                86400,
                60,
            )),
        )
    }

    #[test]
    fn soa_owner_at_apex_and_below() {
        let mut apex = Message::response(1, OpCode::Query);
        apex.add_answer(soa_record("example.com"));
        assert_eq!(
            soa_owner(&apex, &name("Example.COM")),
            Some(name("example.com"))
        );

        let mut below = Message::response(1, OpCode::Query);
        below.add_authority(soa_record("example.com"));
        assert_eq!(
            soa_owner(&below, &name("a.b.example.com")),
            Some(name("example.com"))
        );
        // An SOA of an unrelated zone is not the zone of the name.
        assert_eq!(soa_owner(&below, &name("example.org")), None);
        assert_eq!(
            soa_owner(&Message::response(1, OpCode::Query), &name("x.org")),
            None
        );
    }

    #[test]
    fn glue_is_matched_by_host() {
        let records = vec![
            a("ns1.example.com", "192.0.2.1"),
            a("ns2.example.com", "192.0.2.2"),
            Record::new(
                name("ns1.example.com"),
                300,
                RData::Aaaa("2001:db8::1".parse().unwrap()),
            ),
        ];
        assert_eq!(
            glue_addresses(&records, &name("ns1.example.com")),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn one_question_per_name_and_type() {
        let records = vec![
            a("www.example.com", "192.0.2.1"),
            a("WWW.example.com.", "192.0.2.2"),
            a("mail.example.com", "192.0.2.3"),
        ];
        let groups = questions(&records);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[&(name("www.example.com"), RecordType::A)].len(), 2);
    }

    #[test]
    fn served_compares_canonically() {
        let want = Record::new(
            name("www.example.com"),
            300,
            RData::Aaaa("2001:db8::1".parse().unwrap()),
        );
        let wire = to_wire(&want, DNSClass::IN, 60).unwrap();
        let served = from_wire_all([&wire]);
        assert!(all_served(&[&want], &served));
        assert!(!all_served(&[&a("www.example.com", "192.0.2.1")], &served));
        assert!(all_served(&[], &[]));
    }

    #[test]
    fn negative_ttl_is_the_smaller() {
        let ttls = SoaTtls {
            soa_ttl: 3600,
            minimum: 300,
        };
        assert_eq!(ttls.negative_ttl(), 300);
        let ttls = SoaTtls {
            soa_ttl: 60,
            minimum: 300,
        };
        assert_eq!(ttls.negative_ttl(), 60);
    }

    #[tokio::test]
    async fn nameserver_addresses_from_the_listing_else_the_system() {
        let zone = name("example.org");
        let records = [
            Record::new(name("example.org"), 300, RData::Ns(name("ns1.example.org"))),
            Record::new(name("example.org"), 300, RData::Ns(name("localhost"))),
            a("ns1.example.org", "192.0.2.53"),
        ];
        let found = NsHosts::from_records("test".into(), &zone, &records);
        let servers = resolve_nameservers(&zone, found).await.unwrap();
        assert_eq!(servers[0].addrs, ["192.0.2.53:53".parse().unwrap()]);
        assert_eq!(servers[1].host, name("localhost"));
        assert!(servers[1].addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(!servers[1].addrs.is_empty());

        let none =
            NsHosts::from_records("test".into(), &zone, &[a("www.example.org", "192.0.2.1")]);
        let error = resolve_nameservers(&zone, none)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("no NS records"), "{error}");
        assert!(error.contains("set nameservers"), "{error}");
    }
}
