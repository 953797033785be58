//! A state's versions from both sources, and one version's body by its ID, for every front
//! (`statelock state history/show/diff/rollback`, the JSON API's version bodies).
//!
//! - `s3-version`: the store's object versions of the state key ([`ObjectStore::list_versions`]),
//!   named by the S3 version ID. Their serial and lineage are read from each body.
//! - `server-history`: versions `statelock serve` recorded under `.statelock/history/<key>/`,
//!   read by [`crate::history`], named by the history ID.
//!
//! History IDs have a fixed shape ([`VersionId::parse`]) that S3 version IDs never have, so an
//! ID alone says which source to read.

use std::time::SystemTime;

use crate::history::{self, VersionId, md5_hex};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use statelock_core::state::StateHeader;
use statelock_core::{StateKey, Timestamp};
use statelock_store::{ObjectStore, ObjectStoreExt, ObjectVersion, StoreError};

/// The ID that names the state as it is now.
pub const CURRENT: &str = "current";

/// Version bodies read at once to learn their serials.
const BODY_READ_CONCURRENCY: usize = 8;

/// Where a version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    S3Version,
    ServerHistory,
    Current,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::S3Version => "s3-version",
            Source::ServerHistory => "server-history",
            Source::Current => "current",
        }
    }
}

/// One version in a history listing.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub source: Source,
    /// RFC 3339 UTC, when the store or the server recorded it.
    pub time: Option<String>,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub size: u64,
    pub md5: Option<String>,
    /// The current S3 version of the state.
    pub is_current: bool,
    pub is_delete_marker: bool,
    /// Server history only: why the version was recorded (`write`, `rollback`, `delete`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Server history only: who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
}

/// Both sources' versions, newest first, and what could not be read.
#[derive(Debug)]
pub struct History {
    pub entries: Vec<Entry>,
    /// How many versions there are in all, before `limit`.
    pub total: usize,
    /// Why the store has no object versions, when it has none to offer.
    pub no_object_versions: Option<String>,
}

/// Why a state's versions could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot list the object versions of {key}: {source}")]
    ObjectVersions { key: StateKey, source: StoreError },
    #[error("cannot read the server history of {key}: {source}")]
    ServerHistory { key: StateKey, source: StoreError },
}

/// The newest `limit` versions (0: all) of `key` from both sources, newest first. Only the
/// object versions that can be shown have their bodies read.
pub async fn history(
    store: &dyn ObjectStore,
    key: &StateKey,
    limit: usize,
) -> Result<History, ListError> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    let mut total = 0;
    let (mut entries, no_object_versions) = match store.list_versions(key.as_str()).await {
        Ok(mut versions) => {
            total += versions.len();
            versions.truncate(limit);
            (object_versions(store, key, versions).await, None)
        }
        Err(e @ StoreError::NotImplemented { .. }) => (Vec::new(), Some(e.to_string())),
        Err(source) => {
            return Err(ListError::ObjectVersions {
                key: key.clone(),
                source,
            });
        }
    };
    let recorded = history::list(store, key)
        .await
        .map_err(|source| ListError::ServerHistory {
            key: key.clone(),
            source,
        })?;
    total += recorded.len();
    entries.extend(recorded.into_iter().map(|m| Entry {
        id: m.id,
        source: Source::ServerHistory,
        time: Some(m.time),
        serial: m.serial,
        lineage: m.lineage,
        size: m.size,
        md5: m.md5,
        is_current: false,
        is_delete_marker: false,
        kind: Some(kind_name(m.kind)),
        who: Some(m.who),
    }));
    // Stable, so each source's own order (exact where times tie) is kept.
    entries.sort_by_key(|e| std::cmp::Reverse(instant(e.time.as_deref())));
    entries.truncate(limit);
    Ok(History {
        entries,
        total,
        no_object_versions,
    })
}

/// A sortable instant; entries without a time sort oldest.
fn instant(time: Option<&str>) -> (i64, u32) {
    time.and_then(|t| Timestamp::parse_rfc3339(t).ok())
        .map_or((i64::MIN, 0), |t| (t.unix_secs(), t.subsec_nanos()))
}

fn kind_name(kind: history::Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The S3 versions as entries, each body read for its serial and lineage.
async fn object_versions(
    store: &dyn ObjectStore,
    key: &StateKey,
    versions: Vec<ObjectVersion>,
) -> Vec<Entry> {
    if versions.len() > BODY_READ_CONCURRENCY {
        tracing::info!(%key, versions = versions.len(), "reading the object versions' bodies");
    }
    stream::iter(versions)
        .map(|v| async move {
            let body = if v.is_delete_marker {
                None
            } else {
                match store.get_version(key.as_str(), &v.version_id).await {
                    Ok(got) => Some(got.body),
                    Err(e) => {
                        tracing::warn!(%key, version = %v.version_id, %e, "cannot read an object version");
                        None
                    }
                }
            };
            let header = body.as_deref().and_then(|b| StateHeader::parse(b).ok());
            Entry {
                id: v.version_id,
                source: Source::S3Version,
                time: v.last_modified.map(rfc3339),
                serial: header.as_ref().and_then(|h| h.serial),
                lineage: header.and_then(|h| h.lineage),
                size: v.size,
                md5: body.as_deref().map(md5_hex),
                is_current: v.is_latest,
                is_delete_marker: v.is_delete_marker,
                kind: None,
                who: None,
            }
        })
        .buffered(BODY_READ_CONCURRENCY)
        .collect()
        .await
}

fn rfc3339(t: SystemTime) -> String {
    Timestamp::from_system_time(t).to_rfc3339()
}

/// One version's bytes and where they came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub id: String,
    pub source: Source,
    pub body: Bytes,
}

/// Why a version could not be fetched, when it is not a store failure.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("state {key} does not exist (no object at that key, or an empty one)")]
    NoState { key: StateKey },
    #[error("state {key} has no version {id:?}; `statelock state history {key}` lists them")]
    NoVersion { key: StateKey, id: String },
    #[error(
        "version {id:?} of {key} is a delete marker (the state was deleted then); pick the \
         version before it in `statelock state history {key}`"
    )]
    DeleteMarker { key: StateKey, id: String },
    #[error(
        "{id:?} is not a server history ID, and {store} keeps no object versions; \
         `statelock state history {key}` lists the versions there are"
    )]
    NoObjectVersions {
        key: StateKey,
        id: String,
        store: String,
    },
    #[error("cannot read version {id:?} of {key}: {source}")]
    Store {
        key: StateKey,
        id: String,
        source: StoreError,
    },
}

impl FetchError {
    /// Whether the version is simply not there (exit code 2), rather than a failure.
    pub fn is_missing(&self) -> bool {
        !matches!(self, FetchError::Store { .. })
    }
}

/// The body of version `id` of `key`: `current`, a server history ID, or an S3 version ID.
pub async fn fetch(
    store: &dyn ObjectStore,
    key: &StateKey,
    id: &str,
) -> Result<Fetched, FetchError> {
    let failed = |source| FetchError::Store {
        key: key.clone(),
        id: id.to_owned(),
        source,
    };
    let missing = || FetchError::NoVersion {
        key: key.clone(),
        id: id.to_owned(),
    };
    let (source, body) = if id == CURRENT {
        let got = store.get_if_exists(key.as_str()).await.map_err(failed)?;
        // An empty object is "no state" (spec §5.1).
        let got = got
            .filter(|g| !g.body.is_empty())
            .ok_or_else(|| FetchError::NoState { key: key.clone() })?;
        (Source::Current, got.body)
    } else if let Some(version) = VersionId::parse(id) {
        let body = history::body(store, key, &version).await.map_err(failed)?;
        (Source::ServerHistory, body.ok_or_else(missing)?)
    } else {
        match store.get_version(key.as_str(), id).await {
            Ok(got) => (Source::S3Version, got.body),
            Err(StoreError::NotFound { .. }) => {
                return Err(if is_delete_marker(store, key, id).await {
                    FetchError::DeleteMarker {
                        key: key.clone(),
                        id: id.to_owned(),
                    }
                } else {
                    missing()
                });
            }
            Err(StoreError::NotImplemented { store, .. }) => {
                return Err(FetchError::NoObjectVersions {
                    key: key.clone(),
                    id: id.to_owned(),
                    store,
                });
            }
            Err(e) => return Err(failed(e)),
        }
    };
    Ok(Fetched {
        id: id.to_owned(),
        source,
        body,
    })
}

/// Whether `id` is one of `key`'s delete markers, which have no body to read. Best effort: a
/// failed listing just leaves the plainer "no such version".
async fn is_delete_marker(store: &dyn ObjectStore, key: &StateKey, id: &str) -> bool {
    store
        .list_versions(key.as_str())
        .await
        .is_ok_and(|versions| {
            versions
                .iter()
                .any(|v| v.version_id == id && v.is_delete_marker)
        })
}
