//! `locks unlock`: one lock by key and ID, an unreadable one after showing it, or every lock
//! older than a duration after listing them and asking.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use statelock_core::parse_duration;
use statelock_lock::{DeleteMethod, LockClient, LockError, LockState};

use super::view::{self, Row};
use super::{client, state_key};
use crate::commands::nothing_or_refused;
use crate::commands::prompt::{Answer, confirm};
use crate::commands::store_args::StoreArgs;

pub const ABOUT: &str = "\
Remove a lock.

  unlock KEY --id ID          read the lock, compare its ID, then delete it only if unchanged
                              (a conditional delete where the store supports it; the output
                              says whether the delete was conditional or plain)
  unlock KEY --force-unreadable
                              remove a lock object whose body is not a lock record (which
                              `terraform force-unlock` cannot remove), after printing it
  unlock --older-than 2h      every lock taken longer ago than 2h: lists them, then asks on a
                              terminal; --yes skips the question, --dry-run only lists

On an S3 store, anything but --dry-run first checks on a scratch key under .statelock/probe/
(removed afterwards) how the store handles conditional requests, so that a store answering
501 to a conditional delete (LocalStack) or ignoring it (Ceph RGW 16) gets the read, compare,
plain-delete fallback, said in the output, instead of a delete wrongly called conditional.";

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The state key whose lock to remove.
    #[arg(required_unless_present = "older_than")]
    pub key: Option<String>,

    /// The lock ID the lock must still carry (as in `terraform force-unlock ID`).
    #[arg(long, requires = "key")]
    pub id: Option<String>,

    /// Remove every lock older than this instead of one by key (e.g. 2h, 90m).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["key", "id"])]
    pub older_than: Option<Duration>,

    /// With --older-than: only list what would be removed.
    #[arg(long, requires = "older_than")]
    pub dry_run: bool,

    /// With --older-than: do not ask.
    #[arg(long, short = 'y', requires = "older_than")]
    pub yes: bool,

    /// Also remove lock objects that are not valid lock records, after showing them.
    #[arg(long)]
    pub force_unreadable: bool,

    /// Only state keys starting with this (with --older-than).
    #[arg(long, default_value = "", requires = "older_than")]
    pub prefix: String,

    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(args: UnlockArgs) -> anyhow::Result<ExitCode> {
    let client = if args.dry_run {
        client(&args.store).await?
    } else {
        LockClient::new(args.store.open_for_changes().await?, args.store.bucket()?)
    };
    match (&args.key, args.older_than) {
        (Some(key), _) => one(&client, key, &args).await,
        (None, Some(age)) => bulk(&client, age, &args).await,
        (None, None) => unreachable!("clap requires KEY or --older-than"),
    }
}

fn method_text(method: &DeleteMethod) -> String {
    match method {
        DeleteMethod::Conditional => {
            "conditional delete: removed only because it was unchanged".into()
        }
        DeleteMethod::Plain { reason } => format!("plain delete ({reason})"),
    }
}

async fn one(client: &LockClient, key: &str, args: &UnlockArgs) -> anyhow::Result<ExitCode> {
    let key = state_key(key)?;
    let Some(id) = &args.id else {
        if !args.force_unreadable {
            anyhow::bail!(
                "give --id ID (the lock ID, see `statelock locks show {key}`), or --force-unreadable for a lock object that is not a lock record"
            );
        }
        return force_unreadable(client, &key).await;
    };
    match client.release(&key, id).await {
        Ok(released) => {
            println!(
                "released lock {} on {key} (held by {}, {}); {}",
                released.info.id,
                released.info.who,
                released.info.operation,
                method_text(&released.method)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (LockError::IdMismatch { .. } | LockError::NotLocked { .. })) => {
            eprintln!("statelock: refused, nothing was removed: {e}");
            Ok(nothing_or_refused())
        }
        Err(e @ LockError::Unreadable { .. }) => {
            eprintln!(
                "statelock: refused, nothing was removed: {e}\nInspect it with `statelock locks show {key}` and remove it with `statelock locks unlock {key} --force-unreadable`."
            );
            Ok(nothing_or_refused())
        }
        Err(e) => Err(e.into()),
    }
}

async fn force_unreadable(
    client: &LockClient,
    key: &statelock_core::StateKey,
) -> anyhow::Result<ExitCode> {
    let Some(state) = client.inspect(key).await? else {
        eprintln!("statelock: state {key} is not locked; nothing was removed");
        return Ok(nothing_or_refused());
    };
    let LockState::Unreadable { version, .. } = &state else {
        eprintln!(
            "statelock: refused: the lock on {key} is a valid lock record; remove it with --id (see `statelock locks show {key}`)"
        );
        return Ok(nothing_or_refused());
    };
    let version = version.clone();
    let row = Row::from_state(key.lock_key(), Some(key.clone()), state, None);
    print!("{}", view::detail(&row));
    // Removed only if still the object just shown.
    let broken = client.break_lock(key, Some(&version)).await?;
    println!(
        "removed unreadable lock object {}; {}",
        key.lock_key(),
        method_text(&broken.method)
    );
    Ok(ExitCode::SUCCESS)
}

async fn bulk(client: &LockClient, age: Duration, args: &UnlockArgs) -> anyhow::Result<ExitCode> {
    let rows = view::rows(client.list(&args.prefix).await?, Some(age));
    let (rows, skipped): (Vec<Row>, Vec<Row>) = rows
        .into_iter()
        .partition(|r| r.info.is_ok() || args.force_unreadable);
    for r in &skipped {
        eprintln!(
            "skipping unreadable lock object {} (add --force-unreadable to remove it)",
            r.lock_key
        );
    }
    if rows.is_empty() {
        eprintln!("no locks{} to remove", view::older_than_note(Some(age)));
        return Ok(nothing_or_refused());
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "will remove"
    };
    println!("{verb} {} lock(s):", rows.len());
    print!("{}", view::table(&rows));
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        match confirm(&format!("Remove these {} lock(s)?", rows.len()))? {
            Answer::Yes => {}
            Answer::NoTerminal => {
                eprintln!(
                    "statelock: refused: not asking without a terminal; pass --yes to remove these locks"
                );
                return Ok(nothing_or_refused());
            }
            Answer::No => {
                eprintln!("nothing removed");
                return Ok(nothing_or_refused());
            }
        }
    }
    let mut failures = 0;
    for row in &rows {
        let Some(key) = &row.state_key else {
            eprintln!("skipping {}: not a valid state key", row.lock_key);
            failures += 1;
            continue;
        };
        let result = match &row.info {
            Ok(info) => client.release(key, &info.id).await.map(|r| r.method),
            Err(_) => client
                .break_lock(key, Some(&row.version))
                .await
                .map(|b| b.method),
        };
        match result {
            Ok(method) => println!("removed {}; {}", row.lock_key, method_text(&method)),
            Err(e) => {
                failures += 1;
                eprintln!("statelock: could not remove {}: {e}", row.lock_key);
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} locks were not removed", rows.len());
    }
    Ok(ExitCode::SUCCESS)
}
