//! The storage port: the one trait every adapter implements, and the types it speaks.
//!
//! The port is deliberately small and conditional-write centred, after `object_store`'s
//! `PutMode`: locks are `Create`s, guarded state writes are `Update`s on the version read, and
//! lock release is a delete conditional on the version read. Adapters know nothing about
//! Terraform, locks or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// An opaque token naming one version of an object's content.
///
/// For S3 it is the ETag exactly as the server returned it (quotes included), to be sent back
/// verbatim in `If-Match`. For the memory and local-disk stores it is a random generation ID
/// written with the object, so two writes of identical bytes still get different versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Wraps a token as the store gave it.
    pub fn new(token: impl Into<String>) -> Version {
        Version(token.into())
    }

    /// The token as the store gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// User metadata kept with an object and written with it in the same put, as S3's
/// `x-amz-meta-<name>` headers: names of lower-case ASCII letters, digits and `-`, values of
/// printable ASCII, at most [`crate::MAX_METADATA_LEN`] bytes in all ([`crate::check_metadata`]).
/// Callers encode anything else (the state service percent-encodes).
pub type Metadata = BTreeMap<String, String>;

/// What a store knows about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store's root or prefix.
    pub key: String,
    /// Size of the body in bytes.
    pub size: u64,
    /// The current version.
    pub version: Version,
    /// When the object was last written, if the store says.
    pub last_modified: Option<SystemTime>,
    /// The metadata the put stored, from [`ObjectStore::get`] and [`ObjectStore::head`];
    /// empty in listings (S3 lists none) and in a put's answer.
    pub metadata: Metadata,
}

/// An object's body and metadata.
#[derive(Clone, Debug)]
pub struct GetResult {
    pub meta: ObjectMeta,
    pub body: Bytes,
}

/// A body delivered in chunks, as the store reads it.
pub type BodyStream = futures::stream::BoxStream<'static, StoreResult<Bytes>>;

/// An object's metadata and its body as a stream ([`ObjectStore::get_stream`]). The body is
/// the version `meta` names, and has exactly `meta.size` bytes unless a chunk is an error.
pub struct GetStream {
    pub meta: ObjectMeta,
    pub body: BodyStream,
}

impl fmt::Debug for GetStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetStream")
            .field("meta", &self.meta)
            .finish()
    }
}

/// When a put may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Always: replace whatever is there.
    Overwrite,
    /// Only if no object exists (`If-None-Match: *`); otherwise [`StoreError::AlreadyExists`].
    Create,
    /// Only if the current version is this one (`If-Match`); otherwise
    /// [`StoreError::Precondition`], also when the object does not exist.
    Update(Version),
}

/// Options of a put.
#[derive(Clone, Debug)]
pub struct PutOptions {
    pub mode: PutMode,
    /// `Content-Type` to store with the object, where the store keeps one.
    pub content_type: Option<String>,
    /// Send `Content-MD5`, as SDK-v1-era Terraform (before 1.6) does on state puts, where the
    /// store speaks a protocol that has it; other stores have nothing to send.
    pub content_md5: bool,
    /// User metadata to store with the object, atomically with its body.
    pub metadata: Metadata,
}

impl PutOptions {
    /// A put in `mode` with no content type.
    pub fn new(mode: PutMode) -> PutOptions {
        PutOptions {
            mode,
            content_type: None,
            content_md5: false,
            metadata: Metadata::new(),
        }
    }

    /// A put in `mode` of `application/json` content, as Terraform sends states and locks.
    pub fn json(mode: PutMode) -> PutOptions {
        PutOptions {
            mode,
            content_type: Some("application/json".to_owned()),
            content_md5: false,
            metadata: Metadata::new(),
        }
    }

    /// The same put, storing `metadata` with the object.
    pub fn with_metadata(mut self, metadata: Metadata) -> PutOptions {
        self.metadata = metadata;
        self
    }

    /// The same put with a `Content-MD5` header.
    pub fn with_content_md5(mut self) -> PutOptions {
        self.content_md5 = true;
        self
    }
}

/// When a delete may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Always. Deleting a missing object succeeds, as on S3.
    Unconditional,
    /// Only if the current version is this one: [`StoreError::Precondition`] if it changed,
    /// [`StoreError::NotFound`] if the object is gone.
    IfVersion(Version),
}

/// One page of a prefix listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// Objects in this page, in ascending key order.
    pub objects: Vec<ObjectMeta>,
    /// Token for the next page; `None` when this page is the last.
    pub next: Option<String>,
}

/// One historical version of an object, from a store that keeps versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    /// The store's version ID, to pass to [`ObjectStore::get_version`].
    pub version_id: String,
    /// The content version (ETag) of this version; empty for delete markers.
    pub version: Version,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
    /// Whether this is the current version.
    pub is_latest: bool,
    /// Whether this version records a deletion rather than content.
    pub is_delete_marker: bool,
}

/// Optional abilities, so callers and the conformance suite can say what a store lacks instead
/// of failing obscurely or skipping silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// [`DeleteMode::IfVersion`] is honoured. An S3 store may turn this false at run time,
    /// once the server has shown it cannot (a 501, or the probe's ignored condition), so ask
    /// again before each delete rather than caching it.
    pub conditional_delete: bool,
    /// [`ObjectStore::list_versions`] and [`ObjectStore::get_version`] work.
    pub versions: bool,
    /// Versions may be content hashes (S3 ETags are the MD5 of a single-part upload), so
    /// rewriting identical bytes may leave the version unchanged. Harmless for lock records,
    /// which are unique, but callers must not count writes by version.
    pub content_hash_versions: bool,
}

/// A behaviour an adapter cannot see in a successful answer, found by the probe and handed to
/// the store with [`ObjectStore::observed`] so that it is taken into account from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// A conditional delete on a stale version removed the object: the store ignores the
    /// condition, so a delete must never again be taken as conditional.
    ConditionalDeleteIgnored,
}

/// An S3-compatible server's deviation that an adapter works around; listed by
/// [`ObjectStore::quirks`] so the probe, logs and `statelock probe` can say what was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Quirk {
    /// A DELETE with `If-Match` answered `501 Not Implemented` (LocalStack): releases read the
    /// lock, compare its ID, check its version once more and delete it plainly.
    ConditionalDeleteNotImplemented,
    /// A DELETE with a stale `If-Match` removed the object (Ceph RGW 16): releases read,
    /// compare, check the version once more and delete plainly.
    ConditionalDeleteIgnored,
    /// `If-Match` was refused with the quoted ETag the server itself returned and accepted with
    /// it unquoted (Ceph RGW 16): compare-and-swap sends ETags unquoted.
    IfMatchUnquoted,
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quirk::ConditionalDeleteNotImplemented => {
                "DELETE with If-Match answers 501 Not Implemented: lock releases fall back to \
                 read, compare the ID, then a plain delete"
            }
            Quirk::ConditionalDeleteIgnored => {
                "DELETE ignores If-Match (a stale one removed the object): lock releases fall \
                 back to read, compare the ID, then a plain delete"
            }
            Quirk::IfMatchUnquoted => {
                "If-Match refuses the quoted ETag the store returned and accepts it unquoted: \
                 compare-and-swap sends ETags unquoted"
            }
        })
    }
}

/// The storage port.
///
/// Keys are `/`-separated and relative to the store's root or prefix; every adapter checks
/// them with [`crate::check_key`] before touching anything, so a key like `../x` is refused
/// the same way everywhere.
#[async_trait]
pub trait ObjectStore: fmt::Debug + Send + Sync + 'static {
    /// A short description for messages and logs, e.g. `file:///srv/state` or `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// What this store supports beyond the required operations.
    fn capabilities(&self) -> Capabilities;

    /// Body and metadata of `key`; [`StoreError::NotFound`] if absent.
    async fn get(&self, key: &str) -> StoreResult<GetResult>;

    /// Metadata of `key`; [`StoreError::NotFound`] if absent.
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta>;

    /// [`ObjectStore::get`] with the body as a stream, so a large object need not be held in
    /// memory at once. Stores that can read in chunks do; the default reads it whole.
    async fn get_stream(&self, key: &str) -> StoreResult<GetStream> {
        let found = self.get(key).await?;
        let body = futures::stream::once(async move { Ok(found.body) });
        Ok(GetStream {
            meta: found.meta,
            body: Box::pin(body),
        })
    }

    /// Writes `body` at `key` as `options.mode` allows; returns the new object's metadata.
    /// Either the whole new body becomes visible at once or nothing changes.
    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta>;

    /// Deletes `key` as `mode` allows.
    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()>;

    /// One page of the objects whose keys start with `prefix` (a plain string prefix, not a
    /// directory), continuing after `continuation` if given.
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage>;

    /// Takes a behaviour the probe found into account from now on. Stores that cannot have
    /// it ignore it.
    fn observed(&self, observation: Observation) {
        let _ = observation;
    }

    /// The deviations of this store that the adapter has met and works around, so far.
    fn quirks(&self) -> Vec<Quirk> {
        Vec::new()
    }

    /// Every stored version of exactly `key`, newest first.
    async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
        let _ = key;
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "list object versions",
        })
    }

    /// The body of one version of `key`, by the ID that [`ObjectStore::list_versions`] gave.
    async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
        let _ = (key, version_id);
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "get an object version",
        })
    }
}

/// Conveniences built only from [`ObjectStore`]'s required methods.
#[async_trait]
pub trait ObjectStoreExt: ObjectStore {
    /// Every object under `prefix`, following continuation tokens until the listing ends.
    async fn list_all(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.list(prefix, next.as_deref()).await?;
            all.extend(page.objects);
            match page.next {
                Some(token) if Some(&token) != next.as_ref() => next = Some(token),
                Some(token) => {
                    return Err(StoreError::other(
                        self.describe(),
                        "list",
                        prefix,
                        format!("store returned the same continuation token {token:?} twice"),
                    ));
                }
                None => return Ok(all),
            }
        }
    }

    /// [`ObjectStore::get`], with absence as `None` instead of an error.
    async fn get_if_exists(&self, key: &str) -> StoreResult<Option<GetResult>> {
        match self.get(key).await {
            Ok(found) => Ok(Some(found)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<T: ObjectStore + ?Sized> ObjectStoreExt for T {}
