//! The DynamoDB `-md5` digest of a rolled-back state (spec §3).
//!
//! Terraform's `backend "s3"` with `dynamodb_table` keeps the MD5 of every state it writes in
//! the item `LockID = "<bucket>/<key>-md5"`, and refuses a state whose bytes do not match it
//! (after retrying for 10 s). A rollback that changes the state must therefore update that
//! digest, or such Terraform configurations stop working until it is fixed by hand.

use statelock_core::StateKey;

use crate::store_url::StoreUrl;

/// What happened to the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestUpdate {
    /// statelock cannot update DynamoDB yet; the operator must, if the backend uses a table.
    Pending,
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

// ─── PLUG-IN POINT for the DynamoDB digest (issue 6) ─────────────────────────────────────────
// Called once, right after the rolled-back state was written, with the item key and the new
// body's MD5 (lower-case hex). When the DynamoDB crate lands: take the table from a new
// `--dynamodb-table` flag on `state rollback`, PutItem {LockID: digest_key, Digest: digest}
// here (unconditional, as Terraform's `putMD5`), and return `Updated`. Until then the flag is
// not offered and this reports `Pending`, so the caller prints the manual command.
pub async fn update_dynamodb_digest(
    digest_key: &str,
    digest: &str,
) -> anyhow::Result<DigestUpdate> {
    let _ = (digest_key, digest);
    Ok(DigestUpdate::Pending)
}

/// What to tell the operator about a digest that was not updated.
pub fn pending_note(digest_key: &str, digest: &str) -> String {
    format!(
        "DynamoDB digest not updated (not supported yet). If this backend sets dynamodb_table, \
         Terraform will refuse the state until you run:\n  aws dynamodb put-item --table-name <TABLE> \
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
