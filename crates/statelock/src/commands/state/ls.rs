//! `state ls`: every state object in the store, with its size, last change and lock holder,
//! from one listing (plus one read per locked state). States locked before their first write
//! get a row too, and a lock that cannot be read is reported on its row, never failing the
//! listing.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use statelock_core::{LOCK_SUFFIX, StateKey, Timestamp};
use statelock_lock::{LockClient, LockState};
use statelock_state::history::RESERVED_PREFIX;
use statelock_store::{ObjectMeta, ObjectStoreExt};

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
    /// Whether the state object exists; a lock can come before the first state is written.
    state_exists: bool,
    size: Option<u64>,
    last_modified: Option<String>,
    /// `held`, `unreadable` (a lock object that is no lock record, or could not be read), or
    /// `None` when unlocked.
    lock_state: Option<LockStatus>,
    /// The holder's `Who`.
    locked_by: Option<String>,
    lock_id: Option<String>,
    /// Why the lock is `unreadable`.
    lock_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum LockStatus {
    Held,
    Unreadable,
}

pub async fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let locks = LockClient::new(store.clone(), args.store.bucket()?);
    let rows = rows(&locks, &args.prefix).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        eprintln!("no states under {}", store.describe());
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let locked_by = match r.lock_state {
                    Some(LockStatus::Held) => r.locked_by.clone().unwrap_or_default(),
                    Some(LockStatus::Unreadable) => "(unreadable lock)".to_owned(),
                    None => "-".to_owned(),
                };
                vec![
                    r.key.clone(),
                    r.size.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    match (&r.last_modified, r.state_exists) {
                        (_, false) => "(no state yet)".to_owned(),
                        (Some(t), true) => t.clone(),
                        (None, true) => "?".to_owned(),
                    },
                    locked_by,
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["STATE KEY", "SIZE", "LAST MODIFIED", "LOCKED BY"], &cells)
        );
        for r in rows.iter().filter(|r| r.lock_error.is_some()) {
            let why = r.lock_error.as_deref().unwrap_or_default();
            eprintln!("statelock: the lock of {} is unreadable: {why}", r.key);
        }
    }
    Ok(if rows.is_empty() {
        nothing_or_refused()
    } else {
        ExitCode::SUCCESS
    })
}

/// One row per state object and per lock without a state object, in key order; a lock that
/// cannot be read is reported on its row rather than failing the listing.
async fn rows(locks: &LockClient, prefix: &str) -> anyhow::Result<Vec<Row>> {
    let objects = locks.store().list_all(prefix).await?;
    // Key → the state object, if there is one; lock objects add their state's key.
    let mut keys: BTreeMap<StateKey, Option<&ObjectMeta>> = BTreeMap::new();
    let mut locked = BTreeSet::new();
    for object in &objects {
        // statelock's own objects (history, probes) and keys no state can have.
        if object.key.starts_with(RESERVED_PREFIX) {
            continue;
        }
        let (state, is_lock) = match object.key.strip_suffix(LOCK_SUFFIX) {
            Some(state) => (state, true),
            None => (object.key.as_str(), false),
        };
        let Ok(key) = StateKey::parse(state) else {
            continue;
        };
        if is_lock {
            locked.insert(key.clone());
            keys.entry(key).or_insert(None);
        } else {
            keys.insert(key, Some(object));
        }
    }
    let mut rows = Vec::with_capacity(keys.len());
    for (key, object) in keys {
        let mut row = Row {
            key: key.as_str().to_owned(),
            state_exists: object.is_some(),
            size: object.map(|o| o.size),
            last_modified: object
                .and_then(|o| o.last_modified)
                .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
            lock_state: None,
            locked_by: None,
            lock_id: None,
            lock_error: None,
        };
        if locked.contains(&key) {
            match locks.inspect(&key).await {
                Ok(Some(LockState::Held(held))) => {
                    row.lock_state = Some(LockStatus::Held);
                    row.locked_by = Some(held.info.who);
                    row.lock_id = Some(held.info.id);
                }
                Ok(Some(LockState::Unreadable { reason, .. })) => {
                    row.lock_state = Some(LockStatus::Unreadable);
                    row.lock_error = Some(format!("not a lock record: {reason}"));
                }
                // Released since the listing.
                Ok(None) => {}
                Err(e) => {
                    row.lock_state = Some(LockStatus::Unreadable);
                    row.lock_error = Some(format!("cannot read it: {e}"));
                }
            }
        }
        // A lock released since the listing leaves no row for a state that never existed.
        if row.state_exists || row.lock_state.is_some() {
            rows.push(row);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use statelock_core::LockInfo;
    use statelock_store::{Fault, FaultyStore, MemoryStore, ObjectStore, Op, PutMode, PutOptions};

    use super::*;

    #[tokio::test]
    async fn a_failed_lock_read_is_reported_on_its_row_and_locks_without_state_are_listed() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let put = |key: &'static str, body: Vec<u8>| {
            let store = store.clone();
            async move {
                let options = PutOptions::new(PutMode::Overwrite);
                store.put(key, Bytes::from(body), options).await.unwrap();
            }
        };
        let lock = LockInfo::new("OperationTypeApply", "alice@laptop", "1.10.0")
            .encode()
            .into_bytes();
        put("a.tfstate", b"{}".to_vec()).await;
        put("a.tfstate.tflock", lock.clone()).await;
        put("b.tfstate", b"{}".to_vec()).await;
        put("b.tfstate.tflock", b"garbage".to_vec()).await;
        put("c.tfstate", b"{}".to_vec()).await;
        put("c.tfstate.tflock", lock.clone()).await;
        put("new.tfstate.tflock", lock).await;
        put(".statelock/history/a.tfstate/x.tfstate", b"{}".to_vec()).await;
        store.inject_for_key(Op::Get, "c.tfstate.tflock", Fault::Error);

        let locks = LockClient::new(store.clone(), "b");
        let rows = rows(&locks, "").await.unwrap();
        let seen: Vec<(&str, bool, Option<LockStatus>, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.state_exists,
                    r.lock_state,
                    r.locked_by.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "a.tfstate",
                    true,
                    Some(LockStatus::Held),
                    Some("alice@laptop")
                ),
                ("b.tfstate", true, Some(LockStatus::Unreadable), None),
                ("c.tfstate", true, Some(LockStatus::Unreadable), None),
                (
                    "new.tfstate",
                    false,
                    Some(LockStatus::Held),
                    Some("alice@laptop")
                ),
            ]
        );
        assert!(
            rows[2]
                .lock_error
                .as_deref()
                .unwrap()
                .contains("cannot read it")
        );
        let json = serde_json::to_value(&rows[1]).unwrap();
        assert_eq!(json["lock_state"], "unreadable");
    }
}
