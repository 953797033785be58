//! `statelock state ls | history | show | diff | rollback`: the states in a bucket that
//! Terraform's or OpenTofu's `backend "s3"` uses directly (or a statelock directory), their
//! history from S3 object versions and from the server's history prefix, and a locked,
//! compare-and-swap rollback.

mod diff;
mod digest;
mod history;
mod ls;
mod rollback;
mod show;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::commands::runtime;
use crate::commands::store_args::StoreArgs;

pub const ABOUT: &str = "\
Inspect and roll back states in a bucket used directly by Terraform/OpenTofu `backend \"s3\"`.

Versions come from two sources, merged newest first:
  s3-version       S3 object versions of the state key (the bucket must have versioning on)
  server-history   versions `statelock serve` recorded under .statelock/history/<key>/
Each version has an ID to pass to show, diff and rollback: the S3 version ID, or the server
history ID (20240102T030405.000000000Z-<serial>-<hex>). `current` names the state as it is now.";

pub const EXAMPLES: &str = "\
Examples:
  statelock state ls --store s3://my-tf-state
  statelock state history prod/app.tfstate --store s3://my-tf-state
  statelock state show prod/app.tfstate 3HL4kqtJlcpXroDTDmJ.rpSnLSJ3WqJH --store s3://my-tf-state
  statelock state diff prod/app.tfstate 3HL4kqtJlcpXroDTDmJ.rpSnLSJ3WqJH --store s3://my-tf-state
  statelock state rollback prod/app.tfstate --to 3HL4kqtJlcpXroDTDmJ.rpSnLSJ3WqJH --dry-run --store s3://my-tf-state

Exit codes:
  0  done
  1  error
  2  nothing found (no states, no history, no such version) or refused (the state is locked,
     another lineage without --force, no --yes and no terminal to ask on, answer not 'yes')";

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the states in the store: key, size, last change, lock holder.
    #[command(after_help = EXAMPLES)]
    Ls(ls::LsArgs),
    /// List a state's versions (S3 object versions and server history), newest first.
    #[command(long_about = history::ABOUT, after_help = EXAMPLES)]
    History(history::HistoryArgs),
    /// Show one version: serial, lineage, Terraform version, resources and outputs.
    #[command(long_about = show::ABOUT, after_help = EXAMPLES)]
    Show(show::ShowArgs),
    /// Resources added, removed and changed, and outputs changed, between two versions.
    #[command(long_about = diff::ABOUT, after_help = EXAMPLES)]
    Diff(diff::DiffArgs),
    /// Copy an old version forward as the next serial, under the state's .tflock lock.
    #[command(long_about = rollback::ABOUT, after_help = EXAMPLES)]
    Rollback(rollback::RollbackArgs),
}

/// The state key and store every subcommand but `ls` takes.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The state key, e.g. team-a/prod/terraform.tfstate (workspaces: env:/<workspace>/<key>).
    pub key: String,

    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: StateArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.command {
        StateCommand::Ls(a) => rt.block_on(ls::run(a)),
        StateCommand::History(a) => rt.block_on(history::run(a)),
        StateCommand::Show(a) => rt.block_on(show::run(a)),
        StateCommand::Diff(a) => rt.block_on(diff::run(a)),
        StateCommand::Rollback(a) => rt.block_on(rollback::run(a)),
    }
}
