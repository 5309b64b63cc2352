//! etcd's v3 API through its JSON gateway (`/v3/kv/...`, `/v3/lease/...`) over
//! the HTTP client the program already uses (docs/cluster.md, "Why the v3 JSON
//! gateway"). Endpoints are tried in order: one that cannot be reached, or
//! that answers without a leader, gives its turn to the next.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::store::{Lease, Op, SharedStore, StoreError};
use crate::secret::Secret;

/// How long one request may take; a member without quorum answers within
/// etcd's own request timeout (7 s by default) or not at all.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The settings `[cdm]` gives for the store.
#[derive(Clone, Debug)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub cacert: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

pub(crate) struct Etcd {
    http: reqwest::Client,
    endpoints: Vec<String>,
    prefix: String,
    user: Option<(String, Secret)>,
    token: Mutex<Option<String>>,
    /// The endpoint that answered last: tried first.
    good: Mutex<usize>,
}

fn b64(text: &[u8]) -> String {
    STANDARD.encode(text)
}

/// A protobuf int64 in JSON: a string, or a number.
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Why a request got no answer, in a few words.
fn why(error: &reqwest::Error) -> String {
    use crate::http::Failure;
    match crate::http::classify(error) {
        Failure::Refused => "connection refused (is etcd running there?)".into(),
        Failure::Dns(e) => format!("the name does not resolve: {e}"),
        Failure::Tls(e) => format!("TLS: {e} (check storecacert, storecert, storekey)"),
        Failure::Timeout => "timed out".into(),
        Failure::Other(e) => e,
    }
}

/// The key right after every key starting with `prefix` (etcd's range end).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// Builds the client (TLS material read now) and logs in when a user is set.
    ///
    /// # Errors
    /// When a TLS file cannot be read or used, or no endpoint accepts the login.
    pub(crate) async fn connect(settings: &EtcdSettings) -> Result<Etcd, StoreError> {
        crate::http::install_crypto_provider();
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path).map_err(|e| StoreError(format!("{what} {}: {e}", path.display())))
        };
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("cryptdomainmgr/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.cacert {
            let pem = read(path, "storecacert")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                StoreError(format!(
                    "storecacert {}: {}",
                    path.display(),
                    crate::http::describe(&e)
                ))
            })?;
            builder = builder.tls_certs_only(certs);
        }
        match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "storecert")?;
                pem.push(b'\n');
                pem.extend(read(key, "storekey")?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    StoreError(format!(
                        "storecert {} / storekey {}: {}",
                        cert.display(),
                        key.display(),
                        crate::http::describe(&e)
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(StoreError(
                    "storecert and storekey go together (TLS client authentication)".into(),
                ));
            }
        }
        let http = builder
            .build()
            .map_err(|e| StoreError(format!("etcd client: {}", crate::http::describe(&e))))?;
        let etcd = Etcd {
            http,
            endpoints: settings
                .endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            prefix: settings.prefix.clone(),
            user: settings
                .user
                .clone()
                .map(|u| (u, settings.password.clone().unwrap_or(Secret::new("")))),
            token: Mutex::new(None),
            good: Mutex::new(0),
        };
        etcd.login().await?;
        Ok(etcd)
    }

    async fn login(&self) -> Result<(), StoreError> {
        let Some((user, password)) = &self.user else {
            return Ok(());
        };
        let body = json!({"name": user, "password": password.expose()});
        let answer = self
            .call_plain("/v3/auth/authenticate", &body, false)
            .await?;
        let token = answer["token"].as_str().map(str::to_string);
        if token.is_none() {
            return Err(StoreError(format!(
                "etcd: logging in as {user} gave no token"
            )));
        }
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token;
        Ok(())
    }

    fn key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// Calls `path` on the endpoints in turn; logs in again once when the
    /// token has expired.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, StoreError> {
        match self.call_plain(path, body, true).await {
            Err(e) if self.user.is_some() && e.0.contains("invalid auth token") => {
                self.login().await?;
                self.call_plain(path, body, true).await
            }
            other => other,
        }
    }

    async fn call_plain(&self, path: &str, body: &Value, auth: bool) -> Result<Value, StoreError> {
        let start = *self.good.lock().unwrap_or_else(|e| e.into_inner());
        let mut failures = Vec::new();
        for i in 0..self.endpoints.len() {
            let index = (start + i) % self.endpoints.len();
            let endpoint = &self.endpoints[index];
            let mut request = self.http.post(format!("{endpoint}{path}")).json(body);
            if auth
                && let Some(token) = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
            {
                request = request.header("Authorization", token);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    failures.push(format!("{endpoint}: {}", why(&e)));
                    continue;
                }
            };
            let status = response.status();
            let text = match response.text().await {
                Ok(text) => text,
                Err(e) => {
                    failures.push(format!("{endpoint}: {}", crate::http::describe(&e)));
                    continue;
                }
            };
            let value: Value = match serde_json::from_str(&text) {
                Ok(value) => value,
                Err(_) => {
                    failures.push(format!(
                        "{endpoint}: HTTP {status}, not etcd's JSON gateway: {}",
                        text.chars().take(120).collect::<String>()
                    ));
                    continue;
                }
            };
            let message = value
                .get("error")
                .or_else(|| value.get("message"))
                .and_then(Value::as_str)
                .filter(|_| !status.is_success() || value.get("code").is_some());
            if let Some(message) = message {
                // Without a leader this member cannot answer; another might.
                let retry = message.contains("timed out")
                    || message.contains("no leader")
                    || message.contains("leader changed")
                    || status.as_u16() == 503;
                let failure = format!("{endpoint}: {message}");
                if retry {
                    failures.push(failure);
                    continue;
                }
                return Err(StoreError(format!("etcd {failure}")));
            }
            *self.good.lock().unwrap_or_else(|e| e.into_inner()) = index;
            return Ok(value);
        }
        let quorum = failures
            .iter()
            .any(|f| f.contains("timed out") || f.contains("no leader"));
        Err(StoreError(format!(
            "etcd cannot be used{}: {}",
            if quorum {
                " (no quorum: too few members answer)"
            } else {
                ""
            },
            failures.join("; ")
        )))
    }

    fn kvs(&self, answer: &Value) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for kv in answer["kvs"].as_array().into_iter().flatten() {
            let key = kv["key"]
                .as_str()
                .and_then(|k| STANDARD.decode(k).ok())
                .unwrap_or_default();
            let value = kv["value"]
                .as_str()
                .and_then(|v| STANDARD.decode(v).ok())
                .unwrap_or_default();
            let key = String::from_utf8_lossy(&key);
            if let Some(rel) = key.strip_prefix(&self.prefix) {
                out.push((rel.to_string(), value));
            }
        }
        out
    }
}

#[async_trait]
impl SharedStore for Etcd {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let answer = self
            .call("/v3/kv/range", &json!({"key": b64(&self.key(key))}))
            .await?;
        Ok(self.kvs(&answer).into_iter().next().map(|(_, v)| v))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let start = self.key(prefix);
        let body = json!({"key": b64(&start), "range_end": b64(&range_end(&start))});
        let answer = self.call("/v3/kv/range", &body).await?;
        Ok(self.kvs(&answer))
    }

    async fn create(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let k = b64(&self.key(key));
        let body = json!({
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": b64(value)}}],
        });
        let answer = self.call("/v3/kv/txn", &body).await?;
        Ok(answer["succeeded"].as_bool() == Some(true))
    }

    async fn campaign(
        &self,
        key: &str,
        value: &[u8],
        ttl: u64,
    ) -> Result<Result<Lease, String>, StoreError> {
        let granted = self.call("/v3/lease/grant", &json!({"TTL": ttl})).await?;
        let Some(id) = int(&granted["ID"]) else {
            return Err(StoreError(format!("etcd granted no lease: {granted}")));
        };
        let k = b64(&self.key(key));
        let body = json!({
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": b64(value), "lease": id.to_string()}}],
            "failure": [{"request_range": {"key": k}}],
        });
        let answer = self.call("/v3/kv/txn", &body).await?;
        if answer["succeeded"].as_bool() == Some(true) {
            return Ok(Ok(Lease(id)));
        }
        let _ = self.revoke(Lease(id)).await;
        let holder = answer["responses"][0]["response_range"]["kvs"][0]["value"]
            .as_str()
            .and_then(|v| STANDARD.decode(v).ok())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|| "another node".into());
        Ok(Err(holder))
    }

    async fn lease(&self, renew: Option<Lease>, ttl: u64) -> Result<Lease, StoreError> {
        if let Some(lease) = renew {
            match self.keep_alive(lease).await {
                Ok(true) => return Ok(lease),
                Ok(false) => {}
                Err(e) if e.0.contains("lease not found") => {}
                Err(e) => return Err(e),
            }
        }
        let granted = self.call("/v3/lease/grant", &json!({"TTL": ttl})).await?;
        int(&granted["ID"])
            .map(Lease)
            .ok_or_else(|| StoreError(format!("etcd granted no lease: {granted}")))
    }

    async fn put_all(&self, puts: &[(String, Vec<u8>, Option<Lease>)]) -> Result<(), StoreError> {
        let success: Vec<Value> = puts
            .iter()
            .map(|(key, value, lease)| {
                let mut put = json!({"key": b64(&self.key(key)), "value": b64(value)});
                if let Some(lease) = lease {
                    put["lease"] = json!(lease.0.to_string());
                }
                json!({ "request_put": put })
            })
            .collect();
        self.call("/v3/kv/txn", &json!({ "success": success }))
            .await
            .map(|_| ())
    }

    async fn keep_alive(&self, lease: Lease) -> Result<bool, StoreError> {
        let answer = self
            .call("/v3/lease/keepalive", &json!({"ID": lease.0.to_string()}))
            .await?;
        Ok(int(&answer["result"]["TTL"]).is_some_and(|ttl| ttl > 0))
    }

    async fn revoke(&self, lease: Lease) -> Result<(), StoreError> {
        match self
            .call("/v3/lease/revoke", &json!({"ID": lease.0.to_string()}))
            .await
        {
            Err(e) if e.0.contains("lease not found") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn fenced(&self, guard: &str, lease: Lease, ops: &[Op]) -> Result<bool, StoreError> {
        let success: Vec<Value> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => {
                    json!({"request_put": {"key": b64(&self.key(key)), "value": b64(value)}})
                }
                Op::Delete { key } => {
                    json!({"request_delete_range": {"key": b64(&self.key(key))}})
                }
            })
            .collect();
        let body = json!({
            "compare": [{"key": b64(&self.key(guard)), "target": "LEASE", "result": "EQUAL", "lease": lease.0.to_string()}],
            "success": success,
        });
        let answer = self.call("/v3/kv/txn", &body).await?;
        Ok(answer["succeeded"].as_bool() == Some(true))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call("/v3/kv/deleterange", &json!({"key": b64(&self.key(key))}))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_is_the_next_prefix() {
        assert_eq!(range_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(range_end(&[b'a', 0xff]), b"b".to_vec());
    }
}
