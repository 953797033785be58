//! `GET /v1/api/states`: what is stored, and who holds which lock: the state service's
//! listing (`StateService::list_states`, which `statelock state ls` uses too: a lock whose
//! state does not exist yet is a row of its own, a lock that cannot be read is reported on its
//! row), filtered to what the caller may read and shaped as JSON.

use axum::response::Response;
use serde::Serialize;
use statelock_core::Timestamp;
use statelock_state::LockEntry as Lock;

use crate::app::AppState;
use crate::auth::{self, Permission};
use crate::error::ApiError;

#[derive(Serialize)]
struct StateEntry {
    key: String,
    /// Whether a state object exists (a lock may be held on a state not written yet).
    exists: bool,
    size: u64,
    last_modified: Option<String>,
    /// `null` when unlocked.
    lock: Option<LockEntry>,
}

#[derive(Serialize)]
struct LockEntry {
    id: String,
    who: String,
    operation: String,
    info: String,
    created: String,
    age_seconds: u64,
    /// Set when the lock object is not a valid record (then the other fields are empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<String>,
    /// Set when the lock object could not be read from the store (then the other fields are
    /// empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Serial and lineage are left out: they would cost a read of every state body.
pub async fn list(app: &AppState) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    let states: Vec<StateEntry> = app
        .states()
        .list_states("")
        .await?
        .into_iter()
        .filter(|e| auth::may(app, Permission::Read, &e.key))
        .map(|e| StateEntry {
            key: e.key.as_str().to_owned(),
            exists: e.object.is_some(),
            size: e.object.as_ref().map_or(0, |o| o.size),
            last_modified: e
                .object
                .as_ref()
                .and_then(|o| o.last_modified)
                .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
            lock: e.lock.map(|lock| lock_entry(lock, now)),
        })
        .collect();
    Ok(super::json(&serde_json::json!({ "states": states })))
}

/// A lock entry with nothing known about the holder.
fn lock_entry_empty() -> LockEntry {
    LockEntry {
        id: String::new(),
        who: String::new(),
        operation: String::new(),
        info: String::new(),
        created: String::new(),
        age_seconds: 0,
        unreadable: None,
        error: None,
    }
}

fn lock_entry(lock: Lock, now: Timestamp) -> LockEntry {
    match lock {
        Lock::Held(info) => LockEntry {
            age_seconds: info.created.age_at(now).as_secs(),
            created: info.created.to_rfc3339(),
            id: info.id,
            who: info.who,
            operation: info.operation,
            info: info.info,
            unreadable: None,
            error: None,
        },
        Lock::Unreadable(reason) => LockEntry {
            unreadable: Some(reason),
            ..lock_entry_empty()
        },
        Lock::Failed(e) => LockEntry {
            error: Some(format!("the lock could not be read: {e}")),
            ..lock_entry_empty()
        },
    }
}
