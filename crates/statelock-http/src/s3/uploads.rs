//! Where open multipart uploads live: objects under `.statelock/uploads/<upload id>/` in the
//! store, written through the storage port, so that every replica behind a load balancer sees
//! the same uploads (a part may reach one replica and the Complete another) and no replica
//! keeps anything in memory. `.statelock/` is never listed or reachable over S3.
//!
//! Per upload: `upload`, the manifest (the state key and the checksum algorithm chosen at
//! Create), and `part-00001` ... `part-10000`, each part's bytes as received and checked.
//! Part numbers are zero-padded so a listing returns them in order.
//!
//! Abandoned uploads (a client that crashed between Create and Complete or Abort) are
//! removed by [`sweep`], which every CreateMultipartUpload runs: any upload object older than
//! [`EXPIRY`] is deleted. The manifest is written before any part and deleted after them,
//! so a part older than a day belongs to an upload at least as old; deleting object by object
//! is therefore the same as expiring whole uploads a day after their creation, even when a
//! sweep is interrupted. A part that lands just after its upload was completed or aborted
//! (a client racing itself) is an orphan the same sweep removes a day later. A Complete that
//! loses a part to a sweep fails with `InvalidPart` and writes nothing, because the state is
//! written only once every part has been read.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use statelock_state::history::RESERVED_PREFIX;
use statelock_store::{
    DeleteMode, ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError, StoreResult,
};

/// Every upload's objects are under this prefix.
pub(super) const UPLOADS_PREFIX: &str = ".statelock/uploads/";

/// How long an upload may stay open: AWS's usual lifecycle rule for incomplete uploads.
pub(super) const EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// Part numbers S3 accepts.
pub(super) const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

const ID_BYTES: usize = 16;

/// An upload ID: 128 random bits in lower-case hex, so IDs cannot be guessed and every ID
/// a client sends can be checked for shape before it names a store key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UploadId(String);

impl UploadId {
    pub(super) fn random() -> UploadId {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        UploadId(super::body::hex(&bytes))
    }

    /// The ID in `text`, if it has the shape [`UploadId::random`] gives.
    pub(super) fn parse(text: &str) -> Option<UploadId> {
        let shaped = text.len() == ID_BYTES * 2
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| UploadId(text.to_owned()))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    fn prefix(&self) -> String {
        format!("{UPLOADS_PREFIX}{}/", self.0)
    }

    fn manifest_key(&self) -> String {
        format!("{}upload", self.prefix())
    }

    fn part_key(&self, number: i32) -> String {
        format!("{}part-{number:05}", self.prefix())
    }
}

/// What CreateMultipartUpload fixed about an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The state key the upload will write.
    pub key: String,
    /// `x-amz-checksum-algorithm` of the Create, which every part's answer carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    /// `x-amz-checksum-type` of the Create (`COMPOSITE` or `FULL_OBJECT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
}

/// One stored part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StoredPart {
    pub number: i32,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// Opens upload `id` with `manifest`; an ID already in use is an error (it cannot happen
/// with random IDs, and a create-if-absent makes sure).
pub(super) async fn open(
    store: &dyn ObjectStore,
    id: &UploadId,
    manifest: &Manifest,
) -> StoreResult<()> {
    let body = serde_json::to_vec(manifest).expect("a manifest serialises");
    store
        .put(
            &id.manifest_key(),
            Bytes::from(body),
            PutOptions::json(PutMode::Create),
        )
        .await
        .map(|_| ())
}

/// The manifest of upload `id`, or `None` when no such upload is open.
pub(super) async fn manifest(
    store: &dyn ObjectStore,
    id: &UploadId,
) -> StoreResult<Option<Manifest>> {
    let key = id.manifest_key();
    let Some(found) = store.get_if_exists(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&found.body).map(Some).map_err(|e| {
        StoreError::other(
            store.describe(),
            "read",
            &key,
            format!("the upload manifest is not valid: {e}"),
        )
    })
}

/// Stores part `number` of upload `id`, replacing an earlier upload of the same number, as S3
/// does.
pub(super) async fn put_part(
    store: &dyn ObjectStore,
    id: &UploadId,
    number: i32,
    bytes: Bytes,
) -> StoreResult<()> {
    store
        .put(
            &id.part_key(number),
            bytes,
            PutOptions::new(PutMode::Overwrite),
        )
        .await
        .map(|_| ())
}

/// The bytes of part `number`, or `None` when it was not uploaded.
pub(super) async fn part(
    store: &dyn ObjectStore,
    id: &UploadId,
    number: i32,
) -> StoreResult<Option<Bytes>> {
    Ok(store
        .get_if_exists(&id.part_key(number))
        .await?
        .map(|found| found.body))
}

/// The parts of upload `id` stored so far, in ascending part number.
pub(super) async fn parts(store: &dyn ObjectStore, id: &UploadId) -> StoreResult<Vec<StoredPart>> {
    let prefix = format!("{}part-", id.prefix());
    let mut parts: Vec<StoredPart> = store
        .list_all(&prefix)
        .await?
        .into_iter()
        .filter_map(|meta| {
            let number = meta.key.strip_prefix(&prefix)?.parse().ok()?;
            Some(StoredPart {
                number,
                size: meta.size,
                last_modified: meta.last_modified,
            })
        })
        .collect();
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

/// Deletes every object of upload `id`, parts first and the manifest last, so an interrupted
/// removal leaves an upload that [`sweep`] still recognises as one.
pub(super) async fn remove(store: &dyn ObjectStore, id: &UploadId) -> StoreResult<()> {
    let manifest = id.manifest_key();
    for object in store.list_all(&id.prefix()).await? {
        if object.key != manifest {
            store.delete(&object.key, DeleteMode::Unconditional).await?;
        }
    }
    store.delete(&manifest, DeleteMode::Unconditional).await
}

/// Deletes every upload object last modified more than [`EXPIRY`] before `now`; returns how
/// many. Objects whose store gives no modification time are kept. Failures are logged and
/// skipped: the sweep runs inside a client's CreateMultipartUpload, which must not fail
/// because an old upload could not be removed.
pub(super) async fn sweep(store: &dyn ObjectStore, now: SystemTime) -> usize {
    debug_assert!(UPLOADS_PREFIX.starts_with(RESERVED_PREFIX));
    let objects = match store.list_all(UPLOADS_PREFIX).await {
        Ok(objects) => objects,
        Err(e) => {
            tracing::warn!(error = %statelock_store::error_chain(&e), "could not list open multipart uploads to remove abandoned ones");
            return 0;
        }
    };
    let mut removed = 0;
    for object in objects {
        let expired = object
            .last_modified
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age > EXPIRY);
        if !expired {
            continue;
        }
        match store.delete(&object.key, DeleteMode::Unconditional).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(key = %object.key, error = %statelock_store::error_chain(&e), "could not remove an abandoned multipart upload object");
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed the objects of abandoned multipart uploads"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use statelock_store::MemoryStore;

    use super::*;

    #[test]
    fn ids_are_random_and_checked_for_shape() {
        let a = UploadId::random();
        assert_ne!(a, UploadId::random());
        assert_eq!(UploadId::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "abc",
            "../../x",
            &a.as_str().to_uppercase(),
            &format!("{}0", a.as_str()),
        ] {
            assert_eq!(UploadId::parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn parts_are_listed_in_order_and_removed_with_the_manifest() {
        let store = MemoryStore::new();
        let id = UploadId::random();
        let manifest = Manifest {
            key: "a.tfstate".to_owned(),
            checksum_algorithm: Some("SHA256".to_owned()),
            checksum_type: None,
        };
        open(&store, &id, &manifest).await.unwrap();
        assert!(
            open(&store, &id, &manifest).await.is_err(),
            "an ID is opened once"
        );
        for number in [10, 2, 1] {
            put_part(&store, &id, number, Bytes::from(vec![0; number as usize]))
                .await
                .unwrap();
        }
        let listed: Vec<(i32, u64)> = parts(&store, &id)
            .await
            .unwrap()
            .iter()
            .map(|p| (p.number, p.size))
            .collect();
        assert_eq!(listed, [(1, 1), (2, 2), (10, 10)]);
        assert_eq!(super::manifest(&store, &id).await.unwrap(), Some(manifest));
        remove(&store, &id).await.unwrap();
        assert!(store.list_all(UPLOADS_PREFIX).await.unwrap().is_empty());
        assert_eq!(super::manifest(&store, &id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sweep_removes_only_uploads_older_than_a_day() {
        let store = MemoryStore::new();
        let id = UploadId::random();
        let manifest = Manifest {
            key: "a.tfstate".to_owned(),
            checksum_algorithm: None,
            checksum_type: None,
        };
        open(&store, &id, &manifest).await.unwrap();
        put_part(&store, &id, 1, Bytes::from_static(b"x"))
            .await
            .unwrap();
        store
            .put(
                "a.tfstate",
                Bytes::from_static(b"{}"),
                PutOptions::new(PutMode::Create),
            )
            .await
            .unwrap();
        let now = SystemTime::now();
        assert_eq!(sweep(&store, now).await, 0);
        assert_eq!(sweep(&store, now + EXPIRY / 2).await, 0);
        assert_eq!(
            sweep(&store, now + EXPIRY + Duration::from_secs(60)).await,
            2
        );
        assert!(store.list_all(UPLOADS_PREFIX).await.unwrap().is_empty());
        assert!(
            store.get_if_exists("a.tfstate").await.unwrap().is_some(),
            "states are not touched"
        );
    }
}
