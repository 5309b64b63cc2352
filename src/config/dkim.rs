//! `[dkim]` and `[dkim:NAME]` sections (docs/configuration.md): the key, where it goes on
//! rollover, which signing configuration is written, and how long the old
//! selector stays published. The domains of a key are every `[domain:X]` with
//! `dkim = auto:NAME` or `dkim.NAME = auto`.

use std::path::PathBuf;
use std::time::Duration;

use super::domain::Domain;
use super::ini::{ConfigError, Span};
use super::records::{Op, RecordKind};
use super::section::ModuleSection;
use crate::dns::record::Name;
use crate::material::dkim::{
    DkimKeyType, MAX_RSA_BITS, MIN_RSA_BITS, RECOMMENDED_RSA_BITS, valid_base_name,
};

/// The keys of `[dkim]` sections.
pub(crate) const KEYS: &[&str] = &[
    "handler",
    "keytype",
    "keysize",
    "keybasename",
    "keylocation",
    "keyname",
    "signingconfdestinationfile",
    "signingconftemplatefile",
    "dkimdrain",
    "rotatedays",
    "keyowner",
    "keygroup",
    "keytable",
    "signingtable",
    "signingconftemporaryfile",
];

pub(crate) const DEFAULT_KEY_LOCATION: &str = "/var/lib/rspamd/dkim";
pub(crate) const DEFAULT_KEY_NAME: &str = "dkim.key";
pub(crate) const DEFAULT_SIGNING_CONF: &str = "/etc/rspamd/local.d/dkim_signing.conf";
pub(crate) const DEFAULT_KEY_TABLE: &str = "/etc/opendkim/KeyTable";
pub(crate) const DEFAULT_SIGNING_TABLE: &str = "/etc/opendkim/SigningTable";
pub(crate) const DEFAULT_RSA_BITS: u32 = 2048;
pub(crate) const DEFAULT_ROTATE_DAYS: u32 = 180;
/// Mail signed with the old key may be queued and retried for days (RFC 5321
/// §4.5.4.1 suggests giving up after 4–5 days), so its record stays a week.
pub(crate) const DEFAULT_DRAIN: Duration = Duration::from_secs(7 * 86_400);

/// What rollover writes besides the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkimHandler {
    /// rspamd's `dkim_signing.conf`, rendered from a template.
    Rspamd {
        conf: PathBuf,
        template: Option<PathBuf>,
    },
    /// OpenDKIM's KeyTable and SigningTable.
    OpenDkim {
        key_table: PathBuf,
        signing_table: PathBuf,
    },
    /// The key file only.
    File,
}

impl DkimHandler {
    pub fn name(&self) -> &'static str {
        match self {
            DkimHandler::Rspamd { .. } => "rspamd",
            DkimHandler::OpenDkim { .. } => "opendkim",
            DkimHandler::File => "file",
        }
    }
}

/// Who the installed key belongs to when `keyowner` and `keygroup` are not set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwnership {
    /// `keyowner` or `keygroup` is set.
    Configured,
    /// The user the signer runs as (`_rspamd`, `opendkim`), found on this system.
    Signer,
    /// The key stays with the user running cryptdomainmgr, for this reason.
    Runner(String),
}

/// An account (user or group) by name and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub id: u32,
}

/// One DKIM key to keep.
#[derive(Clone, Debug)]
pub struct DkimSection {
    pub name: String,
    pub span: Option<Span>,
    pub handler: DkimHandler,
    pub key_type: DkimKeyType,
    /// Selector prefix (lower-case): selectors are `BASE_UNIXTIME`.
    pub key_base_name: String,
    /// Rollover installs each key as `key_location/SELECTOR.key` and points
    /// the link `key_location/key_name` at the current one.
    pub key_location: PathBuf,
    pub key_name: String,
    /// Owner and group of the installed key (`keyowner`, `keygroup`, or the
    /// signer's user by default).
    pub owner: Option<Account>,
    pub group: Option<Account>,
    pub ownership: KeyOwnership,
    /// How long the old selector stays published after rollover.
    pub drain: Duration,
    /// Age after which a key is due for rotation.
    pub rotate_days: u32,
    /// The domains whose `dkim` key lists this section.
    pub domains: Vec<Name>,
}

impl DkimSection {
    /// `keylocation/keyname`: the link to the current key.
    pub fn key_path(&self) -> PathBuf {
        self.key_location.join(&self.key_name)
    }
}

/// The user a handler's signer runs as in Debian's packages, which create it.
pub(crate) fn signer_user(handler: &DkimHandler) -> Option<&'static str> {
    match handler {
        DkimHandler::Rspamd { .. } => Some("_rspamd"),
        DkimHandler::OpenDkim { .. } => Some("opendkim"),
        DkimHandler::File => None,
    }
}

/// Owner and group of the key when neither `keyowner` nor `keygroup` is set:
/// the signer's user and its group of the same name, so that the signer can
/// read the 0600 key, when that user exists and this program runs as root (only
/// root can give a file away); otherwise the running user.
fn default_ownership(
    handler: &DkimHandler,
    is_root: bool,
    lookup: impl Fn(&str, AccountKind) -> Result<Account, String>,
) -> (Option<Account>, Option<Account>, KeyOwnership) {
    let Some(user) = signer_user(handler) else {
        return (None, None, KeyOwnership::Runner("handler = file".into()));
    };
    let Ok(owner) = lookup(user, AccountKind::User) else {
        return (
            None,
            None,
            KeyOwnership::Runner(format!("there is no user {user} on this system")),
        );
    };
    if !is_root {
        return (
            None,
            None,
            KeyOwnership::Runner(format!("only root can hand the key to {user}")),
        );
    }
    let group = lookup(user, AccountKind::Group).ok();
    (Some(owner), group, KeyOwnership::Signer)
}

/// The DKIM sections as interpreted, for `--check`.
pub(crate) fn render(dkims: &[DkimSection]) -> String {
    let mut out = String::new();
    for dkim in dkims {
        out.push_str(&format!("\n[dkim:{}]\n", dkim.name));
        let domains: Vec<String> = dkim.domains.iter().map(ToString::to_string).collect();
        out.push_str(&format!("domains = {}\n", domains.join(", ")));
        out.push_str(&format!("handler = {}\n", dkim.handler.name()));
        match &dkim.handler {
            DkimHandler::Rspamd { conf, template } => {
                out.push_str(&format!(
                    "signingconfdestinationfile = {}\n",
                    conf.display()
                ));
                out.push_str(&format!(
                    "signingconftemplatefile = {}\n",
                    template
                        .as_ref()
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|| "built-in".into())
                ));
            }
            DkimHandler::OpenDkim {
                key_table,
                signing_table,
            } => {
                out.push_str(&format!("keytable = {}\n", key_table.display()));
                out.push_str(&format!("signingtable = {}\n", signing_table.display()));
            }
            DkimHandler::File => {}
        }
        out.push_str(&format!("key = {}\n", dkim.key_type));
        out.push_str(&format!("selector = {}_UNIXTIME\n", dkim.key_base_name));
        out.push_str(&format!(
            "installed as = {}/SELECTOR.key, one file per selector; {} links to the current one\n",
            dkim.key_location.display(),
            dkim.key_path().display()
        ));
        let (owner_note, group_note) = match &dkim.ownership {
            KeyOwnership::Configured => ("", ""),
            KeyOwnership::Signer => (
                "    # default: the user the signer runs as",
                "    # default: that user's group",
            ),
            KeyOwnership::Runner(why) => {
                out.push_str(&format!(
                    "keyowner = (not set: the key stays with the user running cryptdomainmgr; {why})\n"
                ));
                ("", "")
            }
        };
        if let Some(owner) = &dkim.owner {
            out.push_str(&format!(
                "keyowner = {} ({}){owner_note}\n",
                owner.name, owner.id
            ));
        }
        if let Some(group) = &dkim.group {
            out.push_str(&format!(
                "keygroup = {} ({}){group_note}\n",
                group.name, group.id
            ));
        }
        out.push_str(&format!("dkimdrain = {} s\n", dkim.drain.as_secs()));
        out.push_str(&format!("rotatedays = {}\n", dkim.rotate_days));
    }
    out
}

/// Builds the DKIM sections and links them with the domains.
pub(super) fn build_dkims(
    sections: &[ModuleSection],
    domains: &[Domain],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Vec<DkimSection> {
    let mut dkims: Vec<DkimSection> = sections
        .iter()
        .filter(|s| s.module == "dkim")
        .filter_map(|s| build_dkim(s, errors, warnings))
        .collect();
    for domain in domains {
        for (section, span) in listed_sections(domain) {
            match dkims
                .iter_mut()
                .find(|d| d.name.eq_ignore_ascii_case(&section))
            {
                Some(dkim) => {
                    if !dkim.domains.contains(&domain.name) {
                        dkim.domains.push(domain.name.clone());
                    }
                }
                None => errors.push(ConfigError::new(
                    &span,
                    format!(
                        "[domain:{}] dkim: there is no [dkim:{section}] section",
                        domain.name
                    ),
                )),
            }
        }
    }
    check_shared_files(&dkims, errors);
    for dkim in &dkims {
        if dkim.domains.is_empty()
            && let Some(span) = &dkim.span
        {
            warnings.push(ConfigError::new(
                span,
                format!(
                    "[dkim:{0}] is not listed by any domain (dkim = auto:{0}), so no record would vouch for it; it is not acted on",
                    dkim.name
                ),
            ));
        }
    }
    dkims.retain(|d| !d.domains.is_empty());
    dkims
}

/// The sections a domain's `dkim` keys list (set and add keys), minus those
/// its `dkim -=` keys take out.
fn listed_sections(domain: &Domain) -> Vec<(String, Span)> {
    let mut listed: Vec<(String, Span)> = Vec::new();
    for spanned in &domain.rules {
        let RecordKind::Dkim { sections, .. } = &spanned.rule.kind else {
            continue;
        };
        for section in sections {
            let known = listed
                .iter()
                .position(|(s, _)| s.eq_ignore_ascii_case(section));
            match (spanned.rule.op, known) {
                (Op::Set | Op::Add, None) => listed.push((section.clone(), spanned.span.clone())),
                (Op::Remove, Some(i)) => {
                    listed.remove(i);
                }
                _ => {}
            }
        }
    }
    listed
}

/// Two sections writing the same key link, key files or signing configuration
/// would overwrite each other's key on rollover.
fn check_shared_files(dkims: &[DkimSection], errors: &mut Vec<ConfigError>) {
    for (i, a) in dkims.iter().enumerate() {
        for b in &dkims[i + 1..] {
            let clash = if a.key_path() == b.key_path() {
                Some(format!("key file {}", a.key_path().display()))
            } else if a.key_location == b.key_location && a.key_base_name == b.key_base_name {
                Some(format!(
                    "key files {}/{}_UNIXTIME.key (set another keybasename)",
                    a.key_location.display(),
                    a.key_base_name
                ))
            } else {
                match (&a.handler, &b.handler) {
                    (DkimHandler::Rspamd { conf: x, .. }, DkimHandler::Rspamd { conf: y, .. })
                        if x == y =>
                    {
                        Some(format!("signing configuration {}", x.display()))
                    }
                    _ => None,
                }
            };
            if let (Some(what), Some(span)) = (clash, b.span.as_ref().or(a.span.as_ref())) {
                errors.push(ConfigError::new(
                    span,
                    format!(
                        "[dkim:{}] and [dkim:{}] both use the {what}; give each section its own",
                        a.name, b.name
                    ),
                ));
            }
        }
    }
}

fn build_dkim(
    section: &ModuleSection,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Option<DkimSection> {
    let entries = &section.entries;
    let before = errors.len();
    let text = |key: &str| {
        entries
            .get(key)
            .map(|v| v.text.trim())
            .filter(|t| !t.is_empty())
    };
    let path = |key: &str, default: &str| PathBuf::from(text(key).unwrap_or(default));
    let mut err = |span: &Span, message: String| {
        errors.push(ConfigError::new(span, message));
    };

    // The original named handlers like `rspamd/...`; the part before `/` counts.
    let handler_name = text("handler")
        .map(|h| h.split('/').next().unwrap_or(h).trim().to_ascii_lowercase())
        .unwrap_or_else(|| "rspamd".into());
    let handler = match handler_name.as_str() {
        "rspamd" => DkimHandler::Rspamd {
            conf: path("signingconfdestinationfile", DEFAULT_SIGNING_CONF),
            template: text("signingconftemplatefile").map(PathBuf::from),
        },
        "opendkim" => DkimHandler::OpenDkim {
            key_table: path("keytable", DEFAULT_KEY_TABLE),
            signing_table: path("signingtable", DEFAULT_SIGNING_TABLE),
        },
        "file" => DkimHandler::File,
        other => {
            if let Some(value) = entries.get("handler") {
                err(
                    &value.span,
                    format!("unknown dkim handler \"{other}\" (use rspamd, opendkim or file)"),
                );
            }
            DkimHandler::File
        }
    };

    let keysize = match entries.get("keysize") {
        None => DEFAULT_RSA_BITS,
        Some(value) => value.text.trim().parse().unwrap_or_else(|_| {
            err(
                &value.span,
                format!("keysize \"{}\" is not a number", value.text),
            );
            DEFAULT_RSA_BITS
        }),
    };
    let key_type = match text("keytype").map(str::to_ascii_lowercase).as_deref() {
        None | Some("rsa") => {
            if let Some(value) = entries.get("keysize") {
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&keysize) {
                    err(
                        &value.span,
                        format!(
                            "keysize {keysize}: DKIM RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (RFC 8301)"
                        ),
                    );
                } else if !keysize.is_multiple_of(128) {
                    err(
                        &value.span,
                        format!(
                            "keysize {keysize}: use a multiple of 128 bits (1024, 2048, 3072, 4096)"
                        ),
                    );
                } else if keysize < RECOMMENDED_RSA_BITS {
                    warnings.push(ConfigError::new(
                        &value.span,
                        format!(
                            "keysize {keysize}: RSA keys below {RECOMMENDED_RSA_BITS} bits are weak (RFC 8301 asks for at least {RECOMMENDED_RSA_BITS}); use it only where a DNS provider cannot hold longer records"
                        ),
                    ));
                }
            }
            DkimKeyType::Rsa(keysize)
        }
        Some("ed25519") => DkimKeyType::Ed25519,
        Some(other) => {
            if let Some(value) = entries.get("keytype") {
                err(
                    &value.span,
                    format!("unknown DKIM keytype \"{other}\" (use rsa or ed25519)"),
                );
            }
            DkimKeyType::Ed25519
        }
    };

    let key_base_name = text("keybasename")
        .unwrap_or(&section.name)
        .to_ascii_lowercase();
    if !valid_base_name(&key_base_name) {
        let message = format!(
            "keybasename \"{key_base_name}\" cannot start a selector: use 1 to 52 letters, digits, '-' or '_'"
        );
        match entries.get("keybasename") {
            Some(value) => err(&value.span, message),
            None => {
                if let Some(span) = &section.span {
                    err(
                        span,
                        format!("[dkim:{}]: {message} (set keybasename)", section.name),
                    );
                }
            }
        }
    }

    let key_name = text("keyname").unwrap_or(DEFAULT_KEY_NAME).to_string();
    if (key_name.contains('/') || key_name == "." || key_name == "..")
        && let Some(value) = entries.get("keyname")
    {
        err(
            &value.span,
            format!(
                "keyname \"{key_name}\" must be a file name, not a path (the directory is keylocation)"
            ),
        );
    }
    // The per-selector key files are BASE_UNIXTIME.key beside it.
    if key_name.starts_with(&format!("{key_base_name}_"))
        && key_name.ends_with(".key")
        && let Some(value) = entries.get("keyname")
    {
        err(
            &value.span,
            format!(
                "keyname \"{key_name}\" looks like the key file of a selector ({key_base_name}_UNIXTIME.key); choose another name"
            ),
        );
    }
    let key_location = path("keylocation", DEFAULT_KEY_LOCATION);
    if !key_location.is_absolute()
        && let Some(value) = entries.get("keylocation")
    {
        err(
            &value.span,
            format!(
                "keylocation \"{}\" must be an absolute path",
                value.text.trim()
            ),
        );
    }

    let drain = match entries.get("dkimdrain") {
        None => DEFAULT_DRAIN,
        Some(value) => parse_drain(&value.text).unwrap_or_else(|message| {
            err(
                &value.span,
                format!("dkimdrain \"{}\": {message}", value.text.trim()),
            );
            DEFAULT_DRAIN
        }),
    };
    let rotate_days = match entries.get("rotatedays") {
        None => DEFAULT_ROTATE_DAYS,
        Some(value) => value.text.trim().parse().unwrap_or_else(|_| {
            err(
                &value.span,
                format!("rotatedays \"{}\" is not a number of days", value.text),
            );
            DEFAULT_ROTATE_DAYS
        }),
    };
    let owner = entries.get("keyowner").and_then(|value| {
        lookup_account(value.text.trim(), AccountKind::User)
            .map_err(|message| err(&value.span, message))
            .ok()
    });
    let group = entries.get("keygroup").and_then(|value| {
        lookup_account(value.text.trim(), AccountKind::Group)
            .map_err(|message| err(&value.span, message))
            .ok()
    });
    let (owner, group, ownership) =
        if entries.contains_key("keyowner") || entries.contains_key("keygroup") {
            (owner, group, KeyOwnership::Configured)
        } else {
            let is_root = crate::sys::is_root();
            default_ownership(&handler, is_root, lookup_account)
        };
    if let Some(value) = entries.get("signingconftemporaryfile")
        && !value.from_default
    {
        warnings.push(ConfigError::new(
            &value.span,
            "signingconftemporaryfile is not needed any more (the new configuration is kept in the state directory); it is ignored",
        ));
    }
    if (section.name.contains('/') || section.name.starts_with('.'))
        && let Some(span) = &section.span
    {
        err(
            span,
            format!(
                "[dkim:{}]: a section name cannot contain '/' or start with '.' (it names a directory in the state directory)",
                section.name
            ),
        );
    }

    if errors.len() > before {
        return None;
    }
    Some(DkimSection {
        name: section.name.clone(),
        span: section.span.clone(),
        handler,
        key_type,
        key_base_name,
        key_location,
        key_name,
        owner,
        group,
        ownership,
        drain,
        rotate_days,
        domains: Vec::new(),
    })
}

/// `dkimdrain`: a number with an optional unit `s`, `m`, `h`, `d` (the default)
/// or `w`; `0` for no drain. A bare number means days, so that a forgotten unit
/// errs on the long side, never cutting off mail in transit.
pub(crate) fn parse_drain(text: &str) -> Result<Duration, String> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "is not a duration (like 7d, 36h, 90m, 3600s or 0)".to_string())?;
    let seconds = match unit.trim() {
        "" | "d" | "day" | "days" => 86_400,
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "w" | "week" | "weeks" => 7 * 86_400,
        other => return Err(format!("unknown unit \"{other}\" (use s, m, h, d or w)")),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| "is longer than a hundred years".to_string())
}

#[derive(Clone, Copy)]
enum AccountKind {
    User,
    Group,
}

/// Resolves a user or group name (or a numeric id) through the system's
/// account database (`getpwnam_r`, `getgrnam_r`).
fn lookup_account(name: &str, kind: AccountKind) -> Result<Account, String> {
    let what = match kind {
        AccountKind::User => "user",
        AccountKind::Group => "group",
    };
    if name.is_empty() {
        return Err(format!("the {what} name is empty"));
    }
    if let Ok(id) = name.parse::<u32>() {
        return Ok(Account {
            name: name.to_string(),
            id,
        });
    }
    if name.contains('\0') {
        return Err(format!("{what} \"{name}\" is not a name"));
    }
    let found = match kind {
        AccountKind::User => crate::sys::user_id(name),
        AccountKind::Group => crate::sys::group_id(name),
    };
    found
        .map(|id| Account {
            name: name.to_string(),
            id,
        })
        .ok_or_else(|| format!("there is no {what} \"{name}\" on this system"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Config, build_text};

    const DOMAIN: &str = "[domain:example.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ndkim = auto:Mail\n";

    fn config(dkim: &str) -> Result<Config, Vec<String>> {
        build_text("c.conf", &format!("{DOMAIN}[dkim:mail]\n{dkim}"))
    }

    #[test]
    fn defaults_and_the_originals_spellings() {
        let c = config("").unwrap();
        let d = &c.dkims[0];
        assert_eq!(d.key_type, DkimKeyType::Rsa(2048));
        assert_eq!(d.key_base_name, "mail");
        assert_eq!(d.key_path(), PathBuf::from("/var/lib/rspamd/dkim/dkim.key"));
        assert_eq!(
            d.handler,
            DkimHandler::Rspamd {
                conf: PathBuf::from(DEFAULT_SIGNING_CONF),
                template: None
            }
        );
        assert_eq!(d.drain, DEFAULT_DRAIN);
        assert_eq!(d.rotate_days, 180);
        assert_eq!(d.domains[0].as_str(), "example.test");

        let c = config(
            "handler = rspamd\nsigningConfDestinationFile = /tmp/x/dkim_signing.conf\nkeytype = ED25519\nkeyBaseName = Key\nkeyowner = root\nkeygroup = 0\ndkimdrain = 36h\n",
        )
        .unwrap();
        let d = &c.dkims[0];
        assert_eq!(d.key_type, DkimKeyType::Ed25519);
        assert_eq!(d.key_base_name, "key");
        assert!(
            matches!(&d.handler, DkimHandler::Rspamd { conf, .. } if conf == &PathBuf::from("/tmp/x/dkim_signing.conf"))
        );
        assert_eq!(d.owner.as_ref().map(|a| a.id), Some(0));
        assert_eq!(d.group.as_ref().map(|a| a.id), Some(0));
        assert_eq!(d.drain, Duration::from_secs(36 * 3600));

        let c = config("handler = opendkim\nkeytable = /tmp/kt\n").unwrap();
        assert_eq!(
            c.dkims[0].handler,
            DkimHandler::OpenDkim {
                key_table: PathBuf::from("/tmp/kt"),
                signing_table: PathBuf::from(DEFAULT_SIGNING_TABLE)
            }
        );
    }

    #[test]
    fn a_1024_bit_key_warns() {
        let c = config("keysize = 1024\n").unwrap();
        assert_eq!(c.dkims[0].key_type, DkimKeyType::Rsa(1024));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.to_string().starts_with("c.conf:8: keysize 1024"))
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, line, what) in [
            ("keysize = 512\n", 8, "1024 to 4096"),
            ("keysize = 2049\n", 8, "a multiple of 128"),
            ("keysize = big\n", 8, "not a number"),
            ("keytype = dsa\n", 8, "unknown DKIM keytype \"dsa\""),
            ("handler = postfix\n", 8, "unknown dkim handler"),
            ("keybasename = a.b\n", 8, "keybasename"),
            ("keyname = ../x\n", 8, "file name"),
            (
                "keyname = mail_1.key\n",
                8,
                "looks like the key file of a selector",
            ),
            ("keylocation = relative\n", 8, "absolute"),
            ("dkimdrain = soon\n", 8, "dkimdrain"),
            ("dkimdrain = 7y\n", 8, "unknown unit"),
            ("rotatedays = x\n", 8, "rotatedays"),
            ("keyowner = no-such-user-here\n", 8, "no user"),
            ("keygroup = no-such-group-here\n", 8, "no group"),
        ] {
            let errors = config(text)
                .err()
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("c.conf:{line}: ")) && e.contains(what)),
                "{text}: {errors:?}"
            );
        }
    }

    #[test]
    fn unknown_sections_and_shared_files_are_errors() {
        let text = "[domain:a.test]\nhandler = rfc2136\nserver = 127.0.0.1\nkeyname = k\nsecret = c2VjcmV0\ndkim = auto:nosuch\n";
        let errors = build_text("c.conf", text).err().unwrap();
        assert!(
            errors[0].starts_with("c.conf:6: ") && errors[0].contains("no [dkim:nosuch]"),
            "{errors:?}"
        );

        let text = format!("{DOMAIN}dkim.other = auto\n[dkim:mail]\n[dkim:other]\n");
        let errors = build_text("c.conf", &text).err().unwrap();
        assert!(errors[0].contains("both use the key file"), "{errors:?}");

        let text = format!(
            "{DOMAIN}dkim.other = auto\n[dkim:mail]\n[dkim:other]\nkeyname = other.key\nkeybasename = mail\n"
        );
        let errors = build_text("c.conf", &text).err().unwrap();
        assert!(
            errors[0].contains("both use the key files /var/lib/rspamd/dkim/mail_UNIXTIME.key"),
            "{errors:?}"
        );
    }

    #[test]
    fn unlisted_sections_and_removed_links() {
        let text = format!("{DOMAIN}dkim -= auto:mail\n[dkim:mail]\n");
        let c = build_text("c.conf", &text).unwrap();
        assert!(c.dkims.is_empty());
        assert!(c.warnings.iter().any(|w| w.message.contains("not listed")));
    }

    #[test]
    fn drain_forms() {
        assert_eq!(parse_drain("0"), Ok(Duration::ZERO));
        assert_eq!(parse_drain("7"), Ok(DEFAULT_DRAIN));
        assert_eq!(parse_drain("7d"), Ok(DEFAULT_DRAIN));
        assert_eq!(
            parse_drain(" 2 weeks "),
            Ok(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(parse_drain("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_drain("3600s"), Ok(Duration::from_secs(3600)));
        assert!(parse_drain("-1").is_err());
        assert!(parse_drain("1.5d").is_err());
        assert!(parse_drain("99999999999w").is_err());
    }

    #[test]
    fn the_key_goes_to_the_signers_user_by_default() {
        let rspamd = DkimHandler::Rspamd {
            conf: PathBuf::from(DEFAULT_SIGNING_CONF),
            template: None,
        };
        let opendkim = DkimHandler::OpenDkim {
            key_table: PathBuf::from(DEFAULT_KEY_TABLE),
            signing_table: PathBuf::from(DEFAULT_SIGNING_TABLE),
        };
        let system = |name: &str, kind: AccountKind| match (name, kind) {
            ("_rspamd", AccountKind::User) => Ok(Account {
                name: name.into(),
                id: 104,
            }),
            ("_rspamd", AccountKind::Group) => Ok(Account {
                name: name.into(),
                id: 107,
            }),
            _ => Err(format!("there is no {name}")),
        };
        let (owner, group, how) = default_ownership(&rspamd, true, system);
        assert_eq!(owner.map(|a| a.id), Some(104));
        assert_eq!(group.map(|a| a.id), Some(107));
        assert_eq!(how, KeyOwnership::Signer);

        let (owner, _, how) = default_ownership(&rspamd, false, system);
        assert!(owner.is_none());
        assert!(matches!(how, KeyOwnership::Runner(why) if why.contains("only root")));
        let (owner, _, how) = default_ownership(&opendkim, true, system);
        assert!(owner.is_none());
        assert!(matches!(how, KeyOwnership::Runner(why) if why.contains("no user opendkim")));
        let (owner, _, _) = default_ownership(&DkimHandler::File, true, system);
        assert!(owner.is_none());

        // A keyowner or keygroup of its own is kept, and --check says which applies.
        let c = config("keygroup = 0\n").unwrap();
        assert_eq!(c.dkims[0].ownership, KeyOwnership::Configured);
        assert!(c.dkims[0].owner.is_none());
        let shown = render(&config("").unwrap().dkims);
        assert!(
            shown.contains("default: the user the signer runs as")
                || shown.contains("keyowner = (not set: the key stays with the user running"),
            "{shown}"
        );
        assert!(
            shown.contains("/var/lib/rspamd/dkim/SELECTOR.key"),
            "{shown}"
        );
    }
}
