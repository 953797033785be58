//! Reading, writing and deleting the state object.
//!
//! A write is fenced against the lock, checked by the stale-write guard, then stored as a
//! compare-and-swap on the version read (a create when nothing was there), so two servers on
//! one bucket can never both overwrite blindly. Every accepted write and every delete is first
//! recorded in the history (`crate::history`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use statelock_core::StateKey;
use statelock_store::{
    DeleteMode, ObjectMeta, ObjectStoreExt, PutMode, PutOptions, StoreError, StoreResult, Version,
};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::body::read_limited;
use crate::error::ApiError;
use statelock_state::guard::{self, StateHeader};
use statelock_state::history::{self, Author, Kind};

/// The query of a write or delete: Terraform adds `?ID=<lock id>` while it holds the lock.
#[derive(Deserialize)]
struct WriteQuery {
    #[serde(rename = "ID")]
    id: Option<String>,
}

/// GET: 200 with the stored bytes, 404 when there is no state.
pub async fn read(app: &AppState, key: &StateKey) -> Result<Response, ApiError> {
    let found = app
        .store()
        .get_if_exists(key.as_str())
        .await?
        .ok_or_else(|| ApiError::NoState(key.clone()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        found.body,
    )
        .into_response())
}

/// POST/PUT: fence, guard, then compare-and-swap.
pub async fn write(
    app: &AppState,
    key: &StateKey,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    client: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let id = lock_id(uri)?;
    let config = app.config();
    let bytes = read_limited(
        headers,
        body,
        config.max_state_size,
        "state",
        config.body_timeout,
    )
    .await?;
    let header = StateHeader::parse(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a state document: {e}")))?;
    let holder = app.locks().fence(key, id.as_deref()).await?;
    // Without the guard nothing reads the old state, so its serial is not audited.
    let mut before = None;
    let current = if config.stale_write_guard {
        let found = app.store().get_if_exists(key.as_str()).await?;
        if let Some(found) = &found {
            guard::check(&found.body, &bytes, &header).map_err(ApiError::conflict)?;
            if found.body == bytes {
                tracing::info!(%key, "write of identical bytes: nothing to store");
                // A retry of a write whose digest update failed heals the digest.
                app.locks().state_written(key, &bytes).await;
                return Ok(StatusCode::OK.into_response());
            }
        }
        found.map(|f| {
            before = Some(f.body);
            f.meta.version
        })
    } else {
        head_version(app, key).await?
    };
    let mode = match current {
        Some(version) => PutMode::Update(version),
        None => PutMode::Create,
    };
    let author = Author::of_write(Kind::Write, holder.as_ref(), client);
    let size = bytes.len();
    let event = AuditEvent::new(AuditAction::Write, Some(key))
        .lock_id(id.clone().unwrap_or_default())
        .states(before.as_deref(), Some(&bytes));
    match put_state(app, key, bytes, mode, author).await {
        Ok(_) => {
            tracing::info!(%key, serial = ?header.serial, lineage = ?header.lineage, id = ?id, "state written");
            app.metrics().state_written(size);
            audit::record(app, event).await;
            Ok(StatusCode::OK.into_response())
        }
        Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
            Err(ApiError::conflict(format!(
                "state {key} was changed by another writer while this write was checked; nothing was written, read the state again and retry"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// DELETE: fenced like a write; the content is kept in the history first, then the state is
/// removed only if it is still the version read.
pub async fn delete(
    app: &AppState,
    key: &StateKey,
    uri: &Uri,
    client: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let id = lock_id(uri)?;
    let holder = app.locks().fence(key, id.as_deref()).await?;
    let found = app
        .store()
        .get_if_exists(key.as_str())
        .await?
        .ok_or_else(|| ApiError::NoState(key.clone()))?;
    let version = found.meta.version;
    let author = Author::of_write(Kind::Delete, holder.as_ref(), client);
    let event = AuditEvent::new(AuditAction::Delete, Some(key))
        .lock_id(id.clone().unwrap_or_default())
        .states(Some(&found.body), None);
    history::record_snapshot(app.store(), key, found.body, author).await?;
    match app
        .store()
        .delete(key.as_str(), DeleteMode::IfVersion(version))
        .await
    {
        Ok(()) => {
            tracing::warn!(%key, id = ?id, "state deleted");
            app.locks().state_deleted(key).await;
            audit::record(app, event).await;
            Ok((StatusCode::OK, format!("state {key} deleted\n")).into_response())
        }
        Err(StoreError::NotFound { .. }) => Err(ApiError::NoState(key.clone())),
        Err(StoreError::Precondition { .. }) => Err(ApiError::conflict(format!(
            "state {key} was changed by another writer while it was being deleted; nothing was deleted"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Writes `bytes` as the state at `key` in `mode` through the history (the version is
/// recorded first), then tells the secondary lock: in dual-lock mode, clients still on
/// `dynamodb_table` check the state's `-md5` digest.
pub(crate) async fn put_state(
    app: &AppState,
    key: &StateKey,
    bytes: Bytes,
    mode: PutMode,
    author: Author,
) -> StoreResult<ObjectMeta> {
    let retention = app.config().history_retention;
    let written = history::write_state(
        app.store(),
        retention,
        key,
        bytes.clone(),
        PutOptions::json(mode),
        author,
    )
    .await?;
    app.locks().state_written(key, &bytes).await;
    Ok(written)
}

async fn head_version(app: &AppState, key: &StateKey) -> Result<Option<Version>, ApiError> {
    match app.store().head(key.as_str()).await {
        Ok(meta) => Ok(Some(meta.version)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn lock_id(uri: &Uri) -> Result<Option<String>, ApiError> {
    let Query(q) = Query::<WriteQuery>::try_from_uri(uri)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    Ok(q.id.filter(|id| !id.is_empty()))
}
