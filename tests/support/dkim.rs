//! Independent DKIM checks: a message signed with a key file by dkimpy (Debian's
//! `python3-dkim`) and verified by dkimpy against what the test's DNS server
//! serves (`dig`), through `dkim_check.py` beside this file.

use std::path::Path;
use std::process::Command;

/// The system Python that has Debian's `python3-dkim` (a `python3` earlier in
/// `PATH` may be another installation).
const PYTHON: &str = "/usr/bin/python3";

/// True when dkimpy and its helpers are installed (see [`super::require`]).
pub fn available() -> bool {
    let python = Path::new(PYTHON).is_file();
    if python
        && Command::new(PYTHON)
            .args(["-c", "import dkim, nacl, cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python3-dkim is not installed, but CI=true requires it: run scripts/test.sh");
    }
    eprintln!("SKIPPED: python3-dkim not installed, run scripts/test.sh");
    false
}

/// Signs a message for `domain` with `selector` and the key in `key_file`, and
/// verifies it with the record the DNS server on `port` serves. `Err` holds
/// dkimpy's output when the signature does not verify.
pub fn sign_and_verify(
    port: u16,
    domain: &str,
    selector: &str,
    key_file: &Path,
) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_check.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .args([&port.to_string(), domain, selector])
        .arg(key_file)
        .output()
        .expect("run dkim_check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.lines().any(|l| l.trim() == "verified") {
        Ok(())
    } else {
        Err(format!(
            "selector {selector}, key {}: {stdout}\n{}",
            key_file.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
