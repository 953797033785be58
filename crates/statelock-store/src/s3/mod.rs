//! The S3 adapter: AWS S3 and S3-compatible servers through `aws-sdk-s3`.
//!
//! Writes carry a precomputed `x-amz-checksum-sha256` header, as OpenTofu sends it, rather
//! than SDK-computed trailers. Conditional writes and deletes are sent exactly once (no SDK
//! retries): a blind retry of a lock `Create` that had succeeded meets its own lock and reports
//! a conflict (opentofu#4405). Their ambiguous failures are settled by re-reading instead.

mod config;
mod errors;
mod learned;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption as SdkSse};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use md5::{Digest as _, Md5};
use sha2::Sha256;

pub use config::{S3Config, ServerSideEncryption};
use errors::{
    describe, is_ambiguous, is_not_found, is_not_implemented, is_precondition_failed,
    retry_conflicts,
};
use learned::Learned;

use crate::error::StoreError;
use crate::key::{check_key, check_prefix};
use crate::metadata::check_metadata;
use crate::port::{
    Capabilities, DeleteMode, GetResult, ListPage, Metadata, ObjectMeta, ObjectStore,
    ObjectVersion, Observation, PutMode, PutOptions, Quirk, StoreResult, Version,
};

/// A bucket (or a prefix in one) on S3 or an S3-compatible server.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    config: S3Config,
    name: String,
    /// What this server has shown it does, shared by the clones of this store.
    learned: Arc<Learned>,
}

/// A per-operation override that sends a request once: used for conditional writes and
/// deletes, whose blind retries are unsafe.
fn send_once() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
}

fn system_time(t: Option<&DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn size(len: Option<i64>) -> u64 {
    len.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// The `x-amz-meta-*` pairs of an answer, names lower-cased: S3 lower-cases them itself, but
/// some compatible servers answer with the case of their own header handling.
fn user_metadata(found: Option<&std::collections::HashMap<String, String>>) -> Metadata {
    found
        .into_iter()
        .flatten()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}

impl S3Store {
    /// Builds the client; sends nothing, so an unreachable server shows up at the first
    /// operation, not here.
    pub async fn connect(config: S3Config) -> Result<S3Store, StoreError> {
        let name = config.describe();
        if config.bucket.is_empty() {
            return Err(StoreError::other(
                name,
                "connect",
                "",
                "the bucket name is empty",
            ));
        }
        if let Some(prefix) = &config.prefix {
            check_key(&name, prefix)?;
        }
        if config.list_page_size.is_some_and(|n| n <= 0) {
            return Err(StoreError::other(
                name,
                "connect",
                "",
                "the listing page size must be positive",
            ));
        }
        let client = config.client().await;
        Ok(S3Store {
            client,
            config,
            name,
            learned: Arc::default(),
        })
    }

    /// The SDK client, for operations the port does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The bucket key of a port key.
    fn full_key(&self, key: &str) -> String {
        match &self.config.prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_owned(),
        }
    }

    /// The port key of a bucket key, if it is under our prefix.
    fn port_key<'k>(&self, full: &'k str) -> Option<&'k str> {
        match &self.config.prefix {
            Some(prefix) => full.strip_prefix(prefix.as_str())?.strip_prefix('/'),
            None => Some(full),
        }
    }

    fn other(&self, operation: &'static str, key: &str, msg: impl Into<String>) -> StoreError {
        StoreError::other(self.name.clone(), operation, key, msg.into())
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            store: self.name.clone(),
            key: key.to_owned(),
        }
    }

    fn precondition(&self, key: &str, expected: &Version) -> StoreError {
        StoreError::Precondition {
            store: self.name.clone(),
            key: key.to_owned(),
            expected: expected.to_string(),
        }
    }

    fn version(
        &self,
        operation: &'static str,
        key: &str,
        etag: Option<&str>,
    ) -> StoreResult<Version> {
        etag.map(Version::new)
            .ok_or_else(|| self.other(operation, key, "the server returned no ETag"))
    }

    /// GetObject of the current or one version, read into one buffer.
    async fn get_object(&self, key: &str, version_id: Option<&str>) -> StoreResult<GetResult> {
        let operation = if version_id.is_some() {
            "get version"
        } else {
            "get"
        };
        let out = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(self.full_key(key))
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        let mut out = match out {
            Ok(out) => out,
            // A version that is a delete marker answers 405 MethodNotAllowed: it has no body,
            // which the port reports as absence, like the memory store. A version ID that S3
            // cannot even parse answers 400 InvalidArgument: no such version either.
            Err(e)
                if is_not_found(&e)
                    || (version_id.is_some()
                        && (errors::status(&e) == Some(405)
                            || errors::is_invalid_argument(&e))) =>
            {
                let shown = match version_id {
                    Some(id) => format!("{key}?versionId={id}"),
                    None => key.to_owned(),
                };
                return Err(self.not_found(&shown));
            }
            Err(e) => return Err(self.other(operation, key, describe(&e))),
        };
        let expected = size(out.content_length);
        let mut buf = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
        loop {
            match out.body.try_next().await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    return Err(self.other(
                        operation,
                        key,
                        format!("reading the body: {}", crate::error::error_chain(&e)),
                    ));
                }
            }
        }
        if out.content_length.is_some() && buf.len() as u64 != expected {
            return Err(self.other(
                operation,
                key,
                format!(
                    "body has {} bytes, Content-Length said {expected}",
                    buf.len()
                ),
            ));
        }
        Ok(GetResult {
            meta: ObjectMeta {
                key: key.to_owned(),
                size: buf.len() as u64,
                version: self.version(operation, key, out.e_tag())?,
                last_modified: system_time(out.last_modified()),
                metadata: user_metadata(out.metadata()),
            },
            body: buf.freeze(),
        })
    }

    /// The outcome of a conditional put whose answer was lost or a 5xx: ours only if the
    /// stored bytes are exactly the bytes we sent. Anything else keeps the original error;
    /// guessing either way could hand out a lock twice or lose a state write. Sound because
    /// the bodies statelock writes conditionally are unique (a lock record carries its ID, a
    /// state write its serial under one holder's lock); two writers' identical bodies could
    /// not be told apart.
    async fn settle_put(
        &self,
        key: &str,
        body: &Bytes,
        original: StoreError,
    ) -> StoreResult<ObjectMeta> {
        let Ok(meta) = self.head(key).await else {
            return Err(original);
        };
        if meta.size != body.len() as u64 {
            return Err(original);
        }
        // A single-part upload's ETag is the MD5 of its bytes, which spares a download; with
        // SSE-KMS or on some servers it is not, and only the bytes themselves can tell.
        let md5 = format!("\"{:x}\"", Md5::digest(body));
        if meta.version.as_str() == md5 {
            tracing::warn!(store = %self.name, key, "conditional put failed ambiguously but its bytes are stored: counted as done");
            return Ok(meta);
        }
        match self.get(key).await {
            Ok(got) if got.body == *body => {
                tracing::warn!(store = %self.name, key, "conditional put failed ambiguously but its bytes are stored: counted as done");
                Ok(got.meta)
            }
            _ => Err(original),
        }
    }
}

/// A body with the digests its upload carries, computed once however often it is sent.
struct Payload {
    body: Bytes,
    sha256: String,
    md5: Option<String>,
}

impl Payload {
    fn new(body: Bytes, content_md5: bool) -> Payload {
        let b64 = |digest: &[u8]| base64::engine::general_purpose::STANDARD.encode(digest);
        Payload {
            sha256: b64(&Sha256::digest(&body)),
            md5: content_md5.then(|| b64(&Md5::digest(&body))),
            body,
        }
    }
}

impl S3Store {
    /// A PutObject of `payload` at the bucket key `full`; the caller adds its condition.
    fn put_request(
        &self,
        full: &str,
        payload: &Payload,
        options: &PutOptions,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let req = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(full)
            .body(ByteStream::from(payload.body.clone()))
            .content_length(payload.body.len() as i64)
            // Both headers, as OpenTofu sends them: moto, for one, records the checksum only
            // when the algorithm is named. A value set here stops the SDK computing its own.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&payload.sha256)
            .set_content_md5(payload.md5.clone())
            .set_content_type(options.content_type.clone())
            .set_metadata((!options.metadata.is_empty()).then(|| {
                options
                    .metadata
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect()
            }));
        match &self.config.sse {
            None => req,
            Some(ServerSideEncryption::S3) => req.server_side_encryption(SdkSse::Aes256),
            Some(ServerSideEncryption::Kms { key_id }) => req
                .server_side_encryption(SdkSse::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        }
    }

    /// Whether `key` is at `expected` right now; absence is "no", a failed read an error.
    async fn at_version(&self, key: &str, expected: &Version) -> StoreResult<bool> {
        match self.head(key).await {
            Ok(meta) => Ok(meta.version == *expected),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_delete: self.config.conditional_delete
                && self.learned.conditional_delete_works(),
            // On an unversioned bucket S3 lists the one current version, with ID "null".
            versions: true,
            content_hash_versions: true,
        }
    }

    fn observed(&self, observation: Observation) {
        match observation {
            Observation::ConditionalDeleteIgnored => {
                if self.learned.note(Quirk::ConditionalDeleteIgnored) {
                    tracing::warn!(store = %self.name, "{}", Quirk::ConditionalDeleteIgnored);
                }
            }
        }
    }

    fn quirks(&self) -> Vec<Quirk> {
        self.learned.quirks()
    }

    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        check_key(&self.name, key)?;
        self.get_object(key, None).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        check_key(&self.name, key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match out {
            Ok(out) => Ok(ObjectMeta {
                key: key.to_owned(),
                size: size(out.content_length),
                version: self.version("head", key, out.e_tag())?,
                last_modified: system_time(out.last_modified()),
                metadata: user_metadata(out.metadata()),
            }),
            Err(e) if is_not_found(&e) => Err(self.not_found(key)),
            Err(e) => Err(self.other("head", key, describe(&e))),
        }
    }

    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        check_key(&self.name, key)?;
        check_metadata(&self.name, key, &options.metadata)?;
        let full = self.full_key(key);
        let payload = Payload::new(body, options.content_md5);
        let body = &payload.body;
        let conditional = options.mode != PutMode::Overwrite;
        // Set once a compare-and-swap refused with the quoted ETag is sent again unquoted.
        let mut unquoted = false;
        loop {
            let result = retry_conflicts(|| {
                let req = self.put_request(&full, &payload, &options);
                let req = match &options.mode {
                    PutMode::Overwrite => req,
                    PutMode::Create => req.if_none_match("*"),
                    // The ETag goes back exactly as the server gave it, quotes included,
                    // unless the server has shown that it only takes it unquoted (RGW 16).
                    PutMode::Update(version) if unquoted => {
                        req.if_match(version.as_str().trim_matches('"'))
                    }
                    PutMode::Update(version) => req.if_match(self.learned.if_match_form(version)),
                };
                async move {
                    if conditional {
                        req.customize().config_override(send_once()).send().await
                    } else {
                        req.send().await
                    }
                }
            })
            .await;
            let err = match result {
                Ok(out) => {
                    if let PutMode::Update(version) = &options.mode {
                        if unquoted {
                            if self.learned.note(Quirk::IfMatchUnquoted) {
                                tracing::warn!(store = %self.name, key, "{}", Quirk::IfMatchUnquoted);
                            }
                        } else if self.learned.if_match_form(version) == version.as_str() {
                            // A swap went through with the ETag as the server gave it: this
                            // server's refusals are real, never the quoting quirk.
                            self.learned.quoted_if_match_is_right();
                        }
                    }
                    return Ok(ObjectMeta {
                        key: key.to_owned(),
                        size: body.len() as u64,
                        version: self.version("put", key, out.e_tag())?,
                        last_modified: None,
                        metadata: Metadata::new(),
                    });
                }
                Err(err) => err,
            };
            return match &options.mode {
                PutMode::Create if is_precondition_failed(&err) => Err(StoreError::AlreadyExists {
                    store: self.name.clone(),
                    key: key.to_owned(),
                }),
                // Ceph RGW 16 refuses If-Match with the quoted ETag it returned itself. A
                // refusal while the object is at exactly that ETag is that quirk: nothing was
                // written, so the swap is sent once more with the ETag unquoted; if the server
                // takes it, unquoted it stays for this store.
                PutMode::Update(expected)
                    if is_precondition_failed(&err)
                        && !unquoted
                        && self.learned.may_try_unquoted(expected) =>
                {
                    if self.at_version(key, expected).await? {
                        unquoted = true;
                        continue;
                    }
                    Err(self.precondition(key, expected))
                }
                PutMode::Update(expected) if is_precondition_failed(&err) && unquoted => {
                    // Refused in both forms while still at that ETag: quoting is not what
                    // this server objects to, so its refusals are not retried again.
                    if self.at_version(key, expected).await? {
                        self.learned.quoted_if_match_is_right();
                    }
                    Err(self.precondition(key, expected))
                }
                // AWS answers an If-Match put on a missing key with 404 NoSuchKey, SeaweedFS
                // with 412; for the port both mean "not at the expected version".
                PutMode::Update(expected) if is_precondition_failed(&err) || is_not_found(&err) => {
                    Err(self.precondition(key, expected))
                }
                _ if conditional && is_ambiguous(&err) => {
                    let original = self.other("put", key, describe(&err));
                    self.settle_put(key, body, original).await
                }
                _ => Err(self.other("put", key, describe(&err))),
            };
        }
    }

    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        check_key(&self.name, key)?;
        let full = self.full_key(key);
        let expected = match mode {
            DeleteMode::Unconditional => {
                return match self
                    .client
                    .delete_object()
                    .bucket(&self.config.bucket)
                    .key(&full)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // S3 answers 204 for a missing key; a server that says 404 means the same.
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(self.other("delete", key, describe(&e))),
                };
            }
            DeleteMode::IfVersion(_)
                if !self.config.conditional_delete || !self.learned.conditional_delete_works() =>
            {
                return Err(StoreError::NotImplemented {
                    store: self.name.clone(),
                    operation: "conditional delete",
                });
            }
            DeleteMode::IfVersion(expected) => expected,
        };
        let result = retry_conflicts(|| {
            self.client
                .delete_object()
                .bucket(&self.config.bucket)
                .key(&full)
                .if_match(self.learned.if_match_form(&expected))
                .customize()
                .config_override(send_once())
                .send()
        })
        .await;
        let Err(err) = result else {
            return Ok(());
        };
        if is_not_found(&err) {
            return Err(self.not_found(key));
        }
        // LocalStack answers 501 to DELETE with If-Match: nothing was deleted, and no
        // conditional delete will ever work there, so the caller's fallback is used from now
        // on without asking again.
        if is_not_implemented(&err) {
            if self.learned.note(Quirk::ConditionalDeleteNotImplemented) {
                tracing::warn!(store = %self.name, answer = %describe(&err), "{}", Quirk::ConditionalDeleteNotImplemented);
            }
            return Err(StoreError::NotImplemented {
                store: self.name.clone(),
                operation: "conditional delete",
            });
        }
        if is_precondition_failed(&err) {
            // 412 does not say whether the object changed or is gone; the port distinguishes.
            return match self.head(key).await {
                Err(StoreError::NotFound { .. }) => Err(self.not_found(key)),
                Ok(_) => Err(self.precondition(key, &expected)),
                Err(other) => Err(other),
            };
        }
        // An ambiguous failure is reported as it is, even if the object is now gone: another
        // client may have deleted it, and a retry will then say NotFound precisely.
        Err(self.other("conditional delete", key, describe(&err)))
    }

    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        check_prefix(&self.name, prefix)?;
        let full_prefix = match &self.config.prefix {
            Some(root) => format!("{root}/{prefix}"),
            None => prefix.to_owned(),
        };
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(full_prefix)
            .set_continuation_token(continuation.map(str::to_owned))
            .set_max_keys(self.config.list_page_size)
            .send()
            .await
            .map_err(|e| self.other("list", prefix, describe(&e)))?;
        let mut objects = Vec::with_capacity(out.contents().len());
        for object in out.contents() {
            let Some(key) = object.key().and_then(|k| self.port_key(k)) else {
                continue;
            };
            objects.push(ObjectMeta {
                key: key.to_owned(),
                size: size(object.size()),
                version: self.version("list", key, object.e_tag())?,
                last_modified: system_time(object.last_modified()),
                metadata: Metadata::new(),
            });
        }
        let next = if out.is_truncated() == Some(true) {
            let token = out.next_continuation_token().ok_or_else(|| {
                self.other(
                    "list",
                    prefix,
                    "truncated listing without a continuation token",
                )
            })?;
            Some(token.to_owned())
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
        check_key(&self.name, key)?;
        let full = self.full_key(key);
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.config.bucket)
                // A prefix listing also returns siblings such as `<key>-other`, filtered below.
                .prefix(&full)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .set_max_keys(self.config.list_page_size)
                .send()
                .await
                .map_err(|e| self.other("list versions", key, describe(&e)))?;
            let mut past_key = false;
            for v in out.versions() {
                past_key |= v.key().is_some_and(|k| k > full.as_str());
                if v.key() == Some(full.as_str()) {
                    versions.push(ObjectVersion {
                        key: key.to_owned(),
                        version_id: v.version_id().unwrap_or("null").to_owned(),
                        version: Version::new(v.e_tag().unwrap_or_default()),
                        size: size(v.size()),
                        last_modified: system_time(v.last_modified()),
                        is_latest: v.is_latest() == Some(true),
                        is_delete_marker: false,
                    });
                }
            }
            for m in out.delete_markers() {
                past_key |= m.key().is_some_and(|k| k > full.as_str());
                if m.key() == Some(full.as_str()) {
                    markers.push(ObjectVersion {
                        key: key.to_owned(),
                        version_id: m.version_id().unwrap_or("null").to_owned(),
                        version: Version::new(""),
                        size: 0,
                        last_modified: system_time(m.last_modified()),
                        is_latest: m.is_latest() == Some(true),
                        is_delete_marker: true,
                    });
                }
            }
            // Keys come in order, so once a later key shows up ours is complete.
            if out.is_truncated() != Some(true) || past_key {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            version_marker = out.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Err(self.other(
                    "list versions",
                    key,
                    "truncated version listing without a next key marker",
                ));
            }
        }
        Ok(merge_newest_first(versions, markers))
    }

    async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
        check_key(&self.name, key)?;
        self.get_object(key, Some(version_id)).await
    }
}

/// Merges versions and delete markers, each newest first as S3 lists them, into one history.
///
/// The SDK parses them into separate lists, losing the interleaving of the XML, so it is
/// rebuilt from timestamps; the current version goes first whatever its timestamp says, since
/// timestamps have only millisecond (on some servers second) resolution.
fn merge_newest_first(
    versions: Vec<ObjectVersion>,
    markers: Vec<ObjectVersion>,
) -> Vec<ObjectVersion> {
    let mut out = Vec::with_capacity(versions.len() + markers.len());
    let mut a = versions.into_iter().peekable();
    let mut b = markers.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                x.is_latest || (!y.is_latest && x.last_modified >= y.last_modified)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}
