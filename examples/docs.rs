//! Writes the manual page `cryptdomainmgr(1)` and the bash, zsh and fish
//! completions, all generated from the command-line definition in
//! `src/cli.rs`, so they cannot drift from `--help`. Used by
//! `scripts/package.sh`: `cargo run --example docs -- OUTDIR` writes
//! `OUTDIR/cryptdomainmgr.1`, `OUTDIR/cryptdomainmgr.bash`,
//! `OUTDIR/_cryptdomainmgr` (zsh) and `OUTDIR/cryptdomainmgr.fish`.
//!
//! An example rather than an option of the program: the generators stay out
//! of the installed binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use cryptdomainmgr::cli::Args;

const NAME: &str = "cryptdomainmgr";

/// Sections clap has no place for, in roff.
const MORE: &str = r#".SH "CONFIGURATION FILES"
Each
.I CONFIG_FILE
is an INI file described in
.BR cryptdomainmgr.conf (5).
Files are read in the order given; for the same section and key the last one
wins. A directory stands for every file in it whose name ends in
.IR .conf ,
in name order (hidden files and files such as
.I x.conf.dpkg\-dist
are not read).
.SH "EXIT STATUS"
.TP
.B 0
Everything due was done, or nothing was due (waiting for a DNS cache to expire
is not a failure).
.TP
.B 1
A step failed (the others still ran; the log names it and what the next run
retries), an explicit \fB\-\-rollover\fR was refused as not yet safe, or the
state could not be read or locked.
.TP
.B 2
A usage or configuration error (with file, line and what is wrong); nothing
was changed.
.SH FILES
.TP
.I /etc/cryptdomainmgr/
The configuration read by the systemd service: every
.I *.conf
file in it. Files holding secrets should be mode 0600; the program warns when
they are readable by others.
.TP
.I /var/lib/cryptdomainmgr/
The state directory of the packaged configuration (\fBstatedir\fR; the
program's default is
.IR /var/cryptdomainmgr ):
the state file, new keys and certificates before they are deployed, the ACME
account, and the lock that keeps two runs apart.
.TP
.I /lib/systemd/system/cryptdomainmgr.service
.TQ
.I /lib/systemd/system/cryptdomainmgr.timer
Run \fBcryptdomainmgr \-\-auto /etc/cryptdomainmgr/\fR every 15 minutes, in a
sandbox, once the timer is enabled with
\fBsystemctl enable \-\-now cryptdomainmgr.timer\fR.
.SH EXAMPLES
Check a configuration and see what it will do:
.PP
.RS
.B cryptdomainmgr \-\-check /etc/cryptdomainmgr/
.RE
.PP
Show what is due, when and why, then do it:
.PP
.RS
.B cryptdomainmgr \-\-auto \-\-dry\-run /etc/cryptdomainmgr/
.br
.B cryptdomainmgr \-\-auto /etc/cryptdomainmgr/
.RE
.PP
Per section: state, next step, when and why; as JSON for monitoring:
.PP
.RS
.B cryptdomainmgr \-\-status \-\-json /etc/cryptdomainmgr/
.RE
.SH "SEE ALSO"
.BR cryptdomainmgr.conf (5),
.BR systemctl (1),
.BR journalctl (1),
.I /usr/share/doc/cryptdomainmgr/README.md.gz
"#;

fn write(
    path: &Path,
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> Result<(), String> {
    let mut bytes = Vec::new();
    render(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn generate(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let man = clap_mangen::Man::new(Args::command())
        .section("1")
        .manual("System Administration")
        .source(format!("{NAME} {}", env!("CARGO_PKG_VERSION")));
    write(&dir.join(format!("{NAME}.1")), |out| {
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        man.render_options_section(out)?;
        out.write_all(MORE.as_bytes())?;
        man.render_version_section(out)
    })?;
    for (shell, file) in [
        (Shell::Bash, format!("{NAME}.bash")),
        (Shell::Zsh, format!("_{NAME}")),
        (Shell::Fish, format!("{NAME}.fish")),
    ] {
        write(&dir.join(file), |out| {
            clap_complete::generate(shell, &mut Args::command(), NAME, out);
            Ok(())
        })?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: docs OUTDIR");
        return ExitCode::from(2);
    };
    match generate(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docs: {e}");
            ExitCode::FAILURE
        }
    }
}
