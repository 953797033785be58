//! `state ls`: every state object in the store, with its size, last change and lock holder,
//! from one listing (plus one read per locked state).

use std::collections::BTreeSet;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use statelock_core::{LOCK_SUFFIX, StateKey, Timestamp};
use statelock_http::server_history::RESERVED_PREFIX;
use statelock_lock::{LockClient, LockState};
use statelock_store::ObjectStoreExt;

use crate::commands::nothing_or_refused;
use crate::commands::store_args::StoreArgs;
use crate::commands::table;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only state keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,

    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Serialize)]
struct Row {
    key: String,
    size: u64,
    last_modified: Option<String>,
    /// The holder's `Who`, `unreadable lock`, or `None` when unlocked.
    locked_by: Option<String>,
    lock_id: Option<String>,
}

pub async fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let objects = store.list_all(&args.prefix).await?;
    let locked: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.key.strip_suffix(LOCK_SUFFIX))
        .collect();
    let locks = LockClient::new(store.clone(), args.store.bucket()?);
    let mut rows = Vec::new();
    for object in &objects {
        // Lock objects, statelock's own objects (history, probes), and keys no state can have.
        if object.key.ends_with(LOCK_SUFFIX) || object.key.starts_with(RESERVED_PREFIX) {
            continue;
        }
        let Ok(key) = StateKey::parse(&object.key) else {
            continue;
        };
        let (locked_by, lock_id) = if locked.contains(key.as_str()) {
            match locks.inspect(&key).await? {
                Some(LockState::Held(held)) => (Some(held.info.who), Some(held.info.id)),
                Some(LockState::Unreadable { .. }) => (Some("unreadable lock".to_owned()), None),
                None => (None, None),
            }
        } else {
            (None, None)
        };
        rows.push(Row {
            key: object.key.clone(),
            size: object.size,
            last_modified: object
                .last_modified
                .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
            locked_by,
            lock_id,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        eprintln!("no states under {}", store.describe());
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.key.clone(),
                    r.size.to_string(),
                    r.last_modified.clone().unwrap_or_else(|| "?".into()),
                    r.locked_by.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["STATE KEY", "SIZE", "LAST MODIFIED", "LOCKED BY"], &cells)
        );
    }
    Ok(if rows.is_empty() {
        nothing_or_refused()
    } else {
        ExitCode::SUCCESS
    })
}
