//! Why a lock operation failed. Every conflict carries the holder's record, so callers can
//! say who holds the lock (and Terraform clients can decide to wait).

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_store::{StoreError, Version};

/// A lock operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds the lock.
    #[error("state {key} is already locked by {} (lock ID {})\n{}", holder.who, holder.id, holder.render())]
    Held {
        key: StateKey,
        holder: LockInfo,
        version: Version,
    },

    /// A lock object exists but its body is not a lock record, so nobody can prove to hold it.
    /// Terraform's `force-unlock` cannot remove such an object; [`crate::LockClient::break_lock`] can.
    #[error("state {key} is locked by an unreadable lock object {}: {reason}", key.lock_key())]
    Unreadable {
        key: StateKey,
        raw: Bytes,
        version: Version,
        reason: String,
    },

    /// There is no lock to release.
    #[error("state {key} is not locked")]
    NotLocked { key: StateKey },

    /// The lock is held under a different ID than the one given.
    #[error("lock ID {given:?} does not match the existing lock ID {:?} held by {}\n{}", holder.id, holder.who, holder.render())]
    IdMismatch {
        key: StateKey,
        given: String,
        holder: LockInfo,
    },

    /// The lock object changed between reading it and deleting it (another client broke or
    /// took it over); nothing was deleted.
    #[error("the lock on {key} changed while it was being released; nothing was deleted")]
    Changed { key: StateKey },

    /// The `.tflock` lock was free but the secondary lock (e.g. DynamoDB, during a
    /// migration) is held; the `.tflock` lock just taken was rolled back.
    #[error("state {key} is already locked in {place} by {} (lock ID {})\n{}", holder.who, holder.id, holder.render())]
    HeldIn {
        key: StateKey,
        place: String,
        holder: LockInfo,
    },

    /// The secondary lock failed for another reason; `message` says what happened to the
    /// `.tflock` lock as well.
    #[error("state {key}: {place}: {message}")]
    Secondary {
        key: StateKey,
        place: String,
        message: String,
    },

    /// The lock is idle past its TTL, but this client also takes a secondary lock, which a
    /// takeover cannot move: the lock is left with its holder.
    #[error(
        "state {key} is locked by {} (lock ID {}) and idle for longer than the TTL, but it is not \
         taken over: the lock is also held in {place}, which a takeover would leave with the old \
         holder",
        holder.who,
        holder.id
    )]
    TakeoverWithSecondary {
        key: StateKey,
        place: String,
        holder: LockInfo,
    },

    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LockError {
    /// The holder's record, when the error is a conflict with a readable lock.
    pub fn holder(&self) -> Option<&LockInfo> {
        match self {
            LockError::Held { holder, .. }
            | LockError::HeldIn { holder, .. }
            | LockError::TakeoverWithSecondary { holder, .. }
            | LockError::IdMismatch { holder, .. } => Some(holder),
            _ => None,
        }
    }
}
