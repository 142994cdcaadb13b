//! The `modhost` binary.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let command = cli::Command::parse();
    let code = match cli::logger::install().and_then(|()| cli::run(command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("modhost: {error:#}");
            ExitCode::FAILURE
        }
    };
    cli::logger::finish();
    code
}
