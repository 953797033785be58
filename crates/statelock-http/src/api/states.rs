//! `GET /v1/api/states`: what is stored, and who holds which lock, from one listing.

use std::collections::BTreeSet;

use axum::response::Response;
use serde::Serialize;
use statelock_core::{LOCK_SUFFIX, StateKey, Timestamp};
use statelock_lock::LockState;
use statelock_store::ObjectStoreExt;

use crate::app::AppState;
use crate::auth::{self, Permission};
use crate::error::ApiError;
use statelock_state::history::check_server_key;

#[derive(Serialize)]
struct StateEntry {
    key: String,
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
}

/// Serial and lineage are left out: they would cost a read of every state body.
pub async fn list(app: &AppState) -> Result<Response, ApiError> {
    let objects = app.store().list_all("").await?;
    let locked: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.key.strip_suffix(LOCK_SUFFIX))
        .collect();
    let now = Timestamp::now();
    let mut states = Vec::new();
    for object in &objects {
        let Ok(key) = StateKey::parse(&object.key) else {
            continue;
        };
        if check_server_key(&key).is_err() || !auth::may(app, Permission::Read, &key) {
            continue;
        }
        let lock = if locked.contains(key.as_str()) {
            app.locks()
                .inspect(&key)
                .await?
                .map(|state| lock_entry(state, now))
        } else {
            None
        };
        states.push(StateEntry {
            key: object.key.clone(),
            size: object.size,
            last_modified: object
                .last_modified
                .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
            lock,
        });
    }
    Ok(super::json(&serde_json::json!({ "states": states })))
}

fn lock_entry(state: LockState, now: Timestamp) -> LockEntry {
    match state {
        LockState::Held(held) => LockEntry {
            age_seconds: held.info.created.age_at(now).as_secs(),
            created: held.info.created.to_rfc3339(),
            id: held.info.id,
            who: held.info.who,
            operation: held.info.operation,
            info: held.info.info,
            unreadable: None,
        },
        LockState::Unreadable { reason, .. } => LockEntry {
            id: String::new(),
            who: String::new(),
            operation: String::new(),
            info: String::new(),
            created: String::new(),
            age_seconds: 0,
            unreadable: Some(reason),
        },
    }
}
