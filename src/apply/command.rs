//! Running an external command given as an argument vector: never through a
//! shell, stdin closed, output captured, a deadline after which the command's
//! process group is killed.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How much of a failed command's output goes into an error message.
const OUTPUT_LIMIT: usize = 2000;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the command is empty")]
    Empty,
    #[error("cannot run {program}: {reason}")]
    Spawn { program: String, reason: String },
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

/// The command as shown in messages: its words, quoted where needed.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a configured command line into words: blanks separate, single and
/// double quotes and backslashes work as in a POSIX shell, and nothing else of
/// a shell applies (no variables, globs, pipes or redirections).
///
/// # Errors
/// An unbalanced quote, or no words at all.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    if words.is_empty() {
        return Err("no command given".into());
    }
    Ok(words)
}

/// Runs `argv` and waits at most `timeout`. Success is exit status 0.
///
/// # Errors
/// The command could not start, timed out or exited unsuccessfully (with its
/// output, stderr first, shortened).
pub fn run(argv: &[String], timeout: Duration) -> Result<(), CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let command = display(argv);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            program: program.clone(),
            reason: e.to_string(),
        })?;
    let readers = [
        child.stderr.take().map(reader),
        child.stdout.take().map(reader),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    let Some(status) = status else {
        kill_group(child.id());
        let _ = child.kill();
        let _ = child.wait();
        return Err(CommandError::Timeout {
            command,
            seconds: timeout.as_secs(),
        });
    };
    // A daemon the command started may hold the pipes open: wait for the
    // output only briefly after the command itself has exited.
    let grace = Instant::now() + Duration::from_secs(1);
    while readers.iter().flatten().any(|r| !r.is_finished()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(5));
    }
    let output: Vec<String> = readers
        .into_iter()
        .flatten()
        .filter(|r| r.is_finished())
        .filter_map(|r| r.join().ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .collect();
    if status.success() {
        return Ok(());
    }
    Err(CommandError::Failed {
        command,
        status: describe_status(status),
        output: shorten(&output.join("\n")),
    })
}

/// Reads a pipe to its end on its own thread, so a chatty command cannot
/// block on a full pipe while we wait for it.
fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on the process group of our own child, which we made
        // its leader (process_group(0)) and have not reaped yet.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
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
        assert!(split("echo 'open").is_err());
        assert!(split("   ").is_err());
    }

    #[test]
    fn success_failure_and_output() {
        run(&argv(&["true"]), Duration::from_secs(5)).unwrap();
        let err = run(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh -c 'echo out; echo err >&2; exit 3' failed (exit status 3): err\nout"
        );
        let err = run(&argv(&["/nonexistent/reload"]), Duration::from_secs(5)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot run /nonexistent/reload: "),
            "{err}"
        );
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_deadline() {
        let started = Instant::now();
        let err = run(&argv(&["sleep", "30"]), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
