//! `GET /v1/api/states`: what is stored, and who holds which lock, from one listing. As in
//! `statelock state ls`, a lock whose state does not exist yet (a first apply holds it) is a
//! row of its own, and a lock that cannot be read is reported on its row, never failing the
//! whole listing.

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
    let objects = app.store().list_all("").await?;
    let stored: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let locked: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.key.strip_suffix(LOCK_SUFFIX))
        .collect();
    // Every state, and every lock of a state that is not stored (yet), in key order.
    let mut rows: Vec<(&str, Option<&statelock_store::ObjectMeta>)> = objects
        .iter()
        .filter(|o| !o.key.ends_with(LOCK_SUFFIX))
        .map(|o| (o.key.as_str(), Some(o)))
        .collect();
    rows.extend(
        locked
            .iter()
            .filter(|k| !stored.contains(*k))
            .map(|k| (*k, None)),
    );
    rows.sort_by_key(|(k, _)| *k);
    let now = Timestamp::now();
    let mut states = Vec::new();
    for (key_text, object) in rows {
        let Ok(key) = StateKey::parse(key_text) else {
            continue;
        };
        if check_server_key(&key).is_err() || !auth::may(app, Permission::Read, &key) {
            continue;
        }
        let lock = if locked.contains(key.as_str()) {
            match app.locks().inspect(&key).await {
                Ok(state) => state.map(|state| lock_entry(state, now)),
                Err(e) => Some(LockEntry {
                    error: Some(format!("the lock could not be read: {e}")),
                    ..lock_entry_empty()
                }),
            }
        } else {
            None
        };
        // A lock released between the listing and its read, on a state not written: nothing.
        if object.is_none() && lock.is_none() {
            continue;
        }
        states.push(StateEntry {
            key: key_text.to_owned(),
            exists: object.is_some(),
            size: object.map_or(0, |o| o.size),
            last_modified: object
                .and_then(|o| o.last_modified)
                .map(|t| Timestamp::from_system_time(t).to_rfc3339()),
            lock,
        });
    }
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
            error: None,
        },
        LockState::Unreadable { reason, .. } => LockEntry {
            unreadable: Some(reason),
            ..lock_entry_empty()
        },
    }
}
