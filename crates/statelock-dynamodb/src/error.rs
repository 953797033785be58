//! Why a lock-table operation failed. Conflicts name the holder.

use statelock_core::LockInfo;

/// A lock-table operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The lock item exists under another ID.
    #[error("{lock_id} is already locked in DynamoDB table {table} by {} (lock ID {})\n{}", holder.who, holder.id, holder.render())]
    Held {
        table: String,
        lock_id: String,
        holder: LockInfo,
    },
    /// The lock item exists but has no readable `Info`, so nobody can prove to hold it
    /// (Terraform then says "unexpected end of JSON input", terraform#14513).
    #[error(
        "{lock_id} is locked in DynamoDB table {table} by an item without a readable Info: {reason}"
    )]
    Unreadable {
        table: String,
        lock_id: String,
        reason: String,
    },
    /// There is no lock item.
    #[error("{lock_id} is not locked in DynamoDB table {table}")]
    NotLocked { table: String, lock_id: String },
    /// The lock item is held under another ID than the one given.
    #[error("lock ID {given:?} does not match the lock ID {:?} of {} in DynamoDB table {table}", holder.id, holder.who)]
    IdMismatch {
        table: String,
        given: String,
        holder: LockInfo,
    },
    /// The item changed between reading and deleting it; nothing was deleted.
    #[error(
        "{lock_id} changed in DynamoDB table {table} while it was being removed; nothing was deleted"
    )]
    Changed { table: String, lock_id: String },
    /// The service failed or refused (unreachable, no such table, access denied...).
    #[error("DynamoDB table {table}: {operation} failed")]
    Service {
        table: String,
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
