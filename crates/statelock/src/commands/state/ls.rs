//! `state ls`: every state object in the store, with its size, last change and lock holder:
//! the state service's listing (`StateService::list_states`, shared with the server's API),
//! as a table or JSON. States locked before their first write get a row too, and a lock that
//! cannot be read is reported on its row, never failing the listing.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use statelock_core::Timestamp;
use statelock_lock::LockClient;
use statelock_state::{LockEntry, StateRules, StateService};

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
    let states = StateService::new(store.clone(), locks, StateRules::default());
    let rows = rows(&states, &args.prefix).await?;
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
async fn rows(states: &StateService, prefix: &str) -> anyhow::Result<Vec<Row>> {
    let rows = states
        .list_states(prefix)
        .await?
        .into_iter()
        .map(|e| {
            let (lock_state, locked_by, lock_id, lock_error) = match e.lock {
                None => (None, None, None, None),
                Some(LockEntry::Held(info)) => {
                    (Some(LockStatus::Held), Some(info.who), Some(info.id), None)
                }
                Some(LockEntry::Unreadable(reason)) => (
                    Some(LockStatus::Unreadable),
                    None,
                    None,
                    Some(format!("not a lock record: {reason}")),
                ),
                Some(LockEntry::Failed(e)) => (
                    Some(LockStatus::Unreadable),
                    None,
                    None,
                    Some(format!("cannot read it: {e}")),
                ),
            };
            Row {
                key: e.key.as_str().to_owned(),
                state_exists: e.object.is_some(),
                size: e.object.as_ref().map(|o| o.size),
                last_modified: e
                    .object
                    .as_ref()
                    .and_then(|o| o.last_modified)
                    .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
                lock_state,
                locked_by,
                lock_id,
                lock_error,
            }
        })
        .collect();
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
        let states = StateService::new(store.clone(), locks, StateRules::default());
        let rows = rows(&states, "").await.unwrap();
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
