//! The `cryptdomainmgr` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use cryptdomainmgr::cli::Args;
use cryptdomainmgr::{log as cdm_log, run};

fn main() -> ExitCode {
    let args = Args::parse();
    cdm_log::init(args.verbosity());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("cannot start the async runtime: {e}");
            return ExitCode::from(run::Exit::PhaseFailed as u8);
        }
    };
    let exit = runtime.block_on(run::run(&args));
    ExitCode::from(exit as u8)
}
