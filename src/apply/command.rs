//! Running an external command given as an argument vector: never through a
//! shell, programs found through `PATH`, stdin closed, output captured, a
//! deadline after which the command's process group is killed. Used for
//! service reloads and the zone file provider's `reloadcommand`.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How much of a failed command's output goes into an error message.
const OUTPUT_LIMIT: usize = 2000;

/// How long to wait for the output after the command itself has exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the command is empty")]
    Empty,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} did not finish within {seconds} s and was killed")]
    Timeout { command: String, seconds: u64 },
    #[error("{command} failed ({status}){}", output_suffix(.output))]
    Failed {
        command: String,
        status: String,
        output: String,
    },
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        ": no output".to_string()
    } else {
        format!(": {output}")
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    pub success: bool,
    /// How it ended: `exit status N` or `killed by signal N`.
    pub status: String,
    /// Standard error, then standard output, each trimmed.
    pub output: String,
}

/// The command as shown in messages: its words, quoted where needed, so that
/// [`split`] gives them back.
pub(crate) fn display(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| format!("{argv:?}"))
}

/// Why a configured command line has no argument vector.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SplitError {
    #[error("unbalanced quotes")]
    Unbalanced,
    #[error("no command given")]
    Empty,
}

/// Splits a configured command line into words: blanks separate, single and
/// double quotes and backslashes work as in a POSIX shell, and nothing else of
/// a shell applies (no variables, globs, pipes or redirections).
///
/// # Errors
/// An unbalanced quote, or no words at all.
pub(crate) fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let words = shlex::split(line).ok_or(SplitError::Unbalanced)?;
    if words.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(words)
}

/// Runs `argv` and waits at most `timeout`; a nonzero exit is a [`Finished`]
/// with `success == false`.
///
/// # Errors
/// The command could not start or timed out.
pub(crate) async fn execute(argv: &[String], timeout: Duration) -> Result<Finished, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let spawn_error = |source| CommandError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let readers = [
        child.stderr.take().map(reader),
        child.stdout.take().map(reader),
    ];
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => return Err(spawn_error(source)),
        Err(_) => {
            if let Some(pid) = child.id() {
                kill_group(pid);
            }
            let _ = child.kill().await;
            return Err(CommandError::Timeout {
                command: display(argv),
                seconds: timeout.as_secs(),
            });
        }
    };
    // A daemon the command started may hold the pipes open: wait for the
    // output only briefly after the command itself has exited.
    let grace = Instant::now() + OUTPUT_GRACE;
    let mut output = Vec::new();
    for handle in readers.into_iter().flatten() {
        if let Ok(Ok(text)) = tokio::time::timeout_at(grace, handle).await {
            let text = text.trim();
            if !text.is_empty() {
                output.push(text.to_string());
            }
        }
    }
    Ok(Finished {
        success: status.success(),
        status: describe_status(status),
        output: output.join("\n"),
    })
}

/// Runs `argv` (at most `timeout`) and requires exit status 0.
///
/// # Errors
/// The command could not start, timed out or exited unsuccessfully (with its
/// output, stderr first, shortened).
pub(crate) async fn run(argv: &[String], timeout: Duration) -> Result<Finished, CommandError> {
    let finished = execute(argv, timeout).await?;
    if finished.success {
        return Ok(finished);
    }
    Err(CommandError::Failed {
        command: display(argv),
        status: finished.status,
        output: shorten(&finished.output),
    })
}

/// Reads a pipe to its end in its own task, so a chatty command cannot block
/// on a full pipe while we wait for it. Dropping the handle does not stop the
/// task; the task ends when the pipe closes.
fn reader(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn kill_group(pid: u32) {
    crate::sys::kill_process_group(pid);
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= OUTPUT_LIMIT {
        return text.to_string();
    }
    let mut end = OUTPUT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn split_respects_quotes_and_never_globs() {
        assert_eq!(
            split(r#"knotc -c "/etc/my knot.conf" zone-reload 'ex ample.com' *"#).unwrap(),
            argv(&[
                "knotc",
                "-c",
                "/etc/my knot.conf",
                "zone-reload",
                "ex ample.com",
                "*"
            ])
        );
        assert_eq!(split("echo 'open"), Err(SplitError::Unbalanced));
        assert_eq!(split("   "), Err(SplitError::Empty));
    }

    #[test]
    fn display_quotes_where_needed_and_splits_back() {
        let words = argv(&["nginx", "-c", "/etc/my nginx.conf", "it's", "$HOME"]);
        assert_eq!(display(&words[..3]), "nginx -c '/etc/my nginx.conf'");
        assert_eq!(split(&display(&words)).unwrap(), words);
    }

    #[tokio::test]
    async fn output_and_status_of_real_commands() {
        let ok = run(&argv(&["printf", "%s", "a b"]), TIMEOUT).await.unwrap();
        assert_eq!(ok.output, "a b");
        // No shell: the metacharacters reach the program as plain words.
        let ok = run(&argv(&["echo", "$HOME", ";", "false"]), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(ok.output, "$HOME ; false");
        let err = run(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            TIMEOUT,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh -c 'echo out; echo err >&2; exit 3' failed (exit status 3): err\nout"
        );
        let failed = execute(&argv(&["false"]), TIMEOUT).await.unwrap();
        assert!(!failed.success);
        assert_eq!(failed.status, "exit status 1");
        let err = run(&argv(&["/nonexistent/reload"]), TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot run /nonexistent/reload: "),
            "{err}"
        );
        assert!(matches!(
            run(&[], TIMEOUT).await.unwrap_err(),
            CommandError::Empty
        ));
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_the_deadline() {
        let started = std::time::Instant::now();
        let err = run(&argv(&["sleep", "30"]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_daemon_holding_the_pipes_does_not_hold_us() {
        let started = std::time::Instant::now();
        let ok = run(
            &argv(&["sh", "-c", "echo started; sleep 5 & exit 0"]),
            TIMEOUT,
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        // The output is cut off with the grace period while the background
        // process holds the pipe: nothing is waited for past it.
        assert!(ok.success);
    }
}
