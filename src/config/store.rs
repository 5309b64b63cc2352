//! `[cdm]` keys of the shared store (docs/cluster.md): `store = local` (the
//! default) or `etcd` with its endpoints, TLS material, login, the key that
//! seals private material, and this node's name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::ini::{ConfigError, Span, Value};
use crate::cluster::ClusterConfig;
use crate::cluster::etcd::EtcdSettings;
use crate::secret::Secret;

pub(crate) const STORE_KEYS: &[&str] = &[
    "store",
    "storeendpoints",
    "storeprefix",
    "storecacert",
    "storecert",
    "storekey",
    "storeuser",
    "storepassword",
    "storesecretfile",
    "storeleasettl",
    "node",
    "nodetimeout",
    "nodettl",
];

pub(crate) const DEFAULT_PREFIX: &str = "/cryptdomainmgr/";
pub(crate) const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
pub(crate) const DEFAULT_LEASE_TTL: u64 = 10;
/// A node's registration lasts this long after its last run: a timer every
/// 15 minutes (spread by 5) can miss two runs before the node shows as not live.
pub(crate) const DEFAULT_NODE_TTL: Duration = Duration::from_secs(3600);

/// `None` for `store = local`; errors for an `etcd` store that lacks what it needs.
pub(crate) fn build(
    section: Option<&BTreeMap<String, Value>>,
    cdm_span: Option<&Span>,
    errors: &mut Vec<ConfigError>,
) -> Option<ClusterConfig> {
    let get = |key: &str| section.and_then(|s| s.get(key));
    let text = |key: &str| {
        get(key)
            .map(|v| v.text.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    match get("store").map(|v| (v.text.trim().to_ascii_lowercase(), v)) {
        None => return None,
        Some((kind, _)) if kind == "local" || kind.is_empty() => return None,
        Some((kind, _)) if kind == "etcd" => {}
        Some((kind, v)) => {
            errors.push(ConfigError::new(
                &v.span,
                format!("store \"{kind}\" is not known; local (the default) or etcd"),
            ));
            return None;
        }
    }
    let span = get("store").map(|v| v.span.clone()).or(cdm_span.cloned());
    let mut missing = |key: &str, why: &str| {
        if let Some(span) = &span {
            errors.push(ConfigError::new(
                span,
                format!("store = etcd needs {key} ({why})"),
            ));
        }
    };
    let endpoints: Vec<String> = text("storeendpoints")
        .map(|t| {
            t.split([',', ' '])
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if endpoints.is_empty() {
        missing(
            "storeendpoints",
            "the etcd members' URLs, like https://10.0.0.1:2379",
        );
    }
    let mut bad = Vec::new();
    for endpoint in &endpoints {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bad.push(endpoint.clone());
        }
    }
    let secretfile = text("storesecretfile").map(PathBuf::from);
    if secretfile.is_none() {
        missing(
            "storesecretfile",
            "a file with 32 random bytes in base64, the same on every node: head -c 32 /dev/urandom | base64",
        );
    }
    let mut prefix = text("storeprefix").unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let node = text("node").unwrap_or_else(hostname);
    let nodetimeout = match get("nodetimeout") {
        Some(v) => match super::dkim::parse_drain(&v.text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("nodetimeout \"{}\" {e}", v.text.trim()),
                ));
                DEFAULT_NODE_TIMEOUT
            }
        },
        None => DEFAULT_NODE_TIMEOUT,
    };
    let nodettl = match get("nodettl") {
        Some(v) => match super::dkim::parse_drain(&v.text) {
            Ok(d) if d >= Duration::from_secs(2) => d,
            Ok(_) => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("nodettl \"{}\" is shorter than 2 seconds", v.text.trim()),
                ));
                DEFAULT_NODE_TTL
            }
            Err(e) => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!("nodettl \"{}\" {e}", v.text.trim()),
                ));
                DEFAULT_NODE_TTL
            }
        },
        None => DEFAULT_NODE_TTL,
    };
    let leasettl = match get("storeleasettl") {
        Some(v) => match v.text.trim().parse::<u64>() {
            Ok(n) if (2..=3600).contains(&n) => n,
            _ => {
                errors.push(ConfigError::new(
                    &v.span,
                    format!(
                        "storeleasettl \"{}\" is not a number of seconds from 2 to 3600",
                        v.text.trim()
                    ),
                ));
                DEFAULT_LEASE_TTL
            }
        },
        None => DEFAULT_LEASE_TTL,
    };
    if let (Some(v), false) = (get("storeendpoints"), bad.is_empty()) {
        errors.push(ConfigError::new(
            &v.span,
            format!(
                "storeendpoints: {} is not an http:// or https:// URL",
                bad.join(", ")
            ),
        ));
    }
    Some(ClusterConfig {
        etcd: EtcdSettings {
            endpoints,
            prefix,
            cacert: text("storecacert").map(PathBuf::from),
            cert: text("storecert").map(PathBuf::from),
            key: text("storekey").map(PathBuf::from),
            user: text("storeuser"),
            password: get("storepassword").map(|v| Secret::new(v.text.trim())),
        },
        secretfile: secretfile.unwrap_or_default(),
        node,
        nodetimeout,
        nodettl,
        leasettl,
    })
}

/// This host's name (the default `node`).
fn hostname() -> String {
    crate::sys::hostname().unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::super::model::build_text;
    use super::*;

    #[test]
    fn local_is_the_default_and_etcd_takes_its_keys() {
        assert!(build_text("c", "[cdm]\n").unwrap().cdm.cluster.is_none());
        assert!(
            build_text("c", "[cdm]\nstore = local\n")
                .unwrap()
                .cdm
                .cluster
                .is_none()
        );
        let config = build_text(
            "c",
            "[cdm]\nstore = etcd\nstoreendpoints = https://a:2379, https://b:2379\nstoresecretfile = /k\n\
             storeprefix = /x\nnode = web1\nnodetimeout = 36h\nstoreuser = u\nstorepassword = sentinel-pw\n",
        )
        .unwrap();
        let cluster = config.cdm.cluster.unwrap();
        assert_eq!(
            cluster.etcd.endpoints,
            vec!["https://a:2379".to_string(), "https://b:2379".to_string()]
        );
        assert_eq!(cluster.etcd.prefix, "/x/");
        assert_eq!(cluster.node, "web1");
        assert_eq!(cluster.nodetimeout, Duration::from_secs(36 * 3600));
        assert_eq!(cluster.leasettl, DEFAULT_LEASE_TTL);
        assert_eq!(cluster.nodettl, DEFAULT_NODE_TTL);
        assert_eq!(format!("{:?}", cluster.etcd.password), "Some(***)");
        let shown = crate::cluster::render_settings(&cluster);
        assert!(
            shown.contains("storeendpoints = https://a:2379, https://b:2379"),
            "{shown}"
        );
        assert!(shown.contains("storepassword = ***"), "{shown}");
        assert!(!shown.contains("sentinel-pw"), "{shown}");
    }

    fn refused(text: &str) -> Vec<String> {
        match build_text("c", text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(errors) => errors,
        }
    }

    #[test]
    fn an_incomplete_or_wrong_store_is_a_configuration_error_with_its_line() {
        let errors = refused("[cdm]\nstore = etcd\n");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("c:2:") && e.contains("storeendpoints")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("storesecretfile")),
            "{errors:?}"
        );
        let errors = refused("[cdm]\nstore = consul\n");
        assert!(
            errors[0].contains("store \"consul\" is not known"),
            "{errors:?}"
        );
        let errors = refused(
            "[cdm]\nstore = etcd\nstoreendpoints = 10.0.0.1:2379\nstoresecretfile = /k\nstoreleasettl = 0\nnodettl = 1s\n",
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("c:3:") && e.contains("not an http:// or https:// URL")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("c:5:") && e.contains("storeleasettl")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("c:6:") && e.contains("nodettl")),
            "{errors:?}"
        );
    }
}
