//! [`LockTable`]: lock and digest items of one table, exactly as Terraform and OpenTofu read
//! and write them (spec §3), plus the full scan a migration needs.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use statelock_core::{LockInfo, Timestamp};

use crate::config::DynamoConfig;
use crate::error::TableError;
use crate::item::{
    ATTR_DIGEST, ATTR_INFO, ATTR_LOCK_ID, ATTR_WRITTEN, ATTR_WRITTEN_BY, TableItem,
    WRITTEN_BY_STATELOCK, digest_id, is_valid_digest,
};

/// How often a lock put is tried when the holder vanishes before it can be read.
const LOCK_ATTEMPTS: usize = 3;

/// The DynamoDB error code of a failed `ConditionExpression`.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// A lock table (partition key `LockID`, type S).
#[derive(Clone, Debug)]
pub struct LockTable {
    client: Client,
    table: String,
    describe: String,
    /// `Limit` of each scan page; the service's default (1 MB of items) if unset.
    scan_page_size: Option<i32>,
}

/// A lock item as read: the record verbatim and decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockItem {
    pub raw_info: String,
    pub info: LockInfo,
}

impl LockTable {
    /// A client for `config.table`.
    pub async fn connect(config: &DynamoConfig) -> LockTable {
        LockTable {
            client: config.client().await,
            table: config.table.clone(),
            describe: config.describe(),
            scan_page_size: None,
        }
    }

    /// Scans `size` items per page (tests use this to cross page boundaries).
    pub fn scan_page_size(mut self, size: i32) -> LockTable {
        self.scan_page_size = Some(size);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// `DynamoDB table T[ via ENDPOINT]`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Puts the lock item `lock_id` holding `info`, only if there is none
    /// (`attribute_not_exists(LockID)`). An item with the same ID counts as ours (a retried
    /// lock); any other holder is [`TableError::Held`].
    pub async fn lock(&self, lock_id: &str, info: &LockInfo) -> Result<(), TableError> {
        self.put_lock_record(lock_id, &info.encode(), &info.id)
            .await
    }

    /// [`LockTable::lock`] with the record's bytes given verbatim, as a migration moves them.
    pub async fn put_lock_record(
        &self,
        lock_id: &str,
        raw_info: &str,
        id: &str,
    ) -> Result<(), TableError> {
        for _ in 0..LOCK_ATTEMPTS {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(
                    self.marked(&[(ATTR_LOCK_ID, lock_id), (ATTR_INFO, raw_info)]),
                ))
                .condition_expression("attribute_not_exists(LockID)")
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(e) if code(&e) == Some(CONDITION_FAILED) => {
                    match self.get_lock(lock_id).await? {
                        Some(held) if held.info.id == id => return Ok(()),
                        Some(held) => {
                            return Err(TableError::Held {
                                table: self.table.clone(),
                                lock_id: lock_id.to_owned(),
                                holder: held.info,
                            });
                        }
                        // Released between the put and the read: try again.
                        None => continue,
                    }
                }
                Err(e) => return Err(self.service("PutItem (lock)", e)),
            }
        }
        Err(TableError::Service {
            table: self.table.clone(),
            operation: "PutItem (lock)",
            source: format!("the lock kept appearing and vanishing over {LOCK_ATTEMPTS} attempts")
                .into(),
        })
    }

    /// The lock item `lock_id`, read consistently; `None` when unlocked.
    pub async fn get_lock(&self, lock_id: &str) -> Result<Option<LockItem>, TableError> {
        let Some(item) = self.get(lock_id, "LockID, Info", "GetItem (lock)").await? else {
            return Ok(None);
        };
        let Some(raw) = item.get(ATTR_INFO).and_then(|v| v.as_s().ok()) else {
            return Err(TableError::Unreadable {
                table: self.table.clone(),
                lock_id: lock_id.to_owned(),
                reason: "the item has no Info attribute".to_owned(),
            });
        };
        let info = LockInfo::decode(raw.as_bytes()).map_err(|e| TableError::Unreadable {
            table: self.table.clone(),
            lock_id: lock_id.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Some(LockItem {
            raw_info: raw.clone(),
            info,
        }))
    }

    /// Releases `lock_id` held under `id`: read, compare the ID, then delete only while `Info`
    /// is still what was read (OpenTofu's `Info = :info`), so a lock taken meanwhile survives.
    pub async fn unlock(&self, lock_id: &str, id: &str) -> Result<LockInfo, TableError> {
        let held = self
            .get_lock(lock_id)
            .await?
            .ok_or_else(|| TableError::NotLocked {
                table: self.table.clone(),
                lock_id: lock_id.to_owned(),
            })?;
        if held.info.id != id {
            return Err(TableError::IdMismatch {
                table: self.table.clone(),
                given: id.to_owned(),
                holder: held.info,
            });
        }
        self.delete_lock_if(lock_id, &held.raw_info).await?;
        Ok(held.info)
    }

    /// Deletes the lock item `lock_id` only if its `Info` is exactly `raw_info`.
    pub async fn delete_lock_if(&self, lock_id: &str, raw_info: &str) -> Result<(), TableError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ATTR_LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .condition_expression("Info = :info")
            .expression_attribute_values(":info", AttributeValue::S(raw_info.to_owned()))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(CONDITION_FAILED) => Err(TableError::Changed {
                table: self.table.clone(),
                lock_id: lock_id.to_owned(),
            }),
            Err(e) => Err(self.service("DeleteItem (lock)", e)),
        }
    }

    /// The digest stored for state object `key` of `bucket`; `None` when there is none.
    pub async fn get_digest(&self, bucket: &str, key: &str) -> Result<Option<String>, TableError> {
        let id = digest_id(bucket, key);
        let item = self.get(&id, "LockID, Digest", "GetItem (digest)").await?;
        Ok(item.and_then(|i| i.get(ATTR_DIGEST)?.as_s().ok().cloned()))
    }

    /// Stores `md5_hex` (32 hex characters, lower-cased here) as the digest of state object
    /// `key` of `bucket`, unconditionally, as Terraform does after every state write.
    pub async fn put_digest(
        &self,
        bucket: &str,
        key: &str,
        md5_hex: &str,
    ) -> Result<(), TableError> {
        if !is_valid_digest(md5_hex) {
            return Err(TableError::Service {
                table: self.table.clone(),
                operation: "PutItem (digest)",
                source: format!("{md5_hex:?} is not 32 hex characters").into(),
            });
        }
        let id = digest_id(bucket, key);
        let digest = md5_hex.to_ascii_lowercase();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(
                self.marked(&[(ATTR_LOCK_ID, &id), (ATTR_DIGEST, &digest)]),
            ))
            .send()
            .await
            .map_err(|e| self.service("PutItem (digest)", e))?;
        Ok(())
    }

    /// Deletes the digest of state object `key` of `bucket` (absent is fine), as Terraform
    /// does when a workspace's state is deleted.
    pub async fn delete_digest(&self, bucket: &str, key: &str) -> Result<(), TableError> {
        self.delete_item(&digest_id(bucket, key)).await
    }

    /// Deletes any item unconditionally (an orphaned digest, say).
    pub async fn delete_item(&self, lock_id: &str) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(ATTR_LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .send()
            .await
            .map_err(|e| self.service("DeleteItem", e))?;
        Ok(())
    }

    /// Every item of the table, following `LastEvaluatedKey` to the end, read consistently.
    /// Items without a string `LockID` are skipped.
    pub async fn scan(&self) -> Result<Vec<TableItem>, TableError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_limit(self.scan_page_size)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.service("Scan", e))?;
            items.extend(page.items().iter().filter_map(TableItem::from_attributes));
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    async fn get(
        &self,
        lock_id: &str,
        projection: &str,
        operation: &'static str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .consistent_read(true)
            .projection_expression(projection)
            .send()
            .await
            .map_err(|e| self.service(operation, e))?;
        Ok(out.item)
    }

    /// An item of string attributes, marked as written by statelock now.
    fn marked(&self, pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        let mut item: HashMap<String, AttributeValue> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect();
        item.insert(
            ATTR_WRITTEN_BY.to_owned(),
            AttributeValue::S(WRITTEN_BY_STATELOCK.to_owned()),
        );
        item.insert(
            ATTR_WRITTEN.to_owned(),
            AttributeValue::S(Timestamp::now().to_rfc3339()),
        );
        item
    }

    fn service<E, R>(&self, operation: &'static str, e: SdkError<E, R>) -> TableError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        TableError::Service {
            table: self.table.clone(),
            operation,
            source: Box::new(e),
        }
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}
