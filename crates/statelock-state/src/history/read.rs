//! Reading a state's history straight from the store: the listing in recording order, every
//! version's metadata, and one version's body. Needs only the store, so `statelock state
//! history` reads the server's history from a bucket the same way the server does.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use statelock_core::StateKey;
use statelock_store::{ObjectStore, ObjectStoreExt, StoreError, StoreResult};

use super::layout::{self, VersionId};
use super::meta::{Kind, VersionMeta};

/// Metadata objects read at once when listing versions.
const META_READ_CONCURRENCY: usize = 16;

/// One version found by a listing.
#[derive(Clone, Debug)]
pub(super) struct Listed {
    pub id: VersionId,
    pub size: u64,
    /// A `<id>.meta.json` object is beside the body (the two-object layout); otherwise the
    /// metadata is on the body object, or missing.
    pub has_meta: bool,
}

/// The versions of `key` in recording order (oldest first), and metadata objects whose body is
/// missing.
pub(super) async fn scan(
    store: &dyn ObjectStore,
    key: &StateKey,
) -> StoreResult<(Vec<Listed>, Vec<VersionId>)> {
    let prefix = layout::state_prefix(key);
    let objects = store.list_all(&prefix).await?;
    let mut bodies: Vec<(VersionId, u64)> = Vec::new();
    let mut metas: Vec<VersionId> = Vec::new();
    for object in objects {
        // Listings of `a/` also hold the history of `a/b`; only direct children are ours.
        let Some(rest) = object.key.strip_prefix(&prefix) else {
            continue;
        };
        if rest.contains('/') {
            continue;
        }
        if let Some(id) = rest
            .strip_suffix(layout::BODY_SUFFIX)
            .and_then(VersionId::parse)
        {
            bodies.push((id, object.size));
        } else if let Some(id) = rest
            .strip_suffix(layout::META_SUFFIX)
            .and_then(VersionId::parse)
        {
            metas.push(id);
        }
    }
    bodies.sort();
    metas.sort();
    let listed = bodies
        .into_iter()
        .map(|(id, size)| Listed {
            has_meta: metas.binary_search(&id).is_ok(),
            id,
            size,
        })
        .collect::<Vec<_>>();
    let orphans = metas
        .into_iter()
        .filter(|m| listed.binary_search_by(|l| l.id.cmp(m)).is_err())
        .collect();
    Ok((listed, orphans))
}

/// Every version of `key`, newest first, with its metadata: from its `.meta.json` object in
/// the two-object layout, else from the body object's metadata.
pub async fn list(store: &dyn ObjectStore, key: &StateKey) -> StoreResult<Vec<VersionMeta>> {
    let (listed, _) = scan(store, key).await?;
    let reads = stream::iter(listed.into_iter().rev())
        .map(|l| meta_of(store, key, l))
        .buffered(META_READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    reads.into_iter().collect()
}

/// The newest version of `key` with its metadata, `None` when there is no history: one
/// listing and one read, for listings of many states (the web UI's last writer).
pub async fn latest(store: &dyn ObjectStore, key: &StateKey) -> StoreResult<Option<VersionMeta>> {
    let (listed, _) = scan(store, key).await?;
    match listed.into_iter().next_back() {
        Some(l) => meta_of(store, key, l).await.map(Some),
        None => Ok(None),
    }
}

/// The metadata of a listed version; made up from its ID when the object is missing.
async fn meta_of(store: &dyn ObjectStore, key: &StateKey, l: Listed) -> StoreResult<VersionMeta> {
    let parsed = if l.has_meta {
        store
            .get_if_exists(&l.id.meta_key(key))
            .await?
            .and_then(|g| serde_json::from_slice::<VersionMeta>(&g.body).ok())
    } else {
        match store.head(&l.id.body_key(key)).await {
            Ok(found) => super::tag::version_from_metadata(&found.metadata),
            // Pruned since the listing.
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        }
    };
    Ok(parsed.unwrap_or_else(|| VersionMeta {
        id: l.id.to_string(),
        kind: Kind::Unknown,
        time: l.id.time().to_rfc3339(),
        who: "unknown".to_owned(),
        serial: Some(l.id.serial),
        lineage: None,
        size: l.size,
        md5: None,
        lock_id: None,
    }))
}

/// The body of version `id` of `key`, `None` if there is no such version.
pub async fn body(
    store: &dyn ObjectStore,
    key: &StateKey,
    id: &VersionId,
) -> StoreResult<Option<Bytes>> {
    Ok(store
        .get_if_exists(&id.body_key(key))
        .await?
        .map(|g| g.body))
}
