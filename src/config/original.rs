//! The Python original's keys, sections and `dehydrated` flags that have no
//! equivalent here, each with what to write instead, so that its
//! configuration files either work or say exactly what to change.
//! (`docs/migrating.md` lists the same.)

/// What to write instead of a key the original knew, for the warning that
/// says the key is ignored.
pub(crate) fn key_hint(module: &str, key: &str) -> Option<&'static str> {
    Some(match (module, key) {
        ("service", "container" | "dirint" | "dirext" | "dockersock") => {
            "the original asked docker for traefik's directory; write configdir = DIR, the directory of traefik's file provider (--providers.file.directory) as this host sees it, e.g. configdir = /srv/traefik/configuration"
        }
        ("service", "depends") | ("cdm", "depends") => {
            "the order is fixed: records, then certificates, DKIM keys and DH parameters, then the services that use them (their cert, dkim and dhparam keys)"
        }
        ("cdm", "cert" | "dkim" | "dhparam" | "domain" | "service") => {
            "every configured section is handled; to leave one out, remove it"
        }
        ("cert", "certname" | "source") => {
            "the files always go to destination/NAME/ as cert.pem, chain.pem, fullchain.pem and privkey.pem"
        }
        ("cert", "conflictingservices") => {
            "no service is stopped: the DNS-01 challenge needs no port; list services to reload in [service:NAME] sections"
        }
        ("dkim", "generator") => {
            "keys are made by the program itself; handler = rspamd writes rspamd's signing configuration"
        }
        ("domain", "certificate") => "write cert = NAME (the original's later spelling)",
        _ => return None,
    })
}

/// What to write instead of a module the original knew under another name.
pub(crate) fn module_hint(module: &str) -> Option<&'static str> {
    match module {
        "certificate" => Some("write [cert] and [cert:NAME] (the original's later spelling)"),
        _ => None,
    }
}

/// A `dehydrated` flag in `extraflags`: ignored with a note, or refused with
/// what to use instead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Harmless: what it asked for happens anyway (or does not apply).
    Ignored(&'static str),
    /// Refused: it asked for something configured elsewhere, or not done.
    Refused(&'static str),
}

/// The meaning here of a `dehydrated` flag other than `--staging`, `-x` and
/// `--force`; `None` for a flag `dehydrated` did not have either.
pub(crate) fn dehydrated_flag(flag: &str) -> Option<Flag> {
    use Flag::{Ignored, Refused};
    Some(match flag {
        "--full-chain" | "-fc" => {
            Ignored("fullchain.pem is always written next to cert.pem and chain.pem")
        }
        "--keep-going" | "-g" => Ignored(
            "each certificate is issued on its own; one that fails does not stop the others",
        ),
        "--accept-terms" => Ignored("the CA's terms are accepted when the account is made"),
        "--no-lock" | "-n" => Ignored("the program keeps its own lock in the state directory"),
        "--ipv4" | "-4" | "--ipv6" | "-6" => {
            Ignored("connections use whatever addresses the system resolves")
        }
        "--challenge" | "-t" => Ignored("the DNS-01 challenge is always used"),
        "--algo" | "-a" => Refused(
            "write keytype = rsa, ecdsa-p256 or ecdsa-p384 (and keysize = 2048, 3072 or 4096 for rsa) in [cert]",
        ),
        "--privkey" | "-p" => Refused("a new key is made for every certificate; drop the flag"),
        "--domain" | "-d" | "--alias" => Refused(
            "the names are the [domain:NAME] sections whose cert key lists this section, e.g. [domain:www.example.com] cert = web",
        ),
        "--out" | "-o" => Refused("write destination = DIR in [cert]; files go to DIR/NAME/"),
        "--ocsp" => Refused("OCSP must-staple is not requested; drop the flag"),
        "--preferred-chain" => Refused("the CA's default chain is used; drop the flag"),
        "--hook"
        | "-k"
        | "--config"
        | "-f"
        | "--lock-suffix"
        | "--renew-with-new-domains"
        | "--hsts" => Refused("dehydrated's own option, with no equivalent; drop the flag"),
        _ => return None,
    })
}

/// The message for a traefik service without `configdir`: what to write,
/// taking the directory from the original's `dirext` when it names one.
pub(crate) fn traefik_configdir_advice(
    section: &str,
    dirext: Option<&str>,
    docker_keys: bool,
) -> String {
    let base = format!(
        "[service:{section}] handler traefik needs configdir: the directory of traefik's file provider (--providers.file.directory) as this host sees it"
    );
    match dirext
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != "auto")
    {
        Some(dir) => format!("{base}; the original's dirext names it: write configdir = {dir}"),
        None if docker_keys => format!(
            "{base}; the original's container, dirint and dirext (a docker lookup) have no equivalent: write configdir = DIR, e.g. configdir = /srv/traefik/configuration for a volume mounted as /srv/traefik/configuration:/configuration"
        ),
        None => format!("{base}, e.g. configdir = /srv/traefik/configuration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dehydrated_flags_are_ignored_or_refused_with_a_replacement() {
        assert!(matches!(dehydrated_flag("-fc"), Some(Flag::Ignored(_))));
        assert!(
            matches!(dehydrated_flag("--algo"), Some(Flag::Refused(hint)) if hint.contains("keytype ="))
        );
        assert_eq!(dehydrated_flag("--frobnicate"), None);
    }

    #[test]
    fn traefik_advice_takes_dirext_when_it_is_a_directory() {
        let advice = traefik_configdir_advice("proxy", Some("/srv/t/conf"), true);
        assert!(
            advice.ends_with("write configdir = /srv/t/conf"),
            "{advice}"
        );
        let advice = traefik_configdir_advice("proxy", Some("auto"), true);
        assert!(advice.contains("container, dirint and dirext"), "{advice}");
    }
}
