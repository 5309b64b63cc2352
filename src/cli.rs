//! The command line (docs/cli.md), keeping the original's flags.

use std::path::PathBuf;

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
    /// Configuration files, read in order (the last one wins)
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
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            sources.push(Source {
                name: path.display().to_string(),
                text,
            });
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
