//! The embedded default store: objects as files in a local directory.
//!
//! Layout under the root:
//!
//! ```text
//! statelock-store      marker: this directory is a statelock store (format 1)
//! objects/…            one file per object: a header line with its version, then the body
//! tmp/*.partial        writes being staged; never read
//! locks/00.lock..ff    flock stripes serialising check-then-publish across processes
//! ```
//!
//! Keys map to paths one segment per directory: every directory segment gets the suffix
//! `.d` and the object's own name the suffix `.o`, so `env:/dev/app.tfstate` is
//! `objects/env:.d/dev.d/app.tfstate.o`. The suffixes keep file and directory names
//! disjoint, so `a` and `a/b` can both be objects, as on S3. The port's key rules (no empty,
//! `.` or `..` segments, no leading `/`) mean a key can never leave `objects/`; symbolic
//! links inside the directory are never followed.
//!
//! Atomicity: every write stages a complete, flushed file and publishes it with one `link`
//! (create-if-absent) or `rename` (replace), then flushes the directory before reporting
//! success. Conditional writes check the current version and publish while holding the key's
//! stripe lock ([`stripes`]), so two processes on one directory can never both win.
//! Concurrent flushes of one directory in one process share an `fsync` ([`group_sync`]).

mod durable;
mod group_sync;
mod object_file;
mod stripes;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;
use crate::key::{check_key, check_prefix};
use crate::metadata::check_metadata;
use crate::port::{
    Capabilities, DeleteMode, GetResult, GetStream, ListPage, Metadata, ObjectMeta, ObjectStore,
    PutMode, PutOptions, StoreResult, Version,
};
use crate::version_token::new_version_token;
use durable::{StagedFile, open_no_follow, sync_dir};
use object_file::{Header, content_type_is_storable, encode_header, read_header};

/// Suffix of a directory holding the keys under one more segment.
const DIR_SUFFIX: &str = ".d";
/// Suffix of an object's file.
const OBJECT_SUFFIX: &str = ".o";

const MARKER_FILE: &str = "statelock-store";
const MARKER_CONTENT: &str = "statelock local store, format 1\n";

/// Bytes read per step when a body is streamed.
const STREAM_CHUNK: usize = 1024 * 1024;

/// Staged files older than this are leftovers of a crashed writer.
const STALE_PARTIAL_AGE: Duration = Duration::from_secs(3600);

/// Publishing can race with another writer removing an emptied parent directory; retrying
/// the directory creation wins that race in practice. Generous, because a parent already
/// flushed is not flushed again, so nothing slows the retries down: under heavy churn of one
/// directory (the cross-process churn test) a handful of attempts could all lose.
const PUBLISH_ATTEMPTS: usize = 64;

/// A store in a local directory. Cheap to clone; clones share the directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    objects: PathBuf,
    tmp: PathBuf,
    locks: PathBuf,
    page_size: usize,
}

impl LocalStore {
    /// Opens the store in `root`, creating the directory if needed.
    ///
    /// A directory that already holds other files and no statelock marker is refused, so a
    /// mistyped path cannot scatter objects into an unrelated directory. Staged files older
    /// than an hour, left by a writer that crashed, are removed.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalStore, StoreError> {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let name = format!("file://{}", root.display());
        let fail = |what: &str, e: io::Error| {
            StoreError::other(name.clone(), "open", "", format!("{what}: {e}"))
        };
        fs::create_dir_all(&root)
            .map_err(|e| fail(&format!("cannot create {}", root.display()), e))?;
        claim_directory(&root).map_err(|e| fail(&format!("cannot use {}", root.display()), e))?;
        let inner = Inner {
            objects: root.join("objects"),
            tmp: root.join("tmp"),
            locks: root.join("locks"),
            name: name.clone(),
            page_size: 1000,
        };
        for dir in [&inner.objects, &inner.tmp, &inner.locks] {
            fs::create_dir_all(dir)
                .map_err(|e| fail(&format!("cannot create {}", dir.display()), e))?;
        }
        let removed = durable::remove_stale_partials(&inner.tmp, STALE_PARTIAL_AGE);
        if removed > 0 {
            tracing::info!(store = %inner.name, removed, "removed staged files left by a crashed writer");
        }
        Ok(LocalStore {
            inner: Arc::new(inner),
        })
    }

    /// `(requested, performed)`: flushes to disk that every local store in this process has
    /// asked for and the `fsync` calls made for them (concurrent flushes of one directory
    /// share one), for benchmarks and diagnostics.
    pub fn fsync_counts() -> (u64, u64) {
        group_sync::counts()
    }

    /// The same store, listing at most `page_size` keys per page (small sizes exercise
    /// pagination in tests; the default is 1000, as on S3).
    pub fn with_page_size(self, page_size: usize) -> LocalStore {
        let inner = Inner {
            name: self.inner.name.clone(),
            objects: self.inner.objects.clone(),
            tmp: self.inner.tmp.clone(),
            locks: self.inner.locks.clone(),
            page_size: page_size.max(1),
        };
        LocalStore {
            inner: Arc::new(inner),
        }
    }

    /// Runs blocking file-system work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        key: &str,
        work: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StoreError::other(self.describe(), operation, key, e))?
    }
}

/// Fills `buf` from `file`; a file shorter than its metadata said is an error, not a short body.
fn file_read_exact(file: &mut fs::File, buf: &mut [u8]) -> io::Result<()> {
    file.read_exact(buf)
}

/// Writes the marker into a new or empty directory, or checks it in an existing store.
fn claim_directory(root: &Path) -> io::Result<()> {
    let marker = root.join(MARKER_FILE);
    match fs::read_to_string(&marker) {
        Ok(content) if content == MARKER_CONTENT => return Ok(()),
        Ok(content) => {
            return Err(io::Error::other(format!(
                "{} says {:?}, not a statelock store of format 1",
                marker.display(),
                content.trim_end()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let foreign = fs::read_dir(root)?
        .flatten()
        .map(|e| e.file_name())
        .find(|n| !["objects", "tmp", "locks"].iter().any(|ours| n == ours));
    if let Some(foreign) = foreign {
        return Err(io::Error::other(format!(
            "the directory is not empty (it holds {foreign:?}) and is not a statelock store; \
             choose an empty or new directory"
        )));
    }
    // Linking a complete file makes the marker appear atomically even when two processes
    // open the same new directory at once; whoever loses the link finds the same content.
    let staged = StagedFile::write(root, &[MARKER_CONTENT.as_bytes()])?;
    match staged.link_to(&marker) {
        Ok(()) => sync_dir(root),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// What is at an object's path.
enum Current {
    Missing,
    Object(Header),
}

impl Inner {
    fn path_of(&self, key: &str) -> PathBuf {
        let mut path = self.objects.clone();
        let mut segments = key.split('/').peekable();
        while let Some(segment) = segments.next() {
            let suffix = if segments.peek().is_some() {
                DIR_SUFFIX
            } else {
                OBJECT_SUFFIX
            };
            path.push(format!("{segment}{suffix}"));
        }
        path
    }

    fn io_error(&self, operation: &'static str, key: &str, e: io::Error) -> StoreError {
        let message = match e.kind() {
            io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
                format!("{e}: a file or directory inside the store was not created by statelock")
            }
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                format!("{e}: refusing to follow a symbolic link inside the store")
            }
            _ => e.to_string(),
        };
        StoreError::other(self.name.clone(), operation, key, message)
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            store: self.name.clone(),
            key: key.to_owned(),
        }
    }

    fn not_an_object(&self, operation: &'static str, key: &str) -> StoreError {
        StoreError::other(
            self.name.clone(),
            operation,
            key,
            "the file at this key is not a statelock object (its header is missing or damaged)",
        )
    }

    /// Opens the object file at `key`; `None` if there is no object (a missing path, or a
    /// directory, which is only a prefix of other keys).
    fn open_object(&self, operation: &'static str, key: &str) -> StoreResult<Option<fs::File>> {
        let path = self.path_of(key);
        match durable::check_no_symlinked_dirs(&self.objects, &path) {
            Ok(()) => {}
            // A file where a directory should be: no object can be below it.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(self.io_error(operation, key, e)),
        }
        match open_no_follow(&path) {
            Ok(file) => {
                let is_dir = file
                    .metadata()
                    .map_err(|e| self.io_error(operation, key, e))?
                    .is_dir();
                Ok((!is_dir).then_some(file))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io_error(operation, key, e)),
        }
    }

    fn meta_of(&self, key: &str, file: &fs::File, header: &Header) -> io::Result<ObjectMeta> {
        let meta = file.metadata()?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: meta.len().saturating_sub(header.len as u64),
            version: Version::new(header.version.clone()),
            last_modified: meta.modified().ok(),
            metadata: header.metadata.clone(),
        })
    }

    fn current(&self, operation: &'static str, key: &str) -> StoreResult<Current> {
        let Some(mut file) = self.open_object(operation, key)? else {
            return Ok(Current::Missing);
        };
        match read_header(&mut file).map_err(|e| self.io_error(operation, key, e))? {
            Some(header) => Ok(Current::Object(header)),
            None => Err(self.not_an_object(operation, key)),
        }
    }

    fn get(&self, key: &str) -> StoreResult<GetResult> {
        let Some(mut file) = self.open_object("get", key)? else {
            return Err(self.not_found(key));
        };
        let io = |e| self.io_error("get", key, e);
        let len = file.metadata().map_err(io)?.len();
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io)?;
        let header =
            object_file::decode_header(&bytes).ok_or_else(|| self.not_an_object("get", key))?;
        let meta = self.meta_of(key, &file, &header).map_err(io)?;
        let body = Bytes::from(bytes).slice(header.len..);
        Ok(GetResult {
            meta: ObjectMeta {
                size: body.len() as u64,
                ..meta
            },
            body,
        })
    }

    /// The object file at `key`, positioned at its body, and its metadata.
    fn open_body(&self, key: &str) -> StoreResult<(fs::File, ObjectMeta)> {
        use std::io::{Seek, SeekFrom};
        let Some(mut file) = self.open_object("get", key)? else {
            return Err(self.not_found(key));
        };
        let io = |e| self.io_error("get", key, e);
        let header = read_header(&mut file)
            .map_err(io)?
            .ok_or_else(|| self.not_an_object("get", key))?;
        let meta = self.meta_of(key, &file, &header).map_err(io)?;
        file.seek(SeekFrom::Start(header.len as u64)).map_err(io)?;
        Ok((file, meta))
    }

    fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        let Some(mut file) = self.open_object("head", key)? else {
            return Err(self.not_found(key));
        };
        let io = |e| self.io_error("head", key, e);
        let header = read_header(&mut file)
            .map_err(io)?
            .ok_or_else(|| self.not_an_object("head", key))?;
        self.meta_of(key, &file, &header).map_err(io)
    }

    fn put(&self, key: &str, body: &[u8], options: &PutOptions) -> StoreResult<ObjectMeta> {
        let content_type = options.content_type.as_deref();
        if content_type.is_some_and(|ct| !content_type_is_storable(ct)) {
            return Err(StoreError::other(
                self.name.clone(),
                "put",
                key,
                "content type is longer than 1023 bytes or contains a control character",
            ));
        }
        check_metadata(&self.name, key, &options.metadata)?;
        let version = new_version_token();
        let header = encode_header(&version, content_type, &options.metadata);
        let io = |e| self.io_error("put", key, e);
        // Staging happens before the stripe lock is taken, so the critical section is only
        // the version check and one link or rename, whatever the object's size.
        let mut staged = StagedFile::write(&self.tmp, &[&header, body]).map_err(io)?;
        let target = self.path_of(key);
        for attempt in 1.. {
            match durable::ensure_parent_dirs(&self.objects, &target) {
                Ok(()) => {}
                // A delete of the last object in a directory on our path removed it while
                // we were creating the path; create it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < PUBLISH_ATTEMPTS => {
                    continue;
                }
                Err(e) => return Err(io(e)),
            }
            let guard = stripes::lock_key(&self.locks, key).map_err(io)?;
            if let PutMode::Update(expected) = &options.mode {
                let matches = matches!(
                    self.current("put", key)?,
                    Current::Object(h) if h.version == expected.as_str()
                );
                if !matches {
                    return Err(StoreError::Precondition {
                        store: self.name.clone(),
                        key: key.to_owned(),
                        expected: expected.to_string(),
                    });
                }
            }
            let published = match options.mode {
                PutMode::Create => staged.link_to(&target),
                PutMode::Update(_) | PutMode::Overwrite => staged.rename_to(&target),
            };
            match published {
                Ok(()) => {
                    durable::sync_parent_of(&target).map_err(io)?;
                    drop(guard);
                    return Ok(self.new_meta(key, &target, &version, body));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if target.is_dir() {
                        return Err(io(io::Error::from(io::ErrorKind::IsADirectory)));
                    }
                    return Err(StoreError::AlreadyExists {
                        store: self.name.clone(),
                        key: key.to_owned(),
                    });
                }
                // A delete of the last object in the parent directory removed it between
                // our mkdir and our publish; create it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < PUBLISH_ATTEMPTS => {}
                Err(e) => return Err(io(e)),
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    fn new_meta(&self, key: &str, target: &Path, version: &str, body: &[u8]) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            version: Version::new(version),
            last_modified: fs::symlink_metadata(target).and_then(|m| m.modified()).ok(),
            metadata: Metadata::new(),
        }
    }

    fn delete(&self, key: &str, mode: &DeleteMode) -> StoreResult<()> {
        let io = |e| self.io_error("delete", key, e);
        let target = self.path_of(key);
        // Checked apart from `current` because an unconditional delete goes ahead when the
        // object is merely damaged, and must never go ahead through a symbolic link.
        match durable::check_no_symlinked_dirs(&self.objects, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return match mode {
                    DeleteMode::Unconditional => Ok(()),
                    DeleteMode::IfVersion(_) => Err(self.not_found(key)),
                };
            }
            Err(e) => return Err(io(e)),
        }
        let guard = stripes::lock_key(&self.locks, key).map_err(io)?;
        let current = self.current("delete", key);
        match (mode, current) {
            (DeleteMode::Unconditional, Ok(Current::Missing)) => return Ok(()),
            // A damaged file can still be removed unconditionally: that is how an operator
            // clears it.
            (DeleteMode::Unconditional, Ok(Current::Object(_)) | Err(_)) => {}
            (DeleteMode::IfVersion(_), Ok(Current::Missing)) => return Err(self.not_found(key)),
            (DeleteMode::IfVersion(expected), Ok(Current::Object(h))) => {
                if h.version != expected.as_str() {
                    return Err(StoreError::Precondition {
                        store: self.name.clone(),
                        key: key.to_owned(),
                        expected: expected.to_string(),
                    });
                }
            }
            (DeleteMode::IfVersion(_), Err(e)) => return Err(e),
        }
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        }
        durable::sync_parent_of(&target).map_err(io)?;
        drop(guard);
        durable::remove_empty_parents(&self.objects, &target);
        Ok(())
    }

    fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        let mut keys = Vec::new();
        self.collect_keys(&self.objects, "", prefix, continuation, &mut keys)
            .map_err(|e| self.io_error("list", prefix, e))?;
        keys.sort_unstable();
        let more = keys.len() > self.page_size;
        keys.truncate(self.page_size);
        let mut objects = Vec::with_capacity(keys.len());
        for key in &keys {
            // An object deleted since the walk is simply not listed, as on S3, and as on S3
            // a listing carries no user metadata.
            match self.head(key) {
                Ok(meta) => objects.push(ObjectMeta {
                    metadata: Metadata::new(),
                    ..meta
                }),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(store = %self.name, key, error = %e, "skipping a file that is not an object");
                }
            }
        }
        let next = if more { keys.last().cloned() } else { None };
        Ok(ListPage { objects, next })
    }

    /// Walks `dir` (holding keys that start with `dir_key`), descending only into directories
    /// that can hold keys under `prefix`.
    fn collect_keys(
        &self,
        dir: &Path,
        dir_key: &str,
        prefix: &str,
        after: Option<&str>,
        keys: &mut Vec<String>,
    ) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Removed by a concurrent delete of its last object.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let file_type = entry.file_type()?;
            if let Some(segment) = name.strip_suffix(DIR_SUFFIX)
                && file_type.is_dir()
            {
                let sub = format!("{dir_key}{segment}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    self.collect_keys(&entry.path(), &sub, prefix, after, keys)?;
                }
            } else if let Some(segment) = name.strip_suffix(OBJECT_SUFFIX)
                && file_type.is_file()
            {
                let key = format!("{dir_key}{segment}");
                if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                    keys.push(key);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.inner.name.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_delete: true,
            versions: false,
            content_hash_versions: false,
        }
    }

    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        check_key(&self.inner.name, key)?;
        let owned = key.to_owned();
        self.blocking("get", key, move |s| s.get(&owned)).await
    }

    /// Streams the body in [`STREAM_CHUNK`] pieces from the file opened first: a replace
    /// publishes a new file under the name, so the open file stays the version `meta` names
    /// however long the read takes.
    async fn get_stream(&self, key: &str) -> StoreResult<GetStream> {
        check_key(&self.inner.name, key)?;
        let owned = key.to_owned();
        let (file, meta) = self
            .blocking("get", key, move |s| s.open_body(&owned))
            .await?;
        let (store, key) = (self.clone(), key.to_owned());
        let left = meta.size;
        let chunks = futures::stream::try_unfold((file, left), move |(mut file, left)| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = usize::try_from(left.min(STREAM_CHUNK as u64)).unwrap_or(STREAM_CHUNK);
                let read_key = key.clone();
                let (file, chunk) = store
                    .blocking("get", &key, move |s| {
                        let mut chunk = vec![0u8; want];
                        file_read_exact(&mut file, &mut chunk)
                            .map_err(|e| s.io_error("get", &read_key, e))?;
                        Ok((file, chunk))
                    })
                    .await?;
                Ok(Some((Bytes::from(chunk), (file, left - want as u64))))
            }
        });
        Ok(GetStream {
            meta,
            body: Box::pin(chunks),
        })
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        check_key(&self.inner.name, key)?;
        let owned = key.to_owned();
        self.blocking("head", key, move |s| s.head(&owned)).await
    }

    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        check_key(&self.inner.name, key)?;
        let owned = key.to_owned();
        self.blocking("put", key, move |s| s.put(&owned, &body, &options))
            .await
    }

    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        check_key(&self.inner.name, key)?;
        let owned = key.to_owned();
        self.blocking("delete", key, move |s| s.delete(&owned, &mode))
            .await
    }

    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        check_prefix(&self.inner.name, prefix)?;
        let (owned, after) = (prefix.to_owned(), continuation.map(str::to_owned));
        self.blocking("list", prefix, move |s| s.list(&owned, after.as_deref()))
            .await
    }
}
