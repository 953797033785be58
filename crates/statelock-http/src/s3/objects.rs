//! HEAD and GET of any object the front serves (states and lock objects, bytes as stored),
//! and PUT and DELETE of states through the state service (a completed multipart upload is
//! written through the same `write_state`), and of the probe's scratch objects.
//!
//! S3 carries no lock ID with a write. Without principals the lock is therefore advisory for
//! the write itself, as on AWS: a state write is not refused because someone holds the lock.
//! With principals the writer is known, and a locked state is written (or deleted) only by
//! the principal that took the lock (`Fence::Owner`). The stale-write guard and the history
//! apply either way, and the history names the holder.

use bytes::Bytes;
use s3s::dto::{
    DeleteObjectOutput, ETag, ETagCondition, GetObjectInput, GetObjectOutput, HeadObjectInput,
    HeadObjectOutput, PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp,
};
use s3s::{S3ErrorCode, S3Result};
use statelock_core::StateKey;
use statelock_state::{Expect, Fence, StateError};
use statelock_store::{GetResult, StoreError};

use crate::app::AppState;
use crate::auth;

use super::body::etag;
use super::errors::{error, from_state, from_store};
use super::keys::Target;

const JSON: &str = "application/json";

/// The object at `target`, or `NoSuchKey`.
async fn fetch(app: &AppState, target: &Target) -> S3Result<GetResult> {
    let key = target.object_key();
    match app.store().get(&key).await {
        Ok(found) => Ok(found),
        Err(StoreError::NotFound { .. }) => Err(error(
            S3ErrorCode::NoSuchKey,
            format!("no object is stored at {key}"),
        )),
        Err(e) => Err(from_store(e)),
    }
}

/// `If-Match` and `If-None-Match` of a read, against the current ETag.
fn check_read_conditions(
    tag: &str,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if let Some(condition) = if_match
        && !matches(condition, tag)
    {
        return Err(error(
            S3ErrorCode::PreconditionFailed,
            format!("If-Match does not match the current ETag \"{tag}\""),
        ));
    }
    if let Some(condition) = if_none_match
        && matches(condition, tag)
    {
        return Err(error(S3ErrorCode::NotModified, "Not Modified"));
    }
    Ok(())
}

fn matches(condition: &ETagCondition, tag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == tag,
    }
}

fn last_modified(found: &GetResult) -> Option<Timestamp> {
    found.meta.last_modified.map(Timestamp::from)
}

pub(super) async fn head(
    app: &AppState,
    target: &Target,
    input: &HeadObjectInput,
) -> S3Result<HeadObjectOutput> {
    let found = fetch(app, target).await?;
    // Stores keep no MD5, so the ETag costs a read of the body; states are small.
    let tag = etag(&found.body);
    check_read_conditions(&tag, input.if_match.as_ref(), input.if_none_match.as_ref())?;
    Ok(HeadObjectOutput {
        accept_ranges: Some("bytes".to_owned()),
        content_length: Some(found.body.len() as i64),
        content_type: Some(JSON.to_owned()),
        e_tag: Some(ETag::Strong(tag)),
        last_modified: last_modified(&found),
        ..Default::default()
    })
}

pub(super) async fn get(
    app: &AppState,
    target: &Target,
    input: &GetObjectInput,
) -> S3Result<GetObjectOutput> {
    let found = fetch(app, target).await?;
    let tag = etag(&found.body);
    check_read_conditions(&tag, input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let total = found.body.len() as u64;
    let (body, content_range) = match &input.range {
        None => (found.body.clone(), None),
        Some(range) => {
            let span = range.check(total).map_err(|_| {
                error(
                    S3ErrorCode::InvalidRange,
                    format!(
                        "the range {} is not satisfiable for an object of {total} bytes",
                        range.to_header_string()
                    ),
                )
            })?;
            // Both ends are within the body, which is held in memory.
            let (start, end) = (span.start as usize, span.end as usize);
            (
                found.body.slice(start..end),
                Some(format!("bytes {start}-{}/{total}", end - 1)),
            )
        }
    };
    Ok(GetObjectOutput {
        accept_ranges: Some("bytes".to_owned()),
        content_length: Some(body.len() as i64),
        content_range,
        content_type: Some(JSON.to_owned()),
        e_tag: Some(ETag::Strong(tag)),
        last_modified: last_modified(&found),
        body: Some(StreamingBlob::from(s3s::Body::from(body))),
        ..Default::default()
    })
}

/// PUT of a state: S3's conditional headers, then one state-service write.
pub(super) async fn put_state(
    app: &AppState,
    key: &StateKey,
    input: &PutObjectInput,
    bytes: Bytes,
) -> S3Result<PutObjectOutput> {
    let expect = write_conditions(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let output = put_output(&bytes);
    write_state(app, key, bytes, expect).await?;
    Ok(output)
}

/// What a PutObject answers for `bytes`: their ETag and size.
fn put_output(bytes: &[u8]) -> PutObjectOutput {
    PutObjectOutput {
        e_tag: Some(ETag::Strong(etag(bytes))),
        size: Some(bytes.len() as i64),
        ..Default::default()
    }
}

/// What `If-None-Match: *` and `If-Match` of a state write (PutObject,
/// CompleteMultipartUpload) ask of the stored state; the state service checks it on the
/// version its compare-and-swap replaces, so nothing can be written in between.
pub(super) fn write_conditions<'a>(
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Expect<'a>> {
    match (if_match, if_none_match) {
        (None, None) => Ok(Expect::Any),
        (None, Some(ETagCondition::Any)) => Ok(Expect::Absent),
        (None, Some(_)) => Err(error(
            S3ErrorCode::NotImplemented,
            "If-None-Match on a write supports only '*'",
        )),
        (Some(ETagCondition::ETag(tag)), None) => Ok(Expect::Md5(tag.value())),
        (Some(ETagCondition::Any), None) => Err(error(
            S3ErrorCode::NotImplemented,
            "If-Match on a write supports only an ETag, not '*'",
        )),
        (Some(_), Some(_)) => Err(error(
            S3ErrorCode::InvalidArgument,
            "If-Match and If-None-Match together on a write",
        )),
    }
}

/// S3 carries no lock ID with a write. Without principals the lock is advisory for it, as
/// on AWS; with principals, a locked state is written only by the principal that locked it.
fn fence(caller: Option<&auth::Caller>) -> Fence<'_> {
    match caller.and_then(|c| c.principal.as_ref()) {
        Some(principal) => Fence::Owner(&principal.name),
        None => Fence::Advisory,
    }
}

/// One state-service write of a whole state, whichever S3 operation carried it.
pub(super) async fn write_state(
    app: &AppState,
    key: &StateKey,
    bytes: Bytes,
    expect: Expect<'_>,
) -> S3Result<()> {
    let caller = auth::current();
    app.states()
        .write_expecting(key, bytes, fence(caller.as_ref()), None, expect)
        .await
        .map_err(|e| match e {
            StateError::NoState(_) => error(
                S3ErrorCode::NoSuchKey,
                format!("If-Match was given but no state is stored at {key}"),
            ),
            e => from_state(e),
        })?;
    Ok(())
}

/// DELETE of a state; a missing one is success, as on S3.
pub(super) async fn delete_state(app: &AppState, key: &StateKey) -> S3Result<DeleteObjectOutput> {
    let caller = auth::current();
    match app.states().delete(key, fence(caller.as_ref()), None).await {
        Ok(_) | Err(StateError::NoState(_)) => Ok(DeleteObjectOutput::default()),
        Err(e) => Err(from_state(e)),
    }
}

/// PUT of a probe scratch object: the same conditions as a state write, on a plain object.
pub(super) async fn put_scratch(
    app: &AppState,
    key: &str,
    input: &PutObjectInput,
    bytes: Bytes,
) -> S3Result<PutObjectOutput> {
    let expect = write_conditions(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let output = put_output(&bytes);
    app.states()
        .scratch_put(key, bytes, expect)
        .await
        .map_err(from_state)?;
    Ok(output)
}

/// DELETE of a probe scratch object, with `If-Match` if given.
pub(super) async fn delete_scratch(
    app: &AppState,
    key: &str,
    if_match: Option<&ETagCondition>,
) -> S3Result<DeleteObjectOutput> {
    let expect = match if_match {
        None | Some(ETagCondition::Any) => Expect::Any,
        Some(ETagCondition::ETag(tag)) => Expect::Md5(tag.value()),
    };
    app.states()
        .scratch_delete(key, expect)
        .await
        .map_err(from_state)?;
    Ok(DeleteObjectOutput::default())
}
