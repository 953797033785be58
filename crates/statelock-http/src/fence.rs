//! Fencing: a state write or delete is only accepted from whoever holds the state's lock.
//!
//! A request carrying `?ID=` must name the current holder; one without an ID is refused while
//! anyone holds the lock. With no lock and no ID the write goes through, as with
//! `terraform -lock=false`.

use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockClient, LockState};

use crate::error::ApiError;

/// Checks that a write under `id` (or without one) may proceed on `key` now; returns the
/// holder's record when the write is made under the lock, so callers need not read it again.
pub async fn check(
    locks: &LockClient,
    key: &StateKey,
    id: Option<&str>,
) -> Result<Option<LockInfo>, ApiError> {
    match (locks.inspect(key).await?, id) {
        (None, None) => Ok(None),
        (None, Some(id)) => Err(ApiError::conflict(format!(
            "the write carries lock ID {id} but state {key} is not locked: the lock was released or \
             force-unlocked, so this writer no longer holds it"
        ))),
        (Some(LockState::Held(held)), Some(id)) if held.info.id == id => Ok(Some(held.info)),
        (Some(LockState::Held(held)), Some(id)) => Err(ApiError::Conflict {
            message: format!(
                "the write carries lock ID {id} but state {key} is locked by {} under lock ID {}",
                held.info.who, held.info.id
            ),
            holder: Some(Box::new(held.info)),
        }),
        (Some(LockState::Held(held)), None) => Err(ApiError::Locked {
            message: format!(
                "state {key} is locked by {} under lock ID {}; a write without ?ID= is refused while it is locked",
                held.info.who, held.info.id
            ),
            holder: Box::new(held.info),
        }),
        (Some(LockState::Unreadable { reason, .. }), _) => {
            Err(ApiError::LockedUnreadable(format!(
                "state {key} is locked by an unreadable lock object {} ({reason}); writes are refused \
             until it is removed with an UNLOCK with an empty body (terraform force-unlock)",
                key.lock_key()
            )))
        }
    }
}
