//! A second lock taken together with the `.tflock` object, for the migration window in which
//! some clients still lock elsewhere (a DynamoDB table: Terraform's and OpenTofu's
//! `dynamodb_table`, spec §2.7).
//!
//! The trait lives here and its implementations elsewhere (`statelock-dynamodb`), so this crate
//! keeps no dependency on any cloud SDK and its unit tests can use a fake.

use async_trait::async_trait;
use statelock_core::{LockInfo, StateKey};

/// A lock kept beside the `.tflock` object. [`crate::LockClient`] takes it after the file lock
/// and rolls the file lock back when it fails; releases both; and tells it about every state
/// write and delete, because clients of the other mechanism also check a digest of the state.
#[async_trait]
pub trait SecondaryLock: std::fmt::Debug + Send + Sync + 'static {
    /// Where the lock lives, for messages: e.g. `DynamoDB table tf-locks`.
    fn describe(&self) -> String;

    /// Takes the lock for `key` with the complete record `info`. Taking it again with the same
    /// ID succeeds (a retried LOCK).
    async fn acquire(&self, key: &StateKey, info: &LockInfo) -> Result<(), SecondaryError>;

    /// Releases the lock on `key` held under `id`.
    async fn release(&self, key: &StateKey, id: &str) -> Result<(), SecondaryError>;

    /// `body` is now the state at `key`: keep whatever the other clients check it against.
    async fn state_written(&self, key: &StateKey, body: &[u8]) -> Result<(), SecondaryError>;

    /// The state at `key` was deleted.
    async fn state_deleted(&self, key: &StateKey) -> Result<(), SecondaryError>;
}

/// Why a [`SecondaryLock`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecondaryError {
    /// Someone else holds the lock there.
    #[error("already locked by {} (lock ID {})", holder.who, holder.id)]
    Held { holder: LockInfo },
    /// There is no lock to release.
    #[error("not locked")]
    NotLocked,
    /// The lock there is held under another ID.
    #[error("lock ID {given:?} does not match the existing lock ID {:?} held by {}", holder.id, holder.who)]
    IdMismatch { given: String, holder: LockInfo },
    /// Anything else (unreachable service, malformed item...), with its causes on one line.
    #[error("{0}")]
    Failed(String),
}
