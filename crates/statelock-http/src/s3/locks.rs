//! PUT and DELETE of `<key>.tflock` objects: lock acquire and release through the lock
//! protocol, never a plain write, so the lock object keeps its meaning for every client.
//!
//! A PUT is an acquire whether or not it carries `If-None-Match: *` (Terraform and OpenTofu
//! always send it): a plain PUT that replaced someone else's lock would end mutual exclusion
//! for everyone. The same ID putting again succeeds (spec §2.4: an SDK retry of a create that
//! landed must not find itself locked out). Terraform unlocks by reading the lock, comparing
//! the ID itself and sending a plain DeleteObject, so a DELETE releases whatever lock is there.

use std::time::Instant;

use bytes::Bytes;
use s3s::dto::{DeleteObjectOutput, ETag, PutObjectInput, PutObjectOutput};
use s3s::{S3ErrorCode, S3Result};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{DeleteMethod, LockError, LockState};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::lock_wait;

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
    if info.id.is_empty() {
        return Err(error(
            S3ErrorCode::InvalidArgument,
            "the lock record has an empty ID; the client must choose the ID it will unlock with",
        ));
    }
    let started = Instant::now();
    let outcome = lock_wait::acquire(app, key, info, app.config().locking.wait).await;
    app.metrics().lock_waited(started.elapsed());
    let held = outcome.map_err(from_api)?;
    app.metrics().lock_taken();
    tracing::info!(%key, id = %held.id, who = %held.who, operation = %held.operation, "lock acquired (S3)");
    audit::record(
        app,
        AuditEvent::new(AuditAction::Lock, Some(key)).lock_id(&held.id),
    )
    .await;
    Ok(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag(held.encode().as_bytes()))),
        ..Default::default()
    })
}

pub(super) async fn delete_lock(app: &AppState, key: &StateKey) -> S3Result<DeleteObjectOutput> {
    let outcome = match app.locks().inspect(key).await.map_err(from_lock)? {
        None => Ok(None),
        Some(LockState::Held(held)) => app
            .locks()
            .release(key, &held.info.id)
            .await
            .map(|released| Some((released.info.id, released.method))),
        // Nobody can name the ID of a corrupt record; S3's DeleteObject removes it, and so
        // does this, as long as it is still the object just read.
        Some(LockState::Unreadable { version, .. }) => app
            .locks()
            .break_lock(key, Some(&version))
            .await
            .map(|broken| Some((String::new(), broken.method))),
    };
    // Whatever the outcome, the lock may be free now: let this replica's first waiter look.
    app.waiting().wake_head(key);
    match outcome {
        Ok(Some((id, method))) => {
            if let DeleteMethod::Plain { reason } = &method {
                tracing::warn!(%key, %reason, "lock released by read, compare and plain delete");
            }
            app.metrics().lock_deleted(&method);
            app.metrics().lock_released();
            tracing::info!(%key, %id, "lock released (S3)");
            audit::record(
                app,
                AuditEvent::new(AuditAction::Unlock, Some(key)).lock_id(id),
            )
            .await;
        }
        // Already gone (released between the read and the delete): S3 answers 204 too.
        Ok(None) | Err(LockError::NotLocked { .. }) => {}
        Err(e) => return Err(from_lock(e)),
    }
    Ok(DeleteObjectOutput::default())
}
