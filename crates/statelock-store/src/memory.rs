//! An in-process store for tests: every port operation, versions included, under one mutex.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;
use crate::key::{check_key, check_prefix};
use crate::metadata::check_metadata;
use crate::port::{
    Capabilities, DeleteMode, GetResult, ListPage, Metadata, ObjectMeta, ObjectStore,
    ObjectVersion, PutMode, PutOptions, StoreResult, Version,
};
use crate::version_token::new_version_token;

const NAME: &str = "memory://";

/// A store held in memory. Conditional writes are exact because every operation holds the
/// same lock; old versions and delete markers are kept, as on a versioned S3 bucket.
#[derive(Debug)]
pub struct MemoryStore {
    page_size: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every version of every key, oldest first; the last entry is the current one.
    keys: BTreeMap<String, Vec<Stored>>,
    next_version_id: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    version_id: String,
    /// `None` for a delete marker.
    body: Option<Bytes>,
    version: Version,
    last_modified: SystemTime,
    metadata: Metadata,
}

impl Stored {
    fn meta(&self, key: &str) -> Option<ObjectMeta> {
        self.body.as_ref().map(|body| ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            version: self.version.clone(),
            last_modified: Some(self.last_modified),
            metadata: self.metadata.clone(),
        })
    }
}

impl Inner {
    fn current(&self, key: &str) -> Option<&Stored> {
        self.keys.get(key)?.last().filter(|s| s.body.is_some())
    }

    fn push(&mut self, key: &str, body: Option<Bytes>, metadata: Metadata) -> &Stored {
        self.next_version_id += 1;
        let stored = Stored {
            version_id: format!("v{:08}", self.next_version_id),
            version: Version::new(if body.is_some() {
                new_version_token()
            } else {
                String::new()
            }),
            body,
            last_modified: SystemTime::now(),
            metadata,
        };
        let versions = self.keys.entry(key.to_owned()).or_default();
        versions.push(stored);
        versions.last().expect("just pushed")
    }
}

impl MemoryStore {
    /// An empty store that lists 1000 keys a page, as S3 does.
    pub fn new() -> MemoryStore {
        MemoryStore::with_page_size(1000)
    }

    /// An empty store with a chosen listing page size (small sizes exercise pagination).
    pub fn with_page_size(page_size: usize) -> MemoryStore {
        MemoryStore {
            page_size: page_size.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write (every mutation is
        // a single push or pop), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn not_found(key: &str) -> StoreError {
        StoreError::NotFound {
            store: NAME.to_owned(),
            key: key.to_owned(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        NAME.to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_delete: true,
            versions: true,
            content_hash_versions: false,
        }
    }

    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        check_key(NAME, key)?;
        let inner = self.lock();
        let stored = inner.current(key).ok_or_else(|| Self::not_found(key))?;
        Ok(GetResult {
            meta: stored.meta(key).expect("current has a body"),
            body: stored.body.clone().expect("current has a body"),
        })
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        check_key(NAME, key)?;
        let inner = self.lock();
        let stored = inner.current(key).ok_or_else(|| Self::not_found(key))?;
        Ok(stored.meta(key).expect("current has a body"))
    }

    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        check_key(NAME, key)?;
        check_metadata(NAME, key, &options.metadata)?;
        check_metadata(NAME, key, &options.metadata)?;
        let mut inner = self.lock();
        let current = inner.current(key).map(|s| s.version.clone());
        match (&options.mode, current) {
            (PutMode::Overwrite, _) | (PutMode::Create, None) => {}
            (PutMode::Create, Some(_)) => {
                return Err(StoreError::AlreadyExists {
                    store: NAME.to_owned(),
                    key: key.to_owned(),
                });
            }
            (PutMode::Update(expected), current) => {
                if current.as_ref() != Some(expected) {
                    return Err(StoreError::Precondition {
                        store: NAME.to_owned(),
                        key: key.to_owned(),
                        expected: expected.to_string(),
                    });
                }
            }
        }
        let stored = inner.push(key, Some(body), options.metadata);
        let mut meta = stored.meta(key).expect("just wrote a body");
        meta.metadata.clear();
        Ok(meta)
    }

    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        check_key(NAME, key)?;
        let mut inner = self.lock();
        let current = inner.current(key).map(|s| s.version.clone());
        match (mode, current) {
            (DeleteMode::Unconditional, None) => return Ok(()),
            (DeleteMode::Unconditional, Some(_)) => {}
            (DeleteMode::IfVersion(_), None) => return Err(Self::not_found(key)),
            (DeleteMode::IfVersion(expected), Some(current)) => {
                if current != expected {
                    return Err(StoreError::Precondition {
                        store: NAME.to_owned(),
                        key: key.to_owned(),
                        expected: expected.to_string(),
                    });
                }
            }
        }
        inner.push(key, None, Metadata::new());
        Ok(())
    }

    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        check_prefix(NAME, prefix)?;
        let inner = self.lock();
        let mut objects = Vec::new();
        let mut next = None;
        let start = continuation.unwrap_or(prefix);
        for (key, versions) in inner
            .keys
            .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            if Some(key.as_str()) == continuation {
                continue;
            }
            let Some(mut meta) = versions.last().and_then(|s| s.meta(key)) else {
                continue;
            };
            // As on S3, a listing carries no user metadata.
            meta.metadata.clear();
            if objects.len() == self.page_size {
                next = objects.last().map(|m: &ObjectMeta| m.key.clone());
                break;
            }
            objects.push(meta);
        }
        Ok(ListPage { objects, next })
    }

    async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
        check_key(NAME, key)?;
        let inner = self.lock();
        let Some(versions) = inner.keys.get(key) else {
            return Ok(Vec::new());
        };
        let latest = versions.len() - 1;
        Ok(versions
            .iter()
            .enumerate()
            .rev()
            .map(|(i, s)| ObjectVersion {
                key: key.to_owned(),
                version_id: s.version_id.clone(),
                version: s.version.clone(),
                size: s.body.as_ref().map_or(0, |b| b.len() as u64),
                last_modified: Some(s.last_modified),
                is_latest: i == latest,
                is_delete_marker: s.body.is_none(),
            })
            .collect())
    }

    async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
        check_key(NAME, key)?;
        let inner = self.lock();
        let stored = inner
            .keys
            .get(key)
            .and_then(|vs| vs.iter().find(|s| s.version_id == version_id))
            .filter(|s| s.body.is_some())
            .ok_or_else(|| Self::not_found(&format!("{key}?versionId={version_id}")))?;
        Ok(GetResult {
            meta: stored.meta(key).expect("filtered on body"),
            body: stored.body.clone().expect("filtered on body"),
        })
    }
}
