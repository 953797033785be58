//! LOCK and UNLOCK (spec §4.2–4.3) on top of the `.tflock` lock protocol.
//!
//! UNLOCK bodies come in three forms: the LOCK record (a normal release, compared by ID), an
//! ID-only record (OpenTofu ≥1.10 `force-unlock`) and an empty body (Terraform's
//! `force-unlock`, which never sends the ID, hashicorp/terraform#28421). The empty body is the
//! only way Terraform users can force-unlock, so it removes whatever lock is there.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{DeleteMethod, LockError};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::auth::{self, Permission};
use crate::body::read_limited;
use crate::error::ApiError;
use crate::lock_policy::requested_wait;
use crate::lock_wait;

/// Lock records are a few hundred bytes; anything this large is not one.
const MAX_LOCK_BODY: usize = 64 * 1024;

/// LOCK: 200 with the stored record, 423 with the holder's record on conflict. The same ID
/// locking again gets 200, since clients retry LOCK after a 5xx whose lock did land. With
/// `?wait=` (or `--lock-wait`) a conflict waits for the lock first.
pub async fn lock(
    app: &AppState,
    key: &StateKey,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let info = decode_record(
        &read_limited(
            headers,
            body,
            MAX_LOCK_BODY,
            "lock record",
            app.config().body_timeout,
        )
        .await?,
    )?
    .ok_or_else(|| ApiError::BadRequest("LOCK needs a lock record as its body".to_owned()))?;
    if info.id.is_empty() {
        return Err(ApiError::BadRequest(
            "the lock record has an empty ID; the client must choose the ID it will unlock with"
                .to_owned(),
        ));
    }
    let wait = requested_wait(uri.query())?.unwrap_or(app.config().locking.wait);
    let started = std::time::Instant::now();
    let outcome = lock_wait::acquire(app, key, info, wait).await;
    app.metrics().lock_waited(started.elapsed());
    let held = outcome?;
    app.metrics().lock_taken();
    tracing::info!(%key, id = %held.id, who = %held.who, operation = %held.operation, "lock acquired");
    audit::record(
        app,
        AuditEvent::new(AuditAction::Lock, Some(key)).lock_id(&held.id),
    )
    .await;
    Ok(json(StatusCode::OK, held.encode()))
}

/// UNLOCK: releases on a matching ID, 409 with the holder otherwise; see the module doc for
/// the force-unlock forms.
pub async fn unlock(
    app: &AppState,
    key: &StateKey,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let record = decode_record(
        &read_limited(
            headers,
            body,
            MAX_LOCK_BODY,
            "lock record",
            app.config().body_timeout,
        )
        .await?,
    )?;
    if record.as_ref().is_none_or(LockInfo::is_id_only) {
        auth::require(app, Permission::Admin, key)?;
    }
    let outcome = match &record {
        None => app.locks().break_lock(key, None).await.map(|broken| {
            app.metrics().lock_deleted(&broken.method);
            let id = broken.info.map(|i| i.id).unwrap_or_default();
            tracing::warn!(%key, %id, "force-unlock (empty UNLOCK body): lock removed");
            (AuditAction::ForceUnlock, id)
        }),
        Some(info) => app.locks().release(key, &info.id).await.map(|released| {
            if let DeleteMethod::Plain { reason } = &released.method {
                tracing::warn!(%key, %reason, "lock released by read, compare and plain delete");
            }
            app.metrics().lock_deleted(&released.method);
            let id = released.info.id;
            if info.is_id_only() {
                tracing::warn!(%key, %id, "force-unlock (ID-only UNLOCK body): lock removed");
                (AuditAction::ForceUnlock, id)
            } else {
                tracing::info!(%key, %id, "lock released");
                (AuditAction::Unlock, id)
            }
        }),
    };
    // Whatever the outcome, the lock may be free now: let this replica's first waiter look.
    app.waiting().wake_head(key);
    match outcome {
        Ok((action, id)) => {
            app.metrics().lock_released();
            audit::record(app, AuditEvent::new(action, Some(key)).lock_id(id)).await;
            Ok((StatusCode::OK, format!("state {key} unlocked\n")).into_response())
        }
        // Nothing to release: a retried UNLOCK whose first attempt landed, or a lock already
        // force-unlocked. Either way the caller's goal holds.
        Err(LockError::NotLocked { .. }) => {
            tracing::info!(%key, "UNLOCK of a state that is not locked");
            Ok((StatusCode::OK, format!("state {key} was not locked\n")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The record in a LOCK/UNLOCK body; `None` for an empty body.
fn decode_record(bytes: &[u8]) -> Result<Option<LockInfo>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    LockInfo::decode(bytes)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
