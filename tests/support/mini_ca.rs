//! A small ACME CA (RFC 8555) with ACME Renewal Information (RFC 9773): a test
//! stand-in, because no CA that can be installed here offers `renewalInfo`
//! (Debian's Pebble 2.4 has none).
//!
//! It speaks enough ACME for the client to complete real orders: directory,
//! nonces, account, order, one dns-01 authorization per name, challenge,
//! order polling, finalize, certificate download. It checks no JWS signature
//! and validates no challenge (the records still go through a real DNS server
//! in the tests). Certificates are issued by the `openssl` command line from a
//! CA key made for the test, for the ordered names, with an Authority Key
//! Identifier. The test scripts the `renewalInfo` answers and can make newOrder
//! reject `replaces`; every newOrder payload and every `renewalInfo` request is
//! recorded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::acme_script::{Reply, Request, serve_requests};

/// The `renewalInfo` answer for a certificate identifier.
pub type RenewalScript = Box<dyn Fn(&str) -> Reply + Send>;

/// What a newOrder request asked for.
#[derive(Clone, Debug)]
pub struct OrderRequest {
    pub names: Vec<String>,
    /// RFC 9773 `replaces`, as sent.
    pub replaces: Option<String>,
}

pub struct MiniCa {
    base: String,
    inner: Arc<Mutex<Inner>>,
    /// The CA's key and files, removed with it.
    _dir: tempfile::TempDir,
}

struct Inner {
    dir: PathBuf,
    orders: Vec<Order>,
    order_requests: Vec<OrderRequest>,
    renewal_requests: Vec<String>,
    renewal_info: RenewalScript,
    /// The answer to a newOrder that carries `replaces`, if it is rejected.
    reject_replaces: Option<Reply>,
    validity_days: i64,
    nonces: u64,
}

struct Order {
    names: Vec<String>,
    replaces: Option<String>,
    /// Per name: its dns-01 challenge was answered.
    answered: Vec<bool>,
    chain: Option<String>,
}

impl MiniCa {
    /// Makes the CA key and certificate with openssl and starts serving.
    /// `None` when openssl is missing outside CI.
    pub fn start() -> Option<MiniCa> {
        if !super::require("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for args in [
            "ecparam -name prime256v1 -genkey -noout -out ca.key",
            "req -x509 -new -key ca.key -subj /CN=mini-test-CA -days 3650 -out ca.pem",
        ] {
            super::openssl(dir.path(), &args.split(' ').collect::<Vec<_>>());
        }
        let inner = Arc::new(Mutex::new(Inner {
            dir: dir.path().to_path_buf(),
            orders: Vec::new(),
            order_requests: Vec::new(),
            renewal_requests: Vec::new(),
            renewal_info: Box::new(|_| status(404)),
            reject_replaces: None,
            validity_days: 90,
            nonces: 0,
        }));
        let shared = inner.clone();
        let (base, _) = serve_requests(move |request| {
            let mut inner = shared.lock().unwrap_or_else(|p| p.into_inner());
            inner.nonces += 1;
            let nonce = format!("nonce{}", inner.nonces);
            let (code, mut headers, body) = inner.answer(request);
            headers.push(("Replay-Nonce".into(), nonce));
            (code, headers, body)
        });
        Some(MiniCa {
            base,
            inner,
            _dir: dir,
        })
    }

    pub fn directory_url(&self) -> String {
        format!("{}/dir", self.base)
    }

    /// Answers `renewalInfo/<certID>` with `script(certID)` from now on.
    pub fn renewal_info(&self, script: impl Fn(&str) -> Reply + Send + 'static) {
        self.lock().renewal_info = Box::new(script);
    }

    /// Answers a newOrder that carries `replaces` with `reply` from now on.
    pub fn reject_replaces(&self, reply: Reply) {
        self.lock().reject_replaces = Some(reply);
    }

    /// Issues certificates valid for `days` from now on.
    pub fn validity_days(&self, days: i64) {
        self.lock().validity_days = days;
    }

    /// Every newOrder request so far, in order.
    pub fn order_requests(&self) -> Vec<OrderRequest> {
        self.lock().order_requests.clone()
    }

    /// The certificate identifier of every `renewalInfo` request so far.
    pub fn renewal_requests(&self) -> Vec<String> {
        self.lock().renewal_requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A `renewalInfo` answer with the window `start`..`end` and, if given,
/// `Retry-After: retry_after` (seconds).
pub fn window(
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    retry_after: Option<u64>,
) -> Reply {
    let body = json!({"suggestedWindow": {"start": start.to_rfc3339(), "end": end.to_rfc3339()}});
    let mut headers = vec![("Content-Type".into(), "application/json".into())];
    if let Some(seconds) = retry_after {
        headers.push(("Retry-After".into(), seconds.to_string()));
    }
    (200, headers, body.to_string().into_bytes())
}

/// An error answer: HTTP `code` with a problem document.
pub fn status(code: u16) -> Reply {
    let kind = if code >= 500 {
        "serverInternal"
    } else {
        "malformed"
    };
    problem(code, kind, &format!("scripted HTTP {code}"))
}

/// An ACME problem document (RFC 8555 §6.7) of type `urn:ietf:params:acme:error:<kind>`.
pub fn problem(code: u16, kind: &str, detail: &str) -> Reply {
    let body = json!({
        "type": format!("urn:ietf:params:acme:error:{kind}"),
        "detail": detail,
        "status": code,
    });
    (
        code,
        vec![("Content-Type".into(), "application/problem+json".into())],
        body.to_string().into_bytes(),
    )
}

fn reply(code: u16, mut headers: Vec<(String, String)>, body: &Value) -> Reply {
    headers.push(("Content-Type".into(), "application/json".into()));
    (code, headers, body.to_string().into_bytes())
}

/// The JWS payload of a request body (base64url JSON); `Null` for POST-as-GET.
fn payload(body: &[u8]) -> Value {
    let jws: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let encoded = jws.get("payload").and_then(Value::as_str).unwrap_or("");
    URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

impl Inner {
    fn answer(&mut self, r: &Request) -> Reply {
        let base = r.base;
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let index = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
        match (r.method, parts.as_slice()) {
            ("GET", ["dir"]) => reply(
                200,
                vec![],
                &json!({
                    "newNonce": format!("{base}/nonce"),
                    "newAccount": format!("{base}/account"),
                    "newOrder": format!("{base}/order"),
                    "revokeCert": format!("{base}/revoke"),
                    "keyChange": format!("{base}/key"),
                    "renewalInfo": format!("{base}/renewal-info"),
                }),
            ),
            (_, ["nonce"]) => (200, vec![], vec![]),
            ("POST", ["account"]) => reply(
                201,
                vec![("Location".into(), format!("{base}/account/1"))],
                &json!({"status": "valid"}),
            ),
            ("POST", ["order"]) => self.new_order(base, &payload(r.body)),
            ("POST", ["order", _]) => match index(1) {
                Some(k) if k < self.orders.len() => reply(200, vec![], &self.order_json(base, k)),
                _ => problem(404, "malformed", "no such order"),
            },
            ("POST", ["authz", _, _]) => match (index(1), index(2)) {
                (Some(k), Some(i)) if self.has(k, i) => {
                    reply(200, vec![], &self.authz_json(base, k, i))
                }
                _ => problem(404, "malformed", "no such authorization"),
            },
            ("POST", ["chall", _, _]) => match (index(1), index(2)) {
                (Some(k), Some(i)) if self.has(k, i) => {
                    self.orders[k].answered[i] = true;
                    reply(200, vec![], &self.challenge_json(base, k, i))
                }
                _ => problem(404, "malformed", "no such challenge"),
            },
            ("POST", ["finalize", _]) => match index(1) {
                Some(k) if k < self.orders.len() => self.finalize(base, k, &payload(r.body)),
                _ => problem(404, "malformed", "no such order"),
            },
            ("POST", ["cert", _]) => match index(1).and_then(|k| self.orders.get(k)?.chain.clone())
            {
                Some(chain) => (
                    200,
                    vec![(
                        "Content-Type".into(),
                        "application/pem-certificate-chain".into(),
                    )],
                    chain.into_bytes(),
                ),
                None => problem(404, "malformed", "no such certificate"),
            },
            ("GET", ["renewal-info", id]) => {
                self.renewal_requests.push(id.to_string());
                (self.renewal_info)(id)
            }
            _ => problem(404, "malformed", "not served by this CA"),
        }
    }

    fn has(&self, k: usize, i: usize) -> bool {
        self.orders.get(k).is_some_and(|o| i < o.names.len())
    }

    fn new_order(&mut self, base: &str, payload: &Value) -> Reply {
        let names: Vec<String> = payload["identifiers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id["value"].as_str().map(str::to_string))
            .collect();
        let replaces = payload["replaces"].as_str().map(str::to_string);
        self.order_requests.push(OrderRequest {
            names: names.clone(),
            replaces: replaces.clone(),
        });
        if replaces.is_some()
            && let Some(rejection) = &self.reject_replaces
        {
            return rejection.clone();
        }
        if names.is_empty() {
            return problem(400, "malformed", "no identifiers");
        }
        let k = self.orders.len();
        self.orders.push(Order {
            answered: vec![false; names.len()],
            names,
            replaces,
            chain: None,
        });
        reply(
            201,
            vec![("Location".into(), format!("{base}/order/{k}"))],
            &self.order_json(base, k),
        )
    }

    fn order_json(&self, base: &str, k: usize) -> Value {
        let order = &self.orders[k];
        let status = if order.chain.is_some() {
            "valid"
        } else if order.answered.iter().all(|a| *a) {
            "ready"
        } else {
            "pending"
        };
        let mut doc = json!({
            "status": status,
            "identifiers": order.names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>(),
            "authorizations": (0..order.names.len()).map(|i| format!("{base}/authz/{k}/{i}")).collect::<Vec<_>>(),
            "finalize": format!("{base}/finalize/{k}"),
        });
        // RFC 9773 §5: an accepted `replaces` is reflected in the order.
        if let Some(replaces) = &order.replaces {
            doc["replaces"] = json!(replaces);
        }
        if order.chain.is_some() {
            doc["certificate"] = json!(format!("{base}/cert/{k}"));
        }
        doc
    }

    fn challenge_json(&self, base: &str, k: usize, i: usize) -> Value {
        let status = if self.orders[k].answered[i] {
            "valid"
        } else {
            "pending"
        };
        json!({
            "type": "dns-01",
            "url": format!("{base}/chall/{k}/{i}"),
            "token": format!("token{k}x{i}{}", "A".repeat(32)),
            "status": status,
        })
    }

    fn authz_json(&self, base: &str, k: usize, i: usize) -> Value {
        let challenge = self.challenge_json(base, k, i);
        json!({
            "identifier": {"type": "dns", "value": self.orders[k].names[i]},
            "status": challenge["status"],
            "challenges": [challenge],
        })
    }

    /// Issues the certificate for the order's names from the CSR in `payload`.
    fn finalize(&mut self, base: &str, k: usize, payload: &Value) -> Reply {
        if !self.orders[k].answered.iter().all(|a| *a) {
            return problem(403, "orderNotReady", "the challenges are not answered");
        }
        let csr = match payload["csr"].as_str().map(|c| URL_SAFE_NO_PAD.decode(c)) {
            Some(Ok(csr)) => csr,
            _ => return problem(400, "badCSR", "no base64url csr"),
        };
        match self.issue(k, &csr) {
            Ok(chain) => {
                self.orders[k].chain = Some(chain);
                reply(200, vec![], &self.order_json(base, k))
            }
            Err(e) => problem(400, "badCSR", &e),
        }
    }

    /// Signs `csr` with openssl: SANs of order `k`'s names, Authority Key
    /// Identifier, `validity_days`. Serials have their high bit set, so their
    /// DER encoding starts with a zero byte, which the RFC 9773 certificate
    /// identifier includes.
    fn issue(&self, k: usize, csr: &[u8]) -> Result<String, String> {
        let file = |name: &str| self.dir.join(format!("{name}-{k}"));
        std::fs::write(file("csr"), csr).map_err(|e| e.to_string())?;
        let sans: Vec<String> = self.orders[k]
            .names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .collect();
        let extensions = format!(
            "subjectAltName = {}\nauthorityKeyIdentifier = keyid\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
            sans.join(", ")
        );
        std::fs::write(file("ext"), extensions).map_err(|e| e.to_string())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let serial = format!("0x9a{:016x}{k:04x}", nanos as u64);
        let out = std::process::Command::new("openssl")
            .args(["x509", "-req", "-inform", "DER", "-in"])
            .arg(file("csr"))
            .args(["-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", &serial])
            .args(["-days", &self.validity_days.to_string(), "-extfile"])
            .arg(file("ext"))
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let leaf = String::from_utf8_lossy(&out.stdout).into_owned();
        let ca = std::fs::read_to_string(self.dir.join("ca.pem")).map_err(|e| e.to_string())?;
        Ok(leaf + &ca)
    }
}

/// The RFC 9773 §4.1 identifier of the certificate in `pem`, computed with
/// the openssl command line: base64url of the Authority Key Identifier's
/// keyIdentifier, a dot, base64url of the serial's DER content bytes.
pub fn cert_id_by_openssl(pem: &Path) -> String {
    let out = super::openssl(
        Path::new("."),
        &[
            "x509",
            "-in",
            &pem.display().to_string(),
            "-noout",
            "-ext",
            "authorityKeyIdentifier",
            "-serial",
        ],
    );
    let mut lines = out.lines().map(str::trim);
    let keyid = lines
        .by_ref()
        .skip_while(|l| !l.starts_with("X509v3 Authority Key Identifier"))
        .nth(1)
        .expect("an Authority Key Identifier")
        .trim_start_matches("keyid:")
        .to_string();
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .expect("a serial")
        .trim()
        .to_string();
    let mut serial = if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial
    };
    // A DER INTEGER whose first byte has the high bit set gets a leading zero.
    if u8::from_str_radix(&serial[..2], 16).expect("hex serial") >= 0x80 {
        serial.insert_str(0, "00");
    }
    let bytes = |hex: &str| -> Vec<u8> {
        let hex: String = hex.chars().filter(|c| *c != ':').collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    };
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(bytes(&keyid)),
        URL_SAFE_NO_PAD.encode(bytes(&serial))
    )
}
