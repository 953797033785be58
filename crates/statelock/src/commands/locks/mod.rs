//! `statelock locks ls | show | unlock`: the `.tflock` objects that Terraform ≥1.10 and
//! OpenTofu (`use_lockfile = true`) and statelock itself leave in a bucket, listed, shown and
//! removed with the same compare-then-conditional-delete as a normal release.

mod unlock;
pub(crate) mod view;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use statelock_core::StateKey;
use statelock_core::parse_duration;
use statelock_lock::LockClient;

use crate::commands::store_args::StoreArgs;
use crate::commands::{nothing_or_refused, runtime};

pub use unlock::UnlockArgs;

pub const LOCKS_EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  error (the store failed, or a lock changed while being removed)
  2  nothing matched (no lock, or none old enough), or refused (wrong lock ID, an unreadable
     lock without --force-unreadable, no --yes and no terminal to ask on)";

#[derive(Debug, Args)]
pub struct LocksArgs {
    #[command(subcommand)]
    pub command: LocksCommand,
}

#[derive(Debug, Subcommand)]
pub enum LocksCommand {
    /// List every lock under the store: state key, lock ID, who, operation, version, age.
    #[command(after_help = LOCKS_EXIT_CODES)]
    Ls(LsArgs),
    /// Show one state's lock record, as Terraform prints its Lock Info.
    #[command(after_help = LOCKS_EXIT_CODES)]
    Show(ShowArgs),
    /// Remove a lock: one by state key and lock ID, or every lock older than a duration.
    #[command(long_about = unlock::ABOUT, after_help = LOCKS_EXIT_CODES)]
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only locks taken longer ago than this (e.g. 30m, 2h, 48h).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Option<Duration>,

    /// Only state keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,

    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The state key (e.g. team-a/prod/terraform.tfstate); a trailing .tflock is accepted.
    pub key: String,

    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: LocksArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.command {
        LocksCommand::Ls(a) => rt.block_on(ls(a)),
        LocksCommand::Show(a) => rt.block_on(show(a)),
        LocksCommand::Unlock(a) => rt.block_on(unlock::run(a)),
    }
}

async fn client(store: &StoreArgs) -> anyhow::Result<LockClient> {
    Ok(LockClient::new(store.open().await?, store.bucket()?))
}

/// A state key from the command line, with or without the lock suffix.
pub(crate) fn state_key(text: &str) -> anyhow::Result<StateKey> {
    let text = text
        .strip_suffix(statelock_core::LOCK_SUFFIX)
        .unwrap_or(text);
    StateKey::parse(text).with_context(|| format!("{text:?} is not a valid state key"))
}

async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args.store).await?;
    let locks = client
        .list(&args.prefix)
        .await
        .context("cannot list the locks")?;
    let rows = view::rows(locks, args.older_than);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view::json_rows(&rows))?);
    } else if rows.is_empty() {
        eprintln!("no locks{}", view::older_than_note(args.older_than));
    } else {
        print!("{}", view::table(&rows));
    }
    Ok(if rows.is_empty() {
        nothing_or_refused()
    } else {
        ExitCode::SUCCESS
    })
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let key = state_key(&args.key)?;
    let client = client(&args.store).await?;
    let Some(state) = client.inspect(&key).await? else {
        eprintln!("state {key} is not locked (no {})", key.lock_key());
        return Ok(nothing_or_refused());
    };
    // The record's Created is the holder's word; the object's time is the store's, and is all
    // there is for an unreadable lock.
    let modified = client
        .store()
        .head(&key.lock_key())
        .await
        .ok()
        .and_then(|m| m.last_modified);
    let row = view::Row::from_state(key.lock_key(), Some(key), state, modified);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view::json_row(&row))?);
    } else {
        print!("{}", view::detail(&row));
    }
    Ok(ExitCode::SUCCESS)
}
