//! PUT and DELETE of `<key>.tflock` objects: lock acquire and release through the lock
//! protocol, never a plain write, so the lock object keeps its meaning for every client.
//!
//! A PUT is an acquire whether or not it carries `If-None-Match: *` (Terraform and OpenTofu
//! always send it): a plain PUT that replaced someone else's lock would end mutual exclusion
//! for everyone. The same ID putting again succeeds (spec §2.4: an SDK retry of a create that
//! landed must not find itself locked out). Terraform unlocks by reading the lock, comparing
//! the ID itself and sending a plain DeleteObject, so a DELETE releases whatever lock is there;
//! with `If-Match` (statelock's own S3 adapter) only if it is still the lock with that ETag.
//! Both are one state-service call (`StateService::lock` with the server's wait and TTL, so
//! a held lock queues the PUT; `unlock`), which also records the audit line and metrics.

use bytes::Bytes;
use s3s::dto::{DeleteObjectOutput, ETag, ETagCondition, PutObjectInput, PutObjectOutput};
use s3s::{S3ErrorCode, S3Result};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::LockError;
use statelock_state::{LockRequest, Unlock};

use crate::app::AppState;
use crate::auth::{self, Permission};

use super::body::etag;
use super::errors::{error, from_api, from_lock};

/// Lock records are a few hundred bytes; anything this large is not one.
pub(super) const MAX_LOCK_BODY: usize = 64 * 1024;

pub(super) async fn put_lock(
    app: &AppState,
    key: &StateKey,
    input: &PutObjectInput,
    bytes: Bytes,
) -> S3Result<PutObjectOutput> {
    if input.if_match.is_some() {
        return Err(error(
            S3ErrorCode::NotImplemented,
            "If-Match on a .tflock object is not supported: locks are created with \
             If-None-Match: * and removed with DeleteObject",
        ));
    }
    let info = LockInfo::decode(&bytes).map_err(|e| {
        error(
            S3ErrorCode::InvalidArgument,
            format!("the body of {} is not a lock record: {e}", key.lock_key()),
        )
    })?;
    let caller = auth::current();
    let request = LockRequest {
        wait: app.config().locking.wait,
        may_take_over: app.config().locking.ttl.is_some() && auth::may(app, Permission::Admin, key),
        // With principals, the lock's principal is the only one whose writes pass the fence.
        owner: caller
            .as_ref()
            .and_then(|c| c.principal.as_ref())
            .map(|p| p.name.as_str()),
    };
    let held = app
        .states()
        .lock(key, info, request)
        .await
        .map_err(|e| from_api(e.into()))?;
    Ok(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag(held.encode().as_bytes()))),
        ..Default::default()
    })
}

pub(super) async fn delete_lock(
    app: &AppState,
    key: &StateKey,
    if_match: Option<&ETagCondition>,
) -> S3Result<DeleteObjectOutput> {
    let how = match if_match {
        None | Some(ETagCondition::Any) => Unlock::Current,
        Some(ETagCondition::ETag(tag)) => Unlock::CurrentMatching { md5: tag.value() },
    };
    match app.states().unlock(key, how).await {
        // Already gone (released between the client's read and its delete): S3 answers 204
        // too.
        Ok(_) | Err(LockError::NotLocked { .. }) => Ok(DeleteObjectOutput::default()),
        Err(LockError::Changed { .. }) => Err(error(
            S3ErrorCode::PreconditionFailed,
            format!(
                "If-Match does not match {}: the lock changed since it was read; nothing was \
                 deleted",
                key.lock_key()
            ),
        )),
        Err(e) => Err(from_lock(e)),
    }
}
