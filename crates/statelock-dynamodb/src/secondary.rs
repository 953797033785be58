//! The lock table as the second lock of dual-lock mode: during a migration, clients still
//! configured with `dynamodb_table` only see DynamoDB locks, so statelock takes both and keeps
//! every state's `-md5` digest current for them (spec §2.7, §2.8).

use async_trait::async_trait;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{SecondaryError, SecondaryLock};

use crate::error::TableError;
use crate::item::{lock_id, md5_hex};
use crate::table::LockTable;

/// [`LockTable`] for the states of one bucket (and key prefix, if the store has one).
#[derive(Clone, Debug)]
pub struct DynamoSecondary {
    table: LockTable,
    bucket: String,
    prefix: Option<String>,
}

impl DynamoSecondary {
    /// Locks for states of `bucket`; `prefix` is the store's key prefix, which Terraform's
    /// keys include, so `LockID` is `<bucket>/<prefix>/<key>`.
    pub fn new(table: LockTable, bucket: impl Into<String>, prefix: Option<String>) -> Self {
        DynamoSecondary {
            table,
            bucket: bucket.into(),
            prefix: prefix.filter(|p| !p.is_empty()),
        }
    }

    /// The S3 object key of state `key`, as Terraform names it.
    fn object_key(&self, key: &StateKey) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{}", key.as_str()),
            None => key.as_str().to_owned(),
        }
    }
}

#[async_trait]
impl SecondaryLock for DynamoSecondary {
    fn describe(&self) -> String {
        self.table.describe().to_owned()
    }

    async fn acquire(&self, key: &StateKey, info: &LockInfo) -> Result<(), SecondaryError> {
        let id = lock_id(&self.bucket, &self.object_key(key));
        self.table.lock(&id, info).await.map_err(secondary_error)
    }

    async fn release(&self, key: &StateKey, id: &str) -> Result<(), SecondaryError> {
        let lock = lock_id(&self.bucket, &self.object_key(key));
        self.table
            .unlock(&lock, id)
            .await
            .map(drop)
            .map_err(secondary_error)
    }

    async fn state_written(&self, key: &StateKey, body: &[u8]) -> Result<(), SecondaryError> {
        self.table
            .put_digest(&self.bucket, &self.object_key(key), &md5_hex(body))
            .await
            .map_err(secondary_error)
    }

    async fn state_deleted(&self, key: &StateKey) -> Result<(), SecondaryError> {
        self.table
            .delete_digest(&self.bucket, &self.object_key(key))
            .await
            .map_err(secondary_error)
    }
}

fn secondary_error(e: TableError) -> SecondaryError {
    match e {
        TableError::Held { holder, .. } => SecondaryError::Held { holder },
        TableError::NotLocked { .. } => SecondaryError::NotLocked,
        TableError::IdMismatch { given, holder, .. } => {
            SecondaryError::IdMismatch { given, holder }
        }
        other => SecondaryError::Failed(statelock_store::error_chain(&other)),
    }
}
