//! A scripted ACME server for failures and attacks Pebble cannot produce: each
//! request is answered by a closure of the method, path and how often that path
//! was asked. Plain HTTP on a free loopback port (the client allows `http://`
//! only for tests on loopback).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// One request as the script sees it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// How often this path was asked before.
    pub n: usize,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub base: &'a str,
    pub body: &'a [u8],
}

/// Serves plain HTTP on a free loopback port, answering each request with
/// `script(method, path, n)` where `n` counts requests to that path from 0.
/// Returns the base URL and the total request count.
pub fn serve(
    script: impl Fn(&str, &str, usize, &str) -> Reply + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    serve_requests(move |r| script(r.method, r.path, r.n, r.base))
}

/// [`serve`] for scripts that read the request body too.
pub fn serve_requests(
    script: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let total = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let total2 = total.clone();
    let base2 = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut c = counts.lock().unwrap();
                let e = c.entry(path.clone()).or_insert(0usize);
                *e += 1;
                *e - 1
            };
            total2.fetch_add(1, Ordering::SeqCst);
            let (status, headers, body) = script(&Request {
                method: &method,
                path: &path,
                n,
                base: &base2,
                body: &body,
            });
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (base, total)
}

pub fn directory(base: &str) -> Reply {
    let doc = format!(
        r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/account","newOrder":"{base}/order","revokeCert":"{base}/revoke","keyChange":"{base}/key"}}"#
    );
    (200, vec![], doc.into_bytes())
}

pub fn nonce() -> Reply {
    (200, vec![("Replay-Nonce".into(), "abc".into())], vec![])
}

/// A client configuration for the scripted server at `url`.
pub fn config(
    url: String,
    dir: &std::path::Path,
    limits: cryptdomainmgr::acme::Limits,
) -> cryptdomainmgr::acme::AcmeConfig {
    cryptdomainmgr::acme::AcmeConfig {
        ca: url,
        email: None,
        eab: None,
        cacert: None,
        account_dir: dir.to_path_buf(),
        limits,
    }
}
