//! Running reload commands: argument vectors only, never a shell. Programs are
//! found through `PATH`; standard input is closed, and the output is kept for
//! the log when a command fails.

use std::process::Stdio;
use std::time::Duration;

/// How long one command may take before it is killed and counted as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// A command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}){}", output_suffix(.output))]
    Failed {
        command: String,
        status: String,
        /// Standard error, then standard output, trimmed.
        output: String,
    },
    #[error("{command} did not finish within {} s and was killed", .timeout.as_secs())]
    Timeout { command: String, timeout: Duration },
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub status: String,
    pub output: String,
}

/// `argv` as a reader would type it (quoted where needed), for logs.
pub fn display(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| format!("{argv:?}"))
}

/// Runs `argv` and waits for it (at most [`COMMAND_TIMEOUT`]).
///
/// # Errors
/// When it cannot be started or times out; a nonzero exit is a [`Finished`]
/// with `success == false`.
pub async fn execute(argv: &[String]) -> Result<Finished, CommandError> {
    let command = display(argv);
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandError::Spawn {
            command,
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            command: command.clone(),
            source,
        })?;
    let output = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => return Err(CommandError::Spawn { command, source }),
        Err(_) => {
            return Err(CommandError::Timeout {
                command,
                timeout: COMMAND_TIMEOUT,
            });
        }
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    let (stderr, stdout) = (text(&output.stderr), text(&output.stdout));
    let joined = match (stderr.is_empty(), stdout.is_empty()) {
        (false, false) => format!("{stderr}\n{stdout}"),
        (false, true) => stderr,
        _ => stdout,
    };
    Ok(Finished {
        success: output.status.success(),
        status: output.status.to_string(),
        output: joined,
    })
}

/// Runs `argv` and requires it to succeed.
///
/// # Errors
/// When it cannot be started, times out or exits nonzero (with its output).
pub async fn run(argv: &[String]) -> Result<Finished, CommandError> {
    let finished = execute(argv).await?;
    if finished.success {
        Ok(finished)
    } else {
        Err(CommandError::Failed {
            command: display(argv),
            status: finished.status,
            output: finished.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn output_and_status_of_real_commands() {
        let ok = run(&argv(&["printf", "%s", "a b"])).await.unwrap();
        assert_eq!(ok.output, "a b");
        // No shell: the metacharacters reach the program as plain words.
        let ok = run(&argv(&["echo", "$HOME", ";", "false"])).await.unwrap();
        assert_eq!(ok.output, "$HOME ; false");
        let failed = run(&argv(&["ls", "/nonexistent/dir"])).await.unwrap_err();
        let message = failed.to_string();
        assert!(
            message.starts_with("ls /nonexistent/dir failed (exit status: 2): "),
            "{message}"
        );
        assert!(message.contains("No such file"), "{message}");
        let missing = run(&argv(&["/nonexistent/program"])).await.unwrap_err();
        assert!(matches!(missing, CommandError::Spawn { .. }), "{missing}");
    }

    #[test]
    fn display_quotes_where_needed() {
        assert_eq!(
            display(&argv(&["nginx", "-c", "/etc/my nginx.conf"])),
            "nginx -c '/etc/my nginx.conf'"
        );
    }
}
