//! The `statelock` command. Thin: parses the command line, runs one subcommand, and decides
//! the exit code in one place.

mod cli;
mod commands;
mod config_file;
mod dual_lock;
mod lock_args;
mod security;
mod serve;
mod signals;
mod size;
mod store_check;
mod store_url;
mod transport;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match config_file::parse_or_exit(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => return fail(&e),
    };
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!(
        "statelock: error: {}",
        statelock_store::error_chain(e.as_ref())
    );
    ExitCode::FAILURE
}

/// The exit code of a finished command; errors are reported by the caller.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            serve::run(serve::ServeConfig::from_args(*args)?).map(|()| ExitCode::SUCCESS)
        }
        Command::Locks(args) => commands::locks::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::IamPolicy(args) => commands::iam_policy::run(args),
        Command::State(args) => commands::state::run(args),
        Command::Token(args) => commands::token::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
    }
}

/// Logs go to stderr, so stdout carries only what is meant to be copied (the backend block).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATELOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
