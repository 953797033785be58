//! `POST .../rollback?to=<id>[&force=true]`: copies an old version forward as a new serial,
//! through the state service's rollback (`StateService::{plan_rollback, rollback}`, the one
//! `statelock state rollback` uses): under the state's own `.tflock` lock, so it excludes
//! Terraform, OpenTofu and other servers exactly as they exclude each other; `serial =
//! current + 1` on the current lineage; "no changes" writes nothing unless `force=true`; the
//! lock is checked to be still ours right before the compare-and-swap. This module maps the
//! outcome to statuses.

use axum::response::Response;
use serde::Deserialize;
use statelock_core::state::{RollbackError as PlanError, lineage_text};
use statelock_core::{LockInfo, StateKey};
use statelock_state::versions::FetchError;
use statelock_state::{
    LockRelease, PlannedRollback, ROLLBACK_OPERATION, RecordIn, RollbackError, RolledBack,
};

use crate::app::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct RollbackQuery {
    to: String,
    #[serde(default)]
    force: bool,
}

/// Plans, then locks, writes and releases the lock whatever happened in between.
pub async fn rollback(
    app: &AppState,
    key: &StateKey,
    q: RollbackQuery,
) -> Result<Response, ApiError> {
    let id = super::parse_id(&q.to)?.to_string();
    let planned = app
        .states()
        .plan_rollback(key, &id, q.force)
        .await
        .map_err(|e| refusal(key, &id, e))?;
    if planned.no_changes() {
        tracing::info!(%key, to = %id, "rollback: the version has the current content; nothing written");
        return Ok(super::json(&serde_json::json!({
            "key": key.as_str(),
            "rolled_back_to": id,
            "no_changes": true,
        })));
    }
    let written = execute(app, &planned, &id).await?;
    Ok(super::json(&serde_json::json!({
        "key": key.as_str(),
        "rolled_back_to": id,
        "serial": written.serial,
        "lineage": written.lineage,
    })))
}

/// Locks, writes and releases whatever happened in between: the rollback of a plan as the
/// API and the web UI run it (`id` is the version rolled back to, for messages).
pub(crate) async fn execute(
    app: &AppState,
    planned: &PlannedRollback,
    id: &str,
) -> Result<RolledBack<()>, ApiError> {
    let key = &planned.key;
    let who = format!("statelock-rollback@{}", statelock_lock::hostname());
    let holder = LockInfo::new(ROLLBACK_OPERATION, &who, env!("CARGO_PKG_VERSION"));
    let outcome = app
        .states()
        .rollback(
            planned,
            holder,
            RecordIn::History,
            |_| async {},
            std::future::pending(),
        )
        .await;
    if let LockRelease::Failed { lock_id, error } = &outcome.release {
        tracing::error!(%key, %lock_id, %error, "rollback: could not release the lock; force-unlock it with this ID");
    }
    outcome.result.map_err(|e| refusal(key, id, e))
}

/// The API's (and the UI's) answer to a refused rollback.
pub(crate) fn refusal(key: &StateKey, id: &str, e: RollbackError) -> ApiError {
    match e {
        RollbackError::Version(e) if e.is_missing() => ApiError::NotFound(format!(
            "state {key} has no version {id} (it may have been pruned by the retention setting)"
        )),
        RollbackError::Plan {
            error: PlanError::Encrypted,
            ..
        } => ApiError::Unprocessable(format!(
            "state {key} is OpenTofu-encrypted: a copy with a new serial would fail OpenTofu's serial check \
             on decrypt; fetch GET /v1/api/states/{key}/versions/{id} and `tofu state push` it instead"
        )),
        RollbackError::Plan {
            error: PlanError::LineageMismatch { version, current },
            ..
        } => ApiError::conflict(format!(
            "version {id} has lineage {} but the current state of {key} has lineage {}; \
             add force=true to roll back across lineages (the copy gets the current lineage)",
            lineage_text(version.as_deref()),
            lineage_text(current.as_deref())
        )),
        RollbackError::Plan {
            error: e @ PlanError::NotAState { .. },
            ..
        } => ApiError::Unprocessable(e.to_string()),
        RollbackError::Lock(e) => e.into(),
        e @ (RollbackError::Moved { .. }
        | RollbackError::TakenOver { .. }
        | RollbackError::Changed { .. }
        | RollbackError::Interrupted { .. }) => ApiError::conflict(e.to_string()),
        RollbackError::Version(FetchError::Store { source, .. }) => source.into(),
        RollbackError::Version(e) => ApiError::Unprocessable(e.to_string()),
        RollbackError::Store(e) => e.into(),
    }
}
