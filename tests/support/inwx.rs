//! An emulation of INWX's domain robot JSON-RPC API, served on loopback.
//!
//! INWX itself cannot be reached from here (no internet; its test system `ote`
//! is on the internet too), so the INWX tests run against this emulation of the
//! documented API (<https://www.inwx.de/en/help/apidoc>): `POST` of
//! `{"method": ..., "params": {...}}`, answers `{"code": ..., "msg": ...,
//! "resData": {...}}`, a session cookie `domrobot` set by `account.login`, and
//! the documented result codes:
//!
//! | code | meaning | when |
//! | --- | --- | --- |
//! | 1000 | Command completed successfully | |
//! | 1500 | Command completed successfully; ending session | `account.logout` |
//! | 2003 | Required parameter missing | |
//! | 2200 | Authentication error | wrong user/password, wrong TAN, no session |
//! | 2302 | Object exists | `nameserver.createRecord` of a record already there |
//! | 2303 | Object does not exist | unknown domain or record id |
//! | 2005 | Parameter value syntax error | an SOA content that is not `primary hostmaster serial [refresh retry expire minimum]` |
//! | 2308 | Data management policy violation | a record next to a CNAME, or a CNAME next to other data (RFC 1034 §3.6.2); the answer's `reason` says which (the wording is the emulation's) |
//! | 2400, 2500, 2502 | Command failed; (session limit / closing connection) | injected with [`InwxEmulation::fail_next`] |
//!
//! Methods: `account.login` (`user`, `pass`; `resData.tfa` is `GOOGLE-AUTH` for
//! an account with a TOTP secret, else `0`), `account.unlock` (`tan`, checked
//! against RFC 6238 with the account's secret), `account.logout`,
//! `nameserver.info` (`domain`, optional `name`, `type`), `nameserver.createRecord`
//! (`domain`, `name` relative or absolute, `type`, `content`, `ttl`, `prio`),
//! `nameserver.updateRecord` (`id`, `content`, `ttl`, `prio`),
//! `nameserver.deleteRecord` (`id`).
//!
//! Record content is INWX's: names without the final dot, MX and SRV priority
//! in `prio`, SRV content `weight port target`, TXT as plain text, and the SOA
//! as INWX's knowledge base describes it ("How can I adapt the SOA entry in the
//! INWX name server"): `primary hostmaster serial refresh retry expire
//! minimum`, the hostmaster as a name, by default `ns.inwx.de
//! hostmaster.inwx.de SERIAL 10800 3600 604800 3600`. The timers may be changed
//! with `nameserver.updateRecord`; INWX counts the serial itself, one up on
//! every change of the zone (a serial in an update is ignored). An update with
//! only `primary hostmaster serial` keeps the timers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use cryptdomainmgr::dns::record::{RData, Record};
use serde_json::{Value, json};

use super::http::{HttpServer, Request, Response};

/// One record in the emulated nameservers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InwxRecord {
    pub id: u64,
    /// Absolute, lower-case, no trailing dot.
    pub name: String,
    pub rtype: String,
    pub content: String,
    pub ttl: u32,
    pub prio: u16,
}

#[derive(Default)]
struct State {
    user: String,
    pass: String,
    totp_secret: Option<String>,
    /// cookie -> unlocked (TOTP given, or not needed)
    sessions: BTreeMap<String, bool>,
    domains: BTreeMap<String, Vec<InwxRecord>>,
    next_id: u64,
    next_session: u64,
    failures: VecDeque<(String, i64)>,
    calls: Vec<String>,
}

/// A running emulation; stopped when dropped.
pub struct InwxEmulation {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl InwxEmulation {
    /// An account `user`/`pass`; with `totp_secret` (base32) it has two-factor
    /// authentication.
    pub fn start(user: &str, pass: &str, totp_secret: Option<&str>) -> Self {
        let state = Arc::new(Mutex::new(State {
            user: user.to_string(),
            pass: pass.to_string(),
            totp_secret: totp_secret.map(str::to_string),
            next_id: 1,
            ..State::default()
        }));
        let shared = state.clone();
        let server = HttpServer::start(move |request| handle(&shared, request));
        InwxEmulation { server, state }
    }

    /// The endpoint URL (the provider's `apiurl`).
    pub fn url(&self) -> String {
        format!("{}/jsonrpc/", self.server.url())
    }

    /// The inwx provider keys for this account and endpoint (with
    /// `sharedsecret` when the account has two-factor authentication).
    pub fn provider_keys(&self) -> BTreeMap<String, String> {
        let state = self.state.lock().unwrap();
        let mut keys = BTreeMap::from([
            ("handler".to_string(), "inwx".to_string()),
            ("user".to_string(), state.user.clone()),
            ("passwd".to_string(), state.pass.clone()),
            ("apiurl".to_string(), self.url()),
        ]);
        if let Some(secret) = &state.totp_secret {
            keys.insert("sharedsecret".to_string(), secret.clone());
        }
        keys
    }

    /// Adds a domain to the account's nameservers with an SOA and two NS records.
    pub fn add_domain(&self, domain: &str) {
        let mut state = self.state.lock().unwrap();
        state.domains.insert(domain.to_string(), Vec::new());
        // INWX's default SOA.
        let soa = "ns.inwx.de hostmaster.inwx.de 2024010101 10800 3600 604800 3600";
        for (rtype, content) in [("SOA", soa), ("NS", "ns.inwx.de"), ("NS", "ns2.inwx.de")] {
            insert(&mut state, domain, domain, rtype, content, 86400, 0);
        }
    }

    /// Removes the records at `name` of type `rtype` (as a user would in INWX's
    /// web interface).
    pub fn remove_records(&self, name: &str, rtype: &str) {
        let mut state = self.state.lock().unwrap();
        for records in state.domains.values_mut() {
            records.retain(|r| !(r.name == name && r.rtype == rtype));
        }
    }

    /// Adds a record (name absolute) to `domain`, unchecked (data that is
    /// already there, however it got there).
    pub fn add_record(&self, domain: &str, name: &str, rtype: &str, content: &str, prio: u16) {
        let mut state = self.state.lock().unwrap();
        insert(&mut state, domain, name, rtype, content, 300, prio);
    }

    /// Adds `records` (from zone text, see `zonefile::parse_zone_text`) to
    /// `domain` in INWX's content form: names without the final dot, MX and
    /// SRV priority in `prio`, SRV content `weight port target`, TXT as plain
    /// text. SOA records are left out: INWX keeps its own.
    pub fn add_records(&self, domain: &str, records: &[Record]) {
        for record in records {
            let (content, prio) = match &record.data {
                RData::Soa(_) => continue,
                RData::Mx {
                    preference,
                    exchange,
                } => (exchange.to_string(), *preference),
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => (format!("{weight} {port} {target}"), *priority),
                // A, AAAA, NS, CNAME, CAA (`flags tag "value"`), TLSA (hex),
                // TXT: their text form without a final dot.
                other => (other.to_string(), 0),
            };
            let rtype = record.record_type().to_string();
            let mut state = self.state.lock().unwrap();
            insert(
                &mut state,
                domain,
                record.name.as_str(),
                &rtype,
                &content,
                record.ttl,
                prio,
            );
        }
    }

    /// What INWX's name servers would serve for `name rtype`, in `dig +short`
    /// form, sorted: the emulation has no name server, so this renders its
    /// record store as `dig` prints records.
    pub fn served(&self, name: &str, rtype: &str) -> Vec<String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut lines: Vec<String> = self
            .records(&name, rtype)
            .into_iter()
            .map(|(content, prio)| dig_form(rtype, &content, prio))
            .collect();
        lines.sort();
        lines
    }

    /// The records at `name` of type `rtype`, as (content, prio), sorted.
    pub fn records(&self, name: &str, rtype: &str) -> Vec<(String, u16)> {
        let state = self.state.lock().unwrap();
        let mut found: Vec<(String, u16)> = state
            .domains
            .values()
            .flatten()
            .filter(|r| r.name == name && r.rtype == rtype)
            .map(|r| (r.content.clone(), r.prio))
            .collect();
        found.sort();
        found
    }

    /// The contents at `name` of type `rtype`, sorted.
    pub fn contents(&self, name: &str, rtype: &str) -> Vec<String> {
        self.records(name, rtype)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// The next call of `method` answers `code` instead of doing its work.
    pub fn fail_next(&self, method: &str, code: i64) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push_back((method.to_string(), code));
    }

    /// The methods called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The number of open sessions (logins not logged out).
    pub fn open_sessions(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }
}

fn insert(
    state: &mut State,
    domain: &str,
    name: &str,
    rtype: &str,
    content: &str,
    ttl: u32,
    prio: u16,
) {
    let id = state.next_id;
    state.next_id += 1;
    state
        .domains
        .get_mut(domain)
        .unwrap_or_else(|| panic!("no domain {domain} in the emulation"))
        .push(InwxRecord {
            id,
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            rtype: rtype.to_string(),
            content: content.to_string(),
            ttl,
            prio,
        });
}

/// A record's INWX content as `dig +short` prints it.
fn dig_form(rtype: &str, content: &str, prio: u16) -> String {
    match rtype {
        "AAAA" => content
            .parse::<std::net::Ipv6Addr>()
            .map_or_else(|_| content.to_string(), |a| a.to_string()),
        "NS" | "CNAME" => format!("{content}."),
        "SOA" => {
            let mut fields: Vec<String> = content.split_whitespace().map(str::to_string).collect();
            for name in fields.iter_mut().take(2) {
                name.push('.');
            }
            fields.join(" ")
        }
        "MX" => format!("{prio} {content}."),
        "SRV" => format!("{prio} {content}."),
        "TXT" => content
            .as_bytes()
            .chunks(255)
            .map(|chunk| {
                let text = String::from_utf8_lossy(chunk);
                format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => content.to_string(),
    }
}

fn answer(code: i64, msg: &str, res_data: Value) -> Response {
    let mut body = json!({ "code": code, "msg": msg });
    if !res_data.is_null() {
        body["resData"] = res_data;
    }
    Response::json(200, &body)
}

fn message(code: i64) -> &'static str {
    match code {
        1000 => "Command completed successfully",
        1500 => "Command completed successfully; ending session",
        2003 => "Required parameter missing",
        2200 => "Authentication error",
        2302 => "Object exists",
        2303 => "Object does not exist",
        2005 => "Parameter value syntax error",
        2308 => "Data management policy violation",
        2400 => "Command failed",
        2500 => "Command failed; server closing connection",
        2502 => "Session limit exceeded; server closing connection",
        _ => "Command failed",
    }
}

fn fail(code: i64) -> Response {
    answer(code, message(code), Value::Null)
}

fn ok(res_data: Value) -> Response {
    answer(1000, message(1000), res_data)
}

/// A refusal with INWX's `reason` field.
fn refuse(code: i64, reason: &str) -> Response {
    let body = json!({ "code": code, "msg": message(code), "reason": reason });
    Response::json(200, &body)
}

/// The CNAME rule (RFC 1034 §3.6.2): a CNAME shares its name with no other
/// data. The reason of a refusal, if `rtype` at `name` would break it.
fn cname_conflict(records: &[InwxRecord], name: &str, rtype: &str) -> Option<String> {
    let at_name = records.iter().filter(|r| r.name == name);
    if rtype == "CNAME" {
        at_name
            .clone()
            .any(|r| r.rtype != "CNAME")
            .then(|| format!("{name} has other records; a CNAME must be alone"))
    } else {
        at_name
            .clone()
            .any(|r| r.rtype == "CNAME")
            .then(|| format!("{name} has a CNAME record; no other record may be added to it"))
    }
}

/// One up on the serial of `domain`'s SOA, as INWX does on every change.
fn bump_serial(state: &mut State, domain: &str) {
    let Some(soa) = state
        .domains
        .get_mut(domain)
        .and_then(|records| records.iter_mut().find(|r| r.rtype == "SOA"))
    else {
        return;
    };
    let mut fields: Vec<String> = soa.content.split_whitespace().map(str::to_string).collect();
    if let Some(serial) = fields.get_mut(2)
        && let Ok(number) = serial.parse::<u64>()
    {
        *serial = (number + 1).to_string();
    }
    soa.content = fields.join(" ");
}

/// An SOA update's content over the old one: the primary and hostmaster
/// (and the timers, if given) from `new`, the serial kept (INWX counts it).
fn soa_update(old: &str, new: &str) -> Option<String> {
    let old: Vec<&str> = old.split_whitespace().collect();
    let new: Vec<&str> = new.split_whitespace().collect();
    if (new.len() != 3 && new.len() != 7) || old.len() != 7 {
        return None;
    }
    if new[2..].iter().any(|f| f.parse::<u32>().is_err()) {
        return None;
    }
    let timers = if new.len() == 7 { &new[3..] } else { &old[3..] };
    Some(format!(
        "{} {} {} {}",
        new[0],
        new[1],
        old[2],
        timers.join(" ")
    ))
}

/// The domain a record id belongs to.
fn domain_of(state: &State, id: u64) -> Option<String> {
    state
        .domains
        .iter()
        .find(|(_, records)| records.iter().any(|r| r.id == id))
        .map(|(domain, _)| domain.clone())
}

fn handle(state: &Mutex<State>, request: &Request) -> Response {
    if request.method != "POST" {
        return Response::text(405, "POST only");
    }
    let body = request.json();
    let Some(method) = body.get("method").and_then(Value::as_str) else {
        return Response::text(400, "not a JSON-RPC request");
    };
    let params = body.get("params").cloned().unwrap_or(json!({}));
    let mut state = state.lock().unwrap();
    state.calls.push(method.to_string());
    if let Some(position) = state.failures.iter().position(|(m, _)| m == method) {
        let (_, code) = state.failures.remove(position).unwrap_or_default();
        return fail(code);
    }
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |key: &str| params.get(key).and_then(Value::as_u64);

    if method == "account.login" {
        if text("user").as_deref() != Some(state.user.as_str())
            || text("pass").as_deref() != Some(state.pass.as_str())
        {
            return fail(2200);
        }
        state.next_session += 1;
        let cookie = format!("sess{:08}", state.next_session);
        let tfa = state.totp_secret.is_some();
        state.sessions.insert(cookie.clone(), !tfa);
        return ok(json!({
            "customerId": 4711,
            "accountId": 4712,
            "tfa": if tfa { "GOOGLE-AUTH" } else { "0" },
        }))
        .with_header(
            "Set-Cookie",
            &format!("domrobot={cookie}; path=/; HttpOnly"),
        );
    }

    let cookie = request
        .header("cookie")
        .and_then(|c| {
            c.split(';')
                .map(str::trim)
                .find_map(|part| part.strip_prefix("domrobot="))
        })
        .map(str::to_string);
    let Some(cookie) = cookie.filter(|c| state.sessions.contains_key(c)) else {
        return fail(2200);
    };
    match method {
        "account.unlock" => {
            let Some(tan) = text("tan") else {
                return fail(2003);
            };
            let valid = state
                .totp_secret
                .as_deref()
                .is_some_and(|secret| tan_is_valid(secret, &tan));
            if !valid {
                return fail(2200);
            }
            state.sessions.insert(cookie, true);
            return ok(Value::Null);
        }
        "account.logout" => {
            state.sessions.remove(&cookie);
            return answer(1500, message(1500), Value::Null);
        }
        _ => {}
    }
    if state.sessions.get(&cookie) != Some(&true) {
        return fail(2200);
    }
    match method {
        "nameserver.info" => {
            let Some(domain) = text("domain") else {
                return fail(2003);
            };
            let Some(records) = state.domains.get(&domain) else {
                return fail(2303);
            };
            let name = text("name").map(|n| absolute(&n, &domain));
            let rtype = text("type");
            let listed: Vec<Value> = records
                .iter()
                .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
                .filter(|r| rtype.as_ref().is_none_or(|t| *t == r.rtype))
                .map(|r| {
                    json!({"id": r.id, "name": r.name, "type": r.rtype, "content": r.content,
                           "ttl": r.ttl, "prio": r.prio})
                })
                .collect();
            ok(json!({"roId": 1, "domain": domain, "type": "MASTER",
                      "count": listed.len(), "record": listed}))
        }
        "nameserver.createRecord" => {
            let (Some(domain), Some(rtype), Some(content)) =
                (text("domain"), text("type"), text("content"))
            else {
                return fail(2003);
            };
            if !state.domains.contains_key(&domain) {
                return fail(2303);
            }
            let name = absolute(&text("name").unwrap_or_default(), &domain);
            let prio = number("prio").unwrap_or(0) as u16;
            let exists = state.domains[&domain].iter().any(|r| {
                r.name == name && r.rtype == rtype && r.content == content && r.prio == prio
            });
            if exists {
                return fail(2302);
            }
            if let Some(reason) = cname_conflict(&state.domains[&domain], &name, &rtype) {
                return refuse(2308, &reason);
            }
            let ttl = number("ttl").unwrap_or(3600) as u32;
            insert(&mut state, &domain, &name, &rtype, &content, ttl, prio);
            let id = state.next_id - 1;
            bump_serial(&mut state, &domain);
            ok(json!({ "id": id }))
        }
        "nameserver.updateRecord" => {
            let Some(id) = number("id") else {
                return fail(2003);
            };
            let (content, ttl, prio) = (text("content"), number("ttl"), number("prio"));
            let Some(domain) = domain_of(&state, id) else {
                return fail(2303);
            };
            let Some(record) = state
                .domains
                .get_mut(&domain)
                .and_then(|records| records.iter_mut().find(|r| r.id == id))
            else {
                return fail(2303);
            };
            if let Some(content) = content {
                if record.rtype == "SOA" {
                    let Some(updated) = soa_update(&record.content, &content) else {
                        return fail(2005);
                    };
                    record.content = updated;
                } else {
                    record.content = content;
                }
            }
            if let Some(ttl) = ttl {
                record.ttl = ttl as u32;
            }
            if let Some(prio) = prio {
                record.prio = prio as u16;
            }
            bump_serial(&mut state, &domain);
            ok(Value::Null)
        }
        "nameserver.deleteRecord" => {
            let Some(id) = number("id") else {
                return fail(2003);
            };
            let Some(domain) = domain_of(&state, id) else {
                return fail(2303);
            };
            if let Some(records) = state.domains.get_mut(&domain) {
                records.retain(|r| r.id != id);
            }
            bump_serial(&mut state, &domain);
            ok(Value::Null)
        }
        _ => fail(2400),
    }
}

/// A record name as the API takes it (relative to the domain, or absolute)
/// made absolute.
fn absolute(name: &str, domain: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name == "@" {
        domain.to_string()
    } else if name == domain || name.ends_with(&format!(".{domain}")) {
        name
    } else {
        format!("{name}.{domain}")
    }
}

/// RFC 6238 check with one step of clock skew either way.
fn tan_is_valid(secret: &str, tan: &str) -> bool {
    let Ok(bytes) = totp_rs::Secret::try_from_base32(secret) else {
        return false;
    };
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(bytes)
        .build_noncompliant();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.check(tan, now).is_some()
}
