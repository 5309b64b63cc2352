//! Writing and removing MTA-STS policy files (RFC 8461 §3.2). The file is the
//! journal the planner reads (`plan::mtasts`): it is replaced atomically, so a
//! sender (or the next round) sees the old policy or the new one, never a part.

use log::info;

use super::error::StepError;
use super::fs::{self, PUBLIC_FILE};
use crate::crashpoint;
use crate::plan::mtasts::PolicyFile;

/// Writes `file`'s policy (readable by the web server that serves it), or
/// removes the file.
///
/// # Errors
/// The file could not be written or removed; nothing else was changed.
pub(crate) fn apply(file: &PolicyFile) -> Result<(), StepError> {
    match &file.content {
        Some(content) => {
            fs::write_atomic(&file.path, content.as_bytes(), PUBLIC_FILE)?;
            info!(
                "[domain:{}] MTA-STS policy written to {}",
                file.domain,
                file.path.display()
            );
            crashpoint::reached("mtasts:written");
        }
        None => {
            fs::remove_file(&file.path)?;
            info!(
                "[domain:{}] MTA-STS policy {} removed",
                file.domain,
                file.path.display()
            );
        }
    }
    Ok(())
}
