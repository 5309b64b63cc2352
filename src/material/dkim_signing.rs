//! The signing configuration written on DKIM rollover, so the mail server signs
//! with the key just installed under its new selector. Each key has its own file
//! (`keylocation/SELECTOR.key`) and the configuration names it with its
//! selector, so a signer that has not reloaded yet still finds the key of the
//! selector it signs with:
//!
//! - rspamd: `dkim_signing.conf` rendered from a template with `{{ keyfile }}`
//!   and `{{ keyselector }}` (the original's placeholders, Jinja spelling);
//! - OpenDKIM: a KeyTable (`SELECTOR._domainkey.DOMAIN DOMAIN:SELECTOR:KEYFILE`)
//!   and a SigningTable (`DOMAIN SELECTOR._domainkey.DOMAIN`), both plain
//!   `file:` data sets as `opendkim.conf(5)` describes them.
//!
//! Pure text in, text out.

use std::path::Path;

use crate::dns::record::Name;

/// The built-in rspamd template: the settings the original wrote (one key for
/// every signing domain, alias senders signed too).
pub(crate) const RSPAMD_TEMPLATE: &str = "\
# rspamd DKIM signing (local.d/dkim_signing.conf), written by cryptdomainmgr
# on rollover; edits here are replaced by the next rollover.
path = \"{{ keyfile }}\";
selector = \"{{ keyselector }}\";
# Sign with this key for the domain of the From header itself, not its eSLD.
use_esld = false;
# Sign mail sent from alias addresses too.
allow_username_mismatch = true;
";

/// What a template may name.
pub(crate) struct TemplateValues<'a> {
    /// The installed key of this selector: `keylocation/SELECTOR.key`.
    pub keyfile: &'a Path,
    pub keyselector: &'a str,
    pub keylocation: &'a Path,
}

/// Renders `template`: each `{{ name }}` (spaces inside the braces optional)
/// becomes its value.
///
/// # Errors
/// An unknown placeholder, an unclosed `{{`, or a value that cannot go into a
/// quoted configuration string (a quote, backslash or control character).
pub(crate) fn render_template(
    template: &str,
    values: &TemplateValues<'_>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a \"{{\" is not closed by \"}}\"".to_string())?;
        let name = after[..end].trim();
        let value = match name {
            "keyfile" => path_text(values.keyfile)?,
            "keyselector" => values.keyselector.to_string(),
            "keylocation" => path_text(values.keylocation)?,
            other => {
                return Err(format!(
                    "unknown placeholder {{{{ {other} }}}} (known: keyfile, keyselector, keylocation)"
                ));
            }
        };
        if value
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(format!(
                "the value of {{{{ {name} }}}} has a quote, backslash or control character"
            ));
        }
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn path_text(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// One signing domain of an OpenDKIM table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenDkimEntry<'a> {
    pub domain: &'a Name,
    pub selector: &'a str,
    pub key_file: &'a Path,
}

const OPENDKIM_HEADER: &str =
    "# Written by cryptdomainmgr on rollover; edits here are replaced by the next rollover.\n";

/// The KeyTable: one key name per domain and selector.
///
/// # Errors
/// When a key path is not UTF-8 or holds whitespace or `:` (the table's separators).
pub(crate) fn opendkim_key_table(entries: &[OpenDkimEntry<'_>]) -> Result<String, String> {
    let mut out = OPENDKIM_HEADER.to_string();
    for e in entries {
        let file = path_text(e.key_file)?;
        if file
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '#')
        {
            return Err(format!(
                "OpenDKIM cannot name the key file {file}: it holds whitespace, ':' or '#'"
            ));
        }
        out.push_str(&format!(
            "{sel}._domainkey.{dom} {dom}:{sel}:{file}\n",
            sel = e.selector,
            dom = e.domain
        ));
    }
    Ok(out)
}

/// The SigningTable: mail from each domain is signed with that domain's key.
pub(crate) fn opendkim_signing_table(entries: &[OpenDkimEntry<'_>]) -> String {
    let mut out = OPENDKIM_HEADER.to_string();
    for e in entries {
        out.push_str(&format!(
            "{dom} {sel}._domainkey.{dom}\n",
            sel = e.selector,
            dom = e.domain
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(keyfile: &'a Path) -> TemplateValues<'a> {
        TemplateValues {
            keyfile,
            keyselector: "mail_1700000000",
            keylocation: Path::new("/var/lib/rspamd/dkim"),
        }
    }

    #[test]
    fn the_builtin_template_names_key_and_selector() {
        let keyfile = Path::new("/var/lib/rspamd/dkim/mail_1700000000.key");
        let conf = render_template(RSPAMD_TEMPLATE, &values(keyfile)).unwrap();
        assert!(conf.contains("path = \"/var/lib/rspamd/dkim/mail_1700000000.key\";\n"));
        assert!(conf.contains("selector = \"mail_1700000000\";\n"));
        assert!(!conf.contains("{{"));
    }

    #[test]
    fn placeholders_with_any_spacing_and_errors() {
        let keyfile = Path::new("/k/dkim.key");
        assert_eq!(
            render_template(
                "{{keyselector}} {{  keyfile }} {{keylocation }}",
                &values(keyfile)
            )
            .unwrap(),
            "mail_1700000000 /k/dkim.key /var/lib/rspamd/dkim"
        );
        assert!(
            render_template("{{ domain }}", &values(keyfile))
                .unwrap_err()
                .contains("unknown placeholder {{ domain }}")
        );
        assert!(render_template("{{ keyfile", &values(keyfile)).is_err());
        assert!(render_template("{{ keyfile }}", &values(Path::new("/a\"b"))).is_err());
    }

    #[test]
    fn opendkim_tables() {
        let a = Name::parse("example.com").unwrap();
        let b = Name::parse("example.org").unwrap();
        let key = Path::new("/etc/dkimkeys/dkim.key");
        let entries = [
            OpenDkimEntry {
                domain: &a,
                selector: "mail_1",
                key_file: key,
            },
            OpenDkimEntry {
                domain: &b,
                selector: "mail_1",
                key_file: key,
            },
        ];
        let kt = opendkim_key_table(&entries).unwrap();
        assert!(kt.contains(
            "\nmail_1._domainkey.example.com example.com:mail_1:/etc/dkimkeys/dkim.key\n"
        ));
        assert!(kt.contains("\nmail_1._domainkey.example.org example.org:mail_1:"));
        let st = opendkim_signing_table(&entries);
        assert!(st.ends_with("example.org mail_1._domainkey.example.org\n"));
        let bad = [OpenDkimEntry {
            domain: &a,
            selector: "s",
            key_file: Path::new("/a b/k"),
        }];
        assert!(opendkim_key_table(&bad).is_err());
    }
}
