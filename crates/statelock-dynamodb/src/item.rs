//! The items of a lock table (spec §3), told apart by their attributes, and their keys.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use statelock_core::{LockInfo, Timestamp};

/// The value of `WrittenBy` on items statelock writes.
pub const WRITTEN_BY_STATELOCK: &str = "statelock";

pub(crate) const ATTR_LOCK_ID: &str = "LockID";
pub(crate) const ATTR_INFO: &str = "Info";
pub(crate) const ATTR_DIGEST: &str = "Digest";
pub(crate) const ATTR_WRITTEN_BY: &str = "WrittenBy";
pub(crate) const ATTR_WRITTEN: &str = "Written";

/// Suffix of a digest item's `LockID`.
const DIGEST_SUFFIX: &str = "-md5";

/// The lock item's `LockID` (and the lock record's `Path`) for state object `key` in `bucket`.
pub fn lock_id(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// The digest item's `LockID` for state object `key` in `bucket`.
pub fn digest_id(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}{DIGEST_SUFFIX}")
}

/// What a digest item holds for `body`: 32 lower-case hex characters.
pub fn md5_hex(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One item of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableItem {
    pub lock_id: String,
    pub kind: ItemKind,
    /// Carries `WrittenBy = "statelock"`: written by statelock, not by Terraform or OpenTofu.
    pub written_by_statelock: bool,
    /// statelock's `Written` time, when present.
    pub written: Option<Timestamp>,
}

/// What an item is, by its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A held lock: `Info` is the lock record, kept verbatim.
    Lock {
        raw_info: String,
        info: Result<LockInfo, String>,
    },
    /// A state digest: `Digest` as stored (normally 32 lower-case hex characters).
    Digest { digest: String },
    /// Neither; the attribute names found.
    Other { attributes: Vec<String> },
}

impl TableItem {
    /// Classifies a raw item; `None` when it has no string `LockID` (not a lock table item).
    pub fn from_attributes(item: &HashMap<String, AttributeValue>) -> Option<TableItem> {
        let lock_id = string(item, ATTR_LOCK_ID)?.to_owned();
        let kind = if let Some(raw) = string(item, ATTR_INFO) {
            ItemKind::Lock {
                raw_info: raw.to_owned(),
                info: LockInfo::decode(raw.as_bytes()).map_err(|e| e.to_string()),
            }
        } else if let Some(digest) = string(item, ATTR_DIGEST) {
            ItemKind::Digest {
                digest: digest.to_owned(),
            }
        } else {
            let mut attributes: Vec<String> = item.keys().cloned().collect();
            attributes.sort();
            ItemKind::Other { attributes }
        };
        Some(TableItem {
            lock_id,
            kind,
            written_by_statelock: string(item, ATTR_WRITTEN_BY) == Some(WRITTEN_BY_STATELOCK),
            written: string(item, ATTR_WRITTEN).and_then(|t| Timestamp::parse_rfc3339(t).ok()),
        })
    }

    /// The bucket and state key the item belongs to: `LockID` split at its first `/` (bucket
    /// names have none), without the `-md5` suffix for digests.
    pub fn bucket_and_key(&self) -> Option<(&str, &str)> {
        let id = match self.kind {
            ItemKind::Digest { .. } => self.lock_id.strip_suffix(DIGEST_SUFFIX)?,
            _ => self.lock_id.as_str(),
        };
        id.split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
    }
}

/// Whether `digest` is what Terraform accepts: 32 hex characters (it compares them decoded).
pub fn is_valid_digest(digest: &str) -> bool {
    digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    #[test]
    fn classifies_locks_digests_and_others() {
        let info = r#"{"ID":"a","Operation":"OperationTypeApply","Info":"","Who":"me@h","Version":"1.0.3","Created":"2024-01-01T00:00:00Z","Path":"b/k"}"#;
        let lock = TableItem::from_attributes(&item(&[("LockID", "b/k"), ("Info", info)])).unwrap();
        assert!(matches!(&lock.kind, ItemKind::Lock { info: Ok(i), .. } if i.who == "me@h"));
        assert_eq!(lock.bucket_and_key(), Some(("b", "k")));
        assert!(!lock.written_by_statelock);

        let digest = TableItem::from_attributes(&item(&[
            ("LockID", "b/env:/dev/k-md5"),
            ("Digest", "d41d8cd98f00b204e9800998ecf8427e"),
            ("WrittenBy", "statelock"),
            ("Written", "2024-01-01T00:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(digest.bucket_and_key(), Some(("b", "env:/dev/k")));
        assert!(digest.written_by_statelock && digest.written.is_some());

        let other = TableItem::from_attributes(&item(&[("LockID", "x"), ("Foo", "1")])).unwrap();
        assert_eq!(
            other.kind,
            ItemKind::Other {
                attributes: vec!["Foo".to_owned(), "LockID".to_owned()]
            }
        );
        assert_eq!(other.bucket_and_key(), None);
        assert!(TableItem::from_attributes(&item(&[("Foo", "1")])).is_none());
    }

    #[test]
    fn keys_and_digests_match_terraform() {
        assert_eq!(lock_id("b", "env:/dev/a.tfstate"), "b/env:/dev/a.tfstate");
        assert_eq!(digest_id("b", "a.tfstate"), "b/a.tfstate-md5");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(is_valid_digest(&md5_hex(b"x")));
        assert!(!is_valid_digest("abc"));
    }
}
