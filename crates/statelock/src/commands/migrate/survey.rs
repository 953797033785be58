//! What a lock table holds for one bucket, compared with the bucket: held locks, digests
//! (matching the state or stale), orphaned items, and states without a digest. Reading only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use statelock_core::{LOCK_SUFFIX, LockInfo, Timestamp};
use statelock_dynamodb::{ItemKind, LockTable, TableItem, is_valid_digest, md5_hex};
use statelock_store::{ObjectStore, ObjectStoreExt};

/// The table, read against the bucket.
#[derive(Debug, Serialize)]
pub struct Survey {
    pub table: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub locks: Vec<DynamoLock>,
    pub digests: Vec<DigestItem>,
    pub orphans: Vec<Orphan>,
    /// States (object keys) with no digest item.
    pub undigested_states: Vec<String>,
}

/// A lock held in the table for a state of this bucket.
#[derive(Debug, Serialize)]
pub struct DynamoLock {
    pub lock_id: String,
    /// The state's key in the store (under the prefix, if any).
    pub store_key: String,
    /// The `Info` attribute verbatim: what a move writes as the `.tflock` body.
    pub raw_info: String,
    #[serde(serialize_with = "record_json")]
    pub holder: Option<LockInfo>,
    /// Why `Info` is not a readable record, when it is not.
    pub unreadable: Option<String>,
    pub age_secs: Option<u64>,
    pub written_by_statelock: bool,
}

/// A digest item for a state of this bucket.
#[derive(Debug, Serialize)]
pub struct DigestItem {
    pub lock_id: String,
    pub store_key: String,
    pub digest: String,
    pub status: DigestStatus,
    /// MD5 of the state object now.
    pub state_md5: String,
    #[serde(skip)]
    pub state_modified: Option<SystemTime>,
    pub written_by_statelock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestStatus {
    /// Equal to the state's MD5: clients on `dynamodb_table` read the state without delay.
    Matches,
    /// Differs: such clients retry for 10 s and then refuse the state (spec §2.8).
    Stale,
    /// Not 32 hex characters: such clients only warn.
    Invalid,
}

/// An item that belongs to no state of this bucket.
#[derive(Debug, Serialize)]
pub struct Orphan {
    pub lock_id: String,
    pub kind: &'static str,
    pub reason: OrphanReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrphanReason {
    /// A digest for a state object that does not exist (deleted, or moved): deletable.
    NoState,
    /// An item of another bucket; never touched.
    OtherBucket,
    /// Of this bucket but outside `--store`'s prefix; never touched.
    OutsidePrefix,
    /// Neither a lock (`Info`) nor a digest (`Digest`); never touched.
    Unrecognised,
}

impl OrphanReason {
    pub fn text(&self) -> &'static str {
        match self {
            OrphanReason::NoState => "digest of a state that does not exist",
            OrphanReason::OtherBucket => "item of another bucket (left alone)",
            OrphanReason::OutsidePrefix => "outside the store's prefix (left alone)",
            OrphanReason::Unrecognised => "neither a lock nor a digest (left alone)",
        }
    }
}

/// Where an item points, relative to the store.
enum Place {
    Store(String),
    Elsewhere(OrphanReason, &'static str),
}

impl Survey {
    /// Scans `table` and reads every state a digest names, plus the listing of `store`.
    pub async fn take(
        table: &LockTable,
        store: &Arc<dyn ObjectStore>,
        bucket: &str,
        prefix: Option<&str>,
    ) -> anyhow::Result<Survey> {
        let items = table.scan().await?;
        let states = list_states(store).await?;
        let now = Timestamp::now();
        let mut survey = Survey {
            table: table.table().to_owned(),
            bucket: bucket.to_owned(),
            prefix: prefix.map(str::to_owned),
            locks: Vec::new(),
            digests: Vec::new(),
            orphans: Vec::new(),
            undigested_states: Vec::new(),
        };
        let mut digested = std::collections::BTreeSet::new();
        for item in items {
            let store_key = match place(&item, bucket, prefix) {
                Place::Store(key) => key,
                Place::Elsewhere(reason, kind) => {
                    survey.orphans.push(Orphan {
                        lock_id: item.lock_id.clone(),
                        kind,
                        reason,
                    });
                    continue;
                }
            };
            match item.kind {
                ItemKind::Lock { raw_info, info } => {
                    let (holder, unreadable) = match info {
                        Ok(info) => (Some(info), None),
                        Err(reason) => (None, Some(reason)),
                    };
                    let age_secs = holder
                        .as_ref()
                        .filter(|h| !h.created.is_zero())
                        .map(|h| h.created.age_at(now).as_secs());
                    survey.locks.push(DynamoLock {
                        lock_id: item.lock_id,
                        store_key,
                        raw_info,
                        holder,
                        unreadable,
                        age_secs,
                        written_by_statelock: item.written_by_statelock,
                    });
                }
                ItemKind::Digest { digest } => {
                    let Some(state) = store.get_if_exists(&store_key).await? else {
                        survey.orphans.push(Orphan {
                            lock_id: item.lock_id,
                            kind: "digest",
                            reason: OrphanReason::NoState,
                        });
                        continue;
                    };
                    let state_md5 = md5_hex(&state.body);
                    let status = if !is_valid_digest(&digest) {
                        DigestStatus::Invalid
                    } else if digest.eq_ignore_ascii_case(&state_md5) {
                        DigestStatus::Matches
                    } else {
                        DigestStatus::Stale
                    };
                    digested.insert(store_key.clone());
                    survey.digests.push(DigestItem {
                        lock_id: item.lock_id,
                        store_key,
                        digest,
                        status,
                        state_md5,
                        state_modified: state.meta.last_modified,
                        written_by_statelock: item.written_by_statelock,
                    });
                }
                // `place` has already set these aside as unrecognised.
                ItemKind::Other { .. } => {}
            }
        }
        survey.undigested_states = states
            .into_keys()
            .filter(|k| !digested.contains(k))
            .collect();
        survey.locks.sort_by(|a, b| a.store_key.cmp(&b.store_key));
        survey.digests.sort_by(|a, b| a.store_key.cmp(&b.store_key));
        survey.orphans.sort_by(|a, b| a.lock_id.cmp(&b.lock_id));
        Ok(survey)
    }

    /// The S3 object key (with the prefix, as Terraform names it) of store key `key`.
    pub fn object_key(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_owned(),
        }
    }

    /// Digests that make clients on `dynamodb_table` wait or warn: stale or invalid.
    pub fn stale_digests(&self) -> impl Iterator<Item = &DigestItem> {
        self.digests
            .iter()
            .filter(|d| d.status != DigestStatus::Matches)
    }
}

/// The store key an item is about, or why it is about nothing in this store.
fn place(item: &TableItem, bucket: &str, prefix: Option<&str>) -> Place {
    let kind = match item.kind {
        ItemKind::Lock { .. } => "lock",
        ItemKind::Digest { .. } => "digest",
        ItemKind::Other { .. } => return Place::Elsewhere(OrphanReason::Unrecognised, "other"),
    };
    let Some((item_bucket, key)) = item.bucket_and_key() else {
        return Place::Elsewhere(OrphanReason::Unrecognised, kind);
    };
    if item_bucket != bucket {
        return Place::Elsewhere(OrphanReason::OtherBucket, kind);
    }
    match prefix {
        None => Place::Store(key.to_owned()),
        Some(prefix) => match key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(rest) if !rest.is_empty() => Place::Store(rest.to_owned()),
            _ => Place::Elsewhere(OrphanReason::OutsidePrefix, kind),
        },
    }
}

/// The state objects of the store (not `.tflock` locks, not statelock's own `.statelock/`
/// objects), with their modification times.
pub async fn list_states(
    store: &Arc<dyn ObjectStore>,
) -> anyhow::Result<BTreeMap<String, Option<SystemTime>>> {
    Ok(store
        .list_all("")
        .await?
        .into_iter()
        .filter(|m| !m.key.ends_with(LOCK_SUFFIX) && !m.key.starts_with(".statelock/"))
        .map(|m| (m.key, m.last_modified))
        .collect())
}

/// A lock record in JSON output exactly as Terraform encodes it.
fn record_json<S: serde::Serializer>(info: &Option<LockInfo>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    let raw = info
        .as_ref()
        .map(|i| serde_json::value::RawValue::from_string(i.encode()))
        .transpose()
        .map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}
