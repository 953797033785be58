//! Operator subcommands besides `serve`, which work on a store directly, without a server.
//! One module each, so that commands developed in parallel touch only their own files; they
//! share how a store is named ([`store_args`]) and the exit codes.

pub mod doctor;
pub mod iam_policy;
pub mod locks;
pub mod migrate;
pub mod probe;
pub mod prompt;
pub mod state;
pub mod store_args;
pub mod table;
pub mod token;

use std::process::ExitCode;

/// Nothing matched, or the command refused to act (e.g. a wrong lock ID, or no `--yes`
/// without a terminal). Kept apart from 1 so scripts can tell "nothing to do" from failure.
pub const EXIT_NOTHING_OR_REFUSED: u8 = 2;

/// `statelock probe` found the store unsafe for lockfile locking.
pub const EXIT_UNSAFE: u8 = 3;

/// `statelock probe` found lockfile locking safe but `statelock serve` unable to run (its
/// compare-and-swap state writes fail).
pub const EXIT_SERVE_UNSAFE: u8 = 4;

/// `statelock migrate dynamodb ... usage` found clients still writing to the lock table.
pub const EXIT_STILL_IN_USE: u8 = 5;

pub fn nothing_or_refused() -> ExitCode {
    ExitCode::from(EXIT_NOTHING_OR_REFUSED)
}

/// The runtime for one command; commands are short-lived, so nothing is shared.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
