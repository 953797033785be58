//! The DynamoDB `-md5` digest of a rolled-back state (spec §3).
//!
//! Terraform's `backend "s3"` with `dynamodb_table` keeps the MD5 of every state it writes in
//! the item `LockID = "<bucket>/<key>-md5"`, and refuses a state whose bytes do not match it
//! (after retrying for 10 s). A rollback that changes the state must therefore update that
//! digest, or such Terraform configurations stop working until it is fixed by hand.

use anyhow::Context as _;
use clap::Args;
use statelock_core::StateKey;
use statelock_dynamodb::{DynamoConfig, LockTable};

use crate::store_url::StoreUrl;

/// The lock table whose digest item a rollback keeps current.
#[derive(Debug, Args)]
#[command(next_help_heading = "DynamoDB digest (backends that set dynamodb_table)")]
pub struct DigestArgs {
    /// The backend's `dynamodb_table`: after the write, the state's `-md5` digest item is set
    /// to the new state's MD5, so Terraform with `dynamodb_table` reads the rolled-back state
    /// (a stale digest makes it refuse the state). The table is read once before anything is
    /// written, so a wrong name or missing access fails early. Region and credentials from
    /// the standard AWS environment (or --s3-region).
    #[arg(long, env = "STATELOCK_DYNAMODB_TABLE", value_name = "TABLE")]
    pub dynamodb_table: Option<String>,

    /// Endpoint of a DynamoDB-compatible server for --dynamodb-table; AWS if unset.
    #[arg(
        long,
        env = "STATELOCK_DYNAMODB_ENDPOINT",
        value_name = "URL",
        requires = "dynamodb_table"
    )]
    pub dynamodb_endpoint: Option<String>,
}

/// What happened to the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestUpdate {
    /// The digest item now holds the new MD5.
    Updated,
    /// No --dynamodb-table was given; if the backend uses a table, the operator must update it.
    Pending,
}

/// A reachable lock table and the digest item of one state in it.
pub struct DigestTarget {
    table: LockTable,
    bucket: String,
    object_key: String,
}

impl DigestTarget {
    /// The table of `args` for state `key` of the store at `url`, after one read that proves
    /// it answers; `None` without --dynamodb-table.
    pub async fn connect(
        args: &DigestArgs,
        url: &StoreUrl,
        key: &StateKey,
        region: Option<String>,
    ) -> anyhow::Result<Option<DigestTarget>> {
        let Some(table) = &args.dynamodb_table else {
            return Ok(None);
        };
        let StoreUrl::S3 { bucket, prefix } = url else {
            anyhow::bail!(
                "--dynamodb-table needs an s3:// store: digests belong to Terraform's backend \"s3\""
            );
        };
        let object_key = match prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_string(),
        };
        let config = DynamoConfig::new(table)
            .endpoint(args.dynamodb_endpoint.clone())
            .region(region);
        let table = LockTable::connect(&config).await;
        table
            .get_digest(bucket, &object_key)
            .await
            .with_context(|| format!("cannot read the digest of {key} in {}", config.describe()))?;
        Ok(Some(DigestTarget {
            table,
            bucket: bucket.clone(),
            object_key,
        }))
    }
}

/// `<bucket>/<object key>-md5`, the item key Terraform reads the state's digest from; `None`
/// for stores that are not S3 buckets, which Terraform's S3 backend never uses.
pub fn digest_key(url: &StoreUrl, key: &StateKey) -> Option<String> {
    let StoreUrl::S3 { bucket, prefix } = url else {
        return None;
    };
    Some(match prefix {
        Some(prefix) => format!("{bucket}/{prefix}/{key}-md5"),
        None => format!("{bucket}/{key}-md5"),
    })
}

/// Sets the digest to `digest` (the new body's MD5, lower-case hex) right after the
/// rolled-back state was written: unconditionally, as Terraform's own `putMD5` does.
pub async fn update_dynamodb_digest(
    target: Option<&DigestTarget>,
    digest: &str,
) -> anyhow::Result<DigestUpdate> {
    let Some(target) = target else {
        return Ok(DigestUpdate::Pending);
    };
    target
        .table
        .put_digest(&target.bucket, &target.object_key, digest)
        .await?;
    Ok(DigestUpdate::Updated)
}

/// What to tell the operator about a digest that was not updated.
pub fn pending_note(digest_key: &str, digest: &str) -> String {
    format!(
        "DynamoDB digest not updated (no --dynamodb-table given). If this backend sets \
         dynamodb_table, Terraform will refuse the state until the digest matches: run again \
         with --dynamodb-table, or\n  aws dynamodb put-item --table-name <TABLE> \
         --item '{{\"LockID\":{{\"S\":\"{digest_key}\"}},\"Digest\":{{\"S\":\"{digest}\"}}}}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_keys_carry_bucket_and_prefix() {
        let key = StateKey::parse("env:/dev/app.tfstate").unwrap();
        let url = |s| StoreUrl::parse(s).unwrap();
        assert_eq!(
            digest_key(&url("s3://b"), &key).as_deref(),
            Some("b/env:/dev/app.tfstate-md5")
        );
        assert_eq!(
            digest_key(&url("s3://b/team/"), &key).as_deref(),
            Some("b/team/env:/dev/app.tfstate-md5")
        );
        assert_eq!(digest_key(&url("file:///tmp/x"), &key), None);
    }
}
