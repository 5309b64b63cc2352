//! The command line (docs/cli.md), keeping the original's flags.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Parser};

use crate::config::ini::{Source, split_inline_content};

/// The phases of the three-phase renewal plus the static update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Update,
    Prepare,
    Rollover,
    Cleanup,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Update => "update",
            Phase::Prepare => "prepare",
            Phase::Rollover => "rollover",
            Phase::Cleanup => "cleanup",
        }
    }

    /// The phase after this one in the renewal cycle.
    pub fn next(self) -> Phase {
        match self {
            Phase::Prepare => Phase::Rollover,
            Phase::Rollover => Phase::Cleanup,
            Phase::Cleanup | Phase::Update => Phase::Prepare,
        }
    }
}

/// What to do besides (or instead of) running a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Run(Phase),
    /// The phase after the last completed one (or the failed one again).
    Next,
    Auto,
    Check,
    Status,
    Adopt,
    /// `--forget-node NAME` (store = etcd).
    ForgetNode,
}

#[derive(Parser, Debug)]
#[command(
    name = "cryptdomainmgr",
    version,
    about = "Renews TLS certificates, DANE TLSA records, DKIM keys and DH parameters without downtime, and sets static DNS records.",
    group(ArgGroup::new("phase").args(["update", "prepare", "rollover", "cleanup", "next", "auto", "check", "status", "adopt", "forget_node"]))
)]
pub struct Args {
    /// Set the static records (A, AAAA, MX, SRV, CAA, SPF, DMARC, ADSP, SOA, ACME)
    #[arg(long)]
    pub update: bool,
    /// Create new certificates, DKIM keys and DH parameters; publish their records next to the old
    #[arg(long)]
    pub prepare: bool,
    /// Deploy the prepared material and reload services
    #[arg(long)]
    pub rollover: bool,
    /// Delete records and files of superseded material
    #[arg(long)]
    pub cleanup: bool,
    /// Run the phase after the last completed one (the default)
    #[arg(long)]
    pub next: bool,
    /// Do everything that is due and safe now, for every section (for timers)
    #[arg(long)]
    pub auto: bool,
    /// Validate the configuration, say what it will do, and print it as interpreted
    #[arg(long)]
    pub check: bool,
    /// Print the state: last phase, next phase, material, what is due
    #[arg(long)]
    pub status: bool,
    /// Take the certificates at destination and DKIM keys at keylocation (from the original, certbot, lego, dehydrated) as the current ones
    #[arg(long)]
    pub adopt: bool,
    /// With store = etcd: remove a node that is gone for good, so cleanup no longer waits for it
    #[arg(long, value_name = "NAME")]
    pub forget_node: Option<String>,
    /// With --status: print it as JSON (for monitoring)
    #[arg(long, requires = "status")]
    pub json: bool,
    /// Print every change and make none
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead with a phase that is not yet safe, renew what is not due, or adopt over material the state has
    #[arg(long)]
    pub force: bool,
    /// Configuration text, read after the files; two or more spaces count as a line break
    #[arg(long, value_name = "TEXT")]
    pub config_content: Vec<String>,
    /// More logging (repeatable)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (repeatable)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Configuration files, read in order (the last one wins); a directory stands for its *.conf files in name order
    #[arg(value_name = "CONFIG_FILE")]
    pub files: Vec<PathBuf>,
}

impl Args {
    pub fn action(&self) -> Action {
        if self.update {
            Action::Run(Phase::Update)
        } else if self.prepare {
            Action::Run(Phase::Prepare)
        } else if self.rollover {
            Action::Run(Phase::Rollover)
        } else if self.cleanup {
            Action::Run(Phase::Cleanup)
        } else if self.auto {
            Action::Auto
        } else if self.check {
            Action::Check
        } else if self.status {
            Action::Status
        } else if self.adopt {
            Action::Adopt
        } else if self.forget_node.is_some() {
            Action::ForgetNode
        } else {
            Action::Next
        }
    }

    pub fn verbosity(&self) -> i8 {
        i8::try_from(i16::from(self.verbose) - i16::from(self.quiet)).unwrap_or(0)
    }

    /// The configuration sources in reading order.
    ///
    /// # Errors
    /// The file that cannot be read and why.
    pub fn sources(&self) -> Result<Vec<Source>, String> {
        let mut sources = Vec::new();
        for path in &self.files {
            for file in config_files(path)? {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
                sources.push(Source {
                    name: file.display().to_string(),
                    text,
                });
            }
        }
        for content in &self.config_content {
            sources.push(Source {
                name: "--config-content".into(),
                text: split_inline_content(content),
            });
        }
        Ok(sources)
    }
}

/// The files a `CONFIG` argument stands for: the file itself, or for a
/// directory every `*.conf` file in it in name order. systemd does not expand
/// globs in `ExecStart=`, so the unit names the directory instead. Hidden files
/// and what package tools leave next to a configuration file
/// (`x.conf.dpkg-dist`, `x.conf~`) do not end in `.conf` and are skipped.
///
/// # Errors
/// A directory that cannot be listed or has no `*.conf` file.
fn config_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("{}: cannot list: {e}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot list: {e}", path.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".conf") {
            continue;
        }
        let file = entry.path();
        if file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: no *.conf file in this directory",
            path.display()
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_conf_files_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "b.conf",
            "a.conf",
            "c.conf.dpkg-dist",
            ".hidden.conf",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        std::fs::create_dir(dir.path().join("sub.conf")).expect("mkdir");
        let files = config_files(dir.path()).expect("listed");
        assert_eq!(
            files,
            vec![dir.path().join("a.conf"), dir.path().join("b.conf")]
        );
    }

    #[test]
    fn a_directory_without_conf_files_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.conf.dpkg-old"), "").expect("write");
        let error = config_files(dir.path()).expect_err("nothing to read");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        assert!(error.contains("no *.conf file"), "{error}");
    }

    #[test]
    fn a_file_stands_for_itself_even_without_the_suffix() {
        let files = config_files(Path::new("/nonexistent/mydomains.ini")).expect("a file");
        assert_eq!(files, vec![PathBuf::from("/nonexistent/mydomains.ini")]);
    }
}
