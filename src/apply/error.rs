//! Why a step failed: a typed error made where the failure happened, named
//! with its section by the executor.

use crate::acme::AcmeError;
use crate::apply::command::CommandError;
use crate::apply::fs::FsError;
use crate::dns::provider::ProviderError;
use crate::material::cert::CertError;
use crate::material::dhparam::DhError;
use crate::material::dkim::DkimError;
use crate::state::StateError;

/// A step that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Acme(#[from] AcmeError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error(transparent)]
    Dkim(#[from] DkimError),
    #[error(transparent)]
    Dh(#[from] DhError),
    /// Reading a file that must be there.
    #[error("reading {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Material on disk that does not match what the state recorded.
    #[error("{0}")]
    Mismatch(String),
    /// A signing configuration that cannot be made (template, tables).
    #[error("{0}")]
    Signing(String),
    /// Some changes of a zone were refused; the others were made.
    #[error("{0}")]
    Partial(String),
    /// Work shared with other steps failed (one ACME account or one state
    /// write for several certificates); the first step has the error itself.
    #[error("{0}")]
    Shared(String),
    /// A task of the step stopped without finishing (a bug).
    #[error("the step stopped unexpectedly (a bug; please report it): {0}")]
    Panicked(String),
}

impl StepError {
    /// Reading `path` failed.
    pub fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StepError + '_ {
        move |source| StepError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}
