//! Fencing: a state write or delete is only accepted from whoever holds the state's lock.
//!
//! A write carrying a lock ID must name the current holder; one without an ID is refused while
//! anyone holds the lock. With no lock and no ID the write goes through, as with
//! `terraform -lock=false`. The state service and the API's rollback ask
//! [`crate::LockClient::fence`] right before their compare-and-swap (`statelock state
//! rollback` checks its own lock's version, which is stricter); with a TTL, the state service
//! asks again when the first answer is older than [`crate::fence_fresh_for`] by the time of
//! the swap (see `takeover`).

use statelock_core::{LockInfo, StateKey};

use crate::error::LockError;

/// Why a write may not proceed; the messages are worded for the writer.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The write names a lock, but there is none: it was released or force-unlocked.
    #[error(
        "the write carries lock ID {id} but state {key} is not locked: the lock was released or \
         force-unlocked, so this writer no longer holds it"
    )]
    NotLocked { key: StateKey, id: String },

    /// The write names a lock that is not the one held.
    #[error(
        "the write carries lock ID {id} but state {key} is locked by {} under lock ID {}",
        holder.who,
        holder.id
    )]
    OtherHolder {
        key: StateKey,
        id: String,
        holder: Box<LockInfo>,
    },

    /// The write names no lock while someone holds one.
    #[error(
        "state {key} is locked by {} under lock ID {}; a write without the lock's ID is refused \
         while it is locked",
        holder.who,
        holder.id
    )]
    LockedWithoutId {
        key: StateKey,
        holder: Box<LockInfo>,
    },

    /// The lock object is not a lock record, so nobody can prove to hold it.
    #[error(
        "state {key} is locked by an unreadable lock object {} ({reason}); writes are refused \
         until it is removed (terraform force-unlock, or statelock locks unlock \
         --force-unreadable)",
        key.lock_key()
    )]
    Unreadable { key: StateKey, reason: String },

    /// The lock could not be read.
    #[error(transparent)]
    Lock(#[from] LockError),
}
