//! The `http` backend's state requests: GET, POST/PUT and DELETE of `/v1/states/<key>`.
//!
//! Each parses what Terraform sent (the body within its limits, the `?ID=` lock ID) and makes
//! one call of the state service (`statelock_state::StateService`), which fences the write
//! against the lock, runs the stale-write guard, records the history and lands the write by
//! compare-and-swap, and reports the change to the server's metrics and audit trail.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt as _;
use serde::Deserialize;
use statelock_core::StateKey;
use statelock_state::Fence;

use crate::app::AppState;
use crate::body::read_limited;
use crate::error::ApiError;

/// The query of a write or delete: Terraform adds `?ID=<lock id>` while it holds the lock.
#[derive(Deserialize)]
struct WriteQuery {
    #[serde(rename = "ID")]
    id: Option<String>,
}

/// GET: 200 with the stored bytes, 404 when there is no state. The body streams from the
/// store with its `Content-Length`, so a read that fails halfway is a short body the client
/// refuses, never a state cut short that it takes for whole.
pub async fn read(app: &AppState, key: &StateKey) -> Result<Response, ApiError> {
    let found = app
        .states()
        .read_stream(key)
        .await?
        .ok_or_else(|| ApiError::NoState(key.clone()))?;
    let size = found.meta.size;
    // A small state goes out in one piece with its headers; only a large one is streamed.
    let body = if size <= STREAM_ABOVE {
        let chunks: Vec<bytes::Bytes> = found.body.try_collect().await?;
        Body::from(chunks.concat())
    } else {
        Body::from_stream(found.body)
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

/// States larger than this are streamed from the store rather than read whole first.
const STREAM_ABOVE: u64 = 1024 * 1024;

/// POST/PUT: the body within its limits, then one call of the state service (fence, guard,
/// history, compare-and-swap).
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
    app.states()
        .write(key, bytes, Fence::LockId(id.as_deref()), client)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// DELETE: one call of the state service (fenced like a write; the content is kept in the
/// history first, then the state is removed only if it is still the version read).
pub async fn delete(
    app: &AppState,
    key: &StateKey,
    uri: &Uri,
    client: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let id = lock_id(uri)?;
    app.states()
        .delete(key, Fence::LockId(id.as_deref()), client)
        .await?;
    Ok((StatusCode::OK, format!("state {key} deleted\n")).into_response())
}

fn lock_id(uri: &Uri) -> Result<Option<String>, ApiError> {
    let Query(q) = Query::<WriteQuery>::try_from_uri(uri)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    Ok(q.id.filter(|id| !id.is_empty()))
}
