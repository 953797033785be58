//! LOCK and UNLOCK (spec §4.2–4.3): the body and `?wait=` parsed here, then one call of the
//! state service (`StateService::{lock, unlock}`), where waiting in line, stuck-lock takeover
//! and the `.tflock` protocol live.
//!
//! UNLOCK bodies come in three forms: the LOCK record (a normal release, compared by ID), an
//! ID-only record (OpenTofu ≥1.10 `force-unlock`) and an empty body (Terraform's
//! `force-unlock`, which never sends the ID, hashicorp/terraform#28421). The empty body is the
//! only way Terraform users can force-unlock, so it removes whatever lock is there.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::LockError;
use statelock_state::{LockRequest, Unlock, parse_lock_wait};

use crate::app::AppState;
use crate::auth::{self, Permission};
use crate::body::read_limited;
use crate::error::ApiError;

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
    let info = decode_record(&read_record(app, headers, body).await?)?
        .ok_or_else(|| ApiError::BadRequest("LOCK needs a lock record as its body".to_owned()))?;
    let request = LockRequest {
        wait: requested_wait(uri.query())?.unwrap_or(app.config().locking.wait),
        // Only read when a TTL makes a takeover possible; an admin on the state may.
        may_take_over: app.config().locking.ttl.is_some() && auth::may(app, Permission::Admin, key),
        // `?ID=` fences this front's writes: no owner record is needed.
        owner: None,
    };
    let held = app.states().lock(key, info, request).await?;
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
    let record = decode_record(&read_record(app, headers, body).await?)?;
    if record.as_ref().is_none_or(LockInfo::is_id_only) {
        auth::require(app, Permission::Admin, key)?;
    }
    let how = match &record {
        None => Unlock::Break,
        Some(info) => Unlock::Release {
            id: &info.id,
            forced: info.is_id_only(),
        },
    };
    match app.states().unlock(key, how).await {
        Ok(_) => Ok((StatusCode::OK, format!("state {key} unlocked\n")).into_response()),
        // Nothing to release: a retried UNLOCK whose first attempt landed, or a lock already
        // force-unlocked. Either way the caller's goal holds.
        Err(LockError::NotLocked { .. }) => {
            tracing::info!(%key, "UNLOCK of a state that is not locked");
            Ok((StatusCode::OK, format!("state {key} was not locked\n")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn read_record(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    read_limited(
        headers,
        body,
        MAX_LOCK_BODY,
        "lock record",
        app.config().body_timeout,
    )
    .await
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

/// The wait a LOCK asked for in its query string, if any.
fn requested_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut wait = None;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("wait=") {
            // Only digits and unit letters are meaningful, so no percent-decoding is needed;
            // anything encoded is refused by the parser and named in the 400.
            wait = Some(
                parse_lock_wait(value)
                    .map_err(|e| ApiError::BadRequest(format!("invalid ?wait=: {e}")))?,
            );
        }
    }
    Ok(wait)
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_comes_from_the_query_and_is_capped() {
        assert_eq!(requested_wait(None).unwrap(), None);
        assert_eq!(requested_wait(Some("ID=x")).unwrap(), None);
        assert_eq!(
            requested_wait(Some("ID=x&wait=10m")).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            requested_wait(Some("wait=0")).unwrap(),
            Some(Duration::ZERO)
        );
        assert!(requested_wait(Some("wait=2h")).is_err());
        assert!(requested_wait(Some("wait=soon")).is_err());
    }
}
