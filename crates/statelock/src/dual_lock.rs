//! `serve --dynamodb-table`: dual-lock mode for the migration window, in which clients still
//! configured with `dynamodb_table` only see DynamoDB locks and check `-md5` digests.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use statelock_dynamodb::{DynamoConfig, DynamoSecondary, LockTable, lock_id};
use statelock_lock::SecondaryLock;

use crate::store_url::StoreUrl;

#[derive(Debug, Args)]
#[command(next_help_heading = "Dual-lock mode, while clients still use a DynamoDB lock table")]
pub struct DualLockArgs {
    /// Also lock in this DynamoDB table (Terraform's `dynamodb_table`): every LOCK takes the
    /// .tflock lock, then the table's item (attribute_not_exists(LockID)), and releases the
    /// first if the second is held (423 naming the holder); UNLOCK releases both; every state
    /// write updates the state's `-md5` digest item, so clients still on `dynamodb_table`
    /// exclude this server's clients and keep reading the state. S3 stores only; not with
    /// --lock-ttl. Region and credentials from the standard AWS environment.
    #[arg(long, env = "STATELOCK_DYNAMODB_TABLE", value_name = "TABLE")]
    pub dynamodb_table: Option<String>,

    /// Endpoint of a DynamoDB-compatible server for --dynamodb-table; AWS if unset.
    #[arg(long, env = "STATELOCK_DYNAMODB_ENDPOINT", value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
}

impl DualLockArgs {
    /// Checks the combination with the other settings before anything starts.
    pub fn validate(&self, store: &StoreUrl, lock_ttl: bool) -> anyhow::Result<()> {
        if self.dynamodb_table.is_none() {
            if self.dynamodb_endpoint.is_some() {
                anyhow::bail!("--dynamodb-endpoint needs --dynamodb-table");
            }
            return Ok(());
        }
        if !matches!(store, StoreUrl::S3 { .. }) {
            anyhow::bail!(
                "--dynamodb-table needs an s3:// store: it serves clients that read the same bucket with `dynamodb_table`"
            );
        }
        if lock_ttl {
            anyhow::bail!(
                "--dynamodb-table cannot be combined with --lock-ttl: a takeover would replace the .tflock lock but not the DynamoDB one"
            );
        }
        Ok(())
    }

    /// The secondary lock for the store's bucket, after one read that proves the table
    /// answers; `None` without --dynamodb-table.
    pub async fn open(
        &self,
        store: &StoreUrl,
        bucket: &str,
        region: Option<String>,
    ) -> anyhow::Result<Option<Arc<dyn SecondaryLock>>> {
        let (Some(table), StoreUrl::S3 { prefix, .. }) = (&self.dynamodb_table, store) else {
            return Ok(None);
        };
        let config = DynamoConfig::new(table)
            .endpoint(self.dynamodb_endpoint.clone())
            .region(region);
        let table = LockTable::connect(&config).await;
        table
            .get_lock(&lock_id(bucket, ".statelock/start-up-check"))
            .await
            .with_context(|| format!("cannot read {}", config.describe()))?;
        tracing::info!(table = %config.describe(), "dual-lock mode: every lock is also taken in DynamoDB");
        Ok(Some(Arc::new(DynamoSecondary::new(
            table,
            bucket,
            prefix.clone(),
        ))))
    }
}
