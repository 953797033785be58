//! A state's versions: the listing, one version's body, and the diff of two.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use statelock_core::StateKey;
use statelock_core::state::{DiffError, Side, diff as diff_states};
use statelock_store::ObjectStoreExt;

use crate::app::AppState;
use crate::error::ApiError;
use statelock_state::history::VersionId;
use statelock_state::versions::FetchError;

/// `GET .../versions`: newest first. An empty list (not 404) for a state with no history, since
/// history survives the state's deletion and may also predate it.
pub async fn list(app: &AppState, key: &StateKey) -> Result<Response, ApiError> {
    let versions = app.states().server_history(key).await?;
    Ok(super::json(&serde_json::json!({
        "key": key.as_str(),
        "versions": versions,
    })))
}

/// `GET .../versions/<id>`: the stored bytes, exactly as the client wrote them.
pub async fn body(app: &AppState, key: &StateKey, id: &VersionId) -> Result<Response, ApiError> {
    let bytes = version_body(app, key, id).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

/// The body of version `id`, or a 404 that names it.
pub async fn version_body(
    app: &AppState,
    key: &StateKey,
    id: &VersionId,
) -> Result<Bytes, ApiError> {
    match app.states().version(key, &id.to_string()).await {
        Ok(found) => Ok(found.body),
        Err(e) if e.is_missing() => Err(ApiError::NotFound(format!(
            "state {key} has no version {id} (it may have been pruned by the retention setting)"
        ))),
        Err(FetchError::Store { source, .. }) => Err(source.into()),
        Err(e) => Err(ApiError::Unprocessable(e.to_string())),
    }
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: String,
    to: Option<String>,
}

/// `GET .../diff?from=<id>&to=<id|current>` (`to` defaults to `current`, the stored state).
pub async fn diff(app: &AppState, key: &StateKey, q: DiffQuery) -> Result<Response, ApiError> {
    let to = q.to.unwrap_or_else(|| "current".to_owned());
    let old = side(app, key, &q.from).await?;
    let new = side(app, key, &to).await?;
    match diff_states(&old, &new) {
        Ok(d) => Ok(super::json(&serde_json::json!({
            "key": key.as_str(),
            "from": q.from,
            "to": to,
            "resources": d.resources,
            "outputs": d.outputs,
        }))),
        Err(DiffError::Encrypted(which)) => {
            let name = match which {
                Side::From => &q.from,
                Side::To => &to,
            };
            Err(ApiError::Unprocessable(format!(
                "encrypted, cannot diff: {which} ({name}) of state {key} is an OpenTofu client-side \
                 encrypted state, and the server never has its key"
            )))
        }
        Err(DiffError::NotAState(which, e)) => {
            let name = match which {
                Side::From => &q.from,
                Side::To => &to,
            };
            Err(ApiError::Unprocessable(format!(
                "cannot diff: {which} ({name}) of state {key} is not a state document: {e}"
            )))
        }
    }
}

async fn side(app: &AppState, key: &StateKey, which: &str) -> Result<Bytes, ApiError> {
    if which == "current" {
        return Ok(app
            .store()
            .get_if_exists(key.as_str())
            .await?
            .ok_or_else(|| ApiError::NoState(key.clone()))?
            .body);
    }
    let id = super::parse_id(which)?;
    version_body(app, key, &id).await
}
