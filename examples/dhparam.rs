//! Generates Diffie-Hellman parameters the way `[dhparam] handler = openssl`
//! does and prints them as PEM, like `openssl dhparam BITS`. Used by
//! `scripts/bench-dhparam.sh`: `cargo run --release --example dhparam -- 2048`.

use std::process::ExitCode;

use cryptdomainmgr::material::dhparam;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "2048".into());
    let Ok(bits) = arg.parse::<usize>() else {
        eprintln!("usage: dhparam [BITS]");
        return ExitCode::from(2);
    };
    match dhparam::generate(bits) {
        Ok(params) => {
            print!("{}", params.to_pem());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
