//! `POST .../rollback?to=<id>[&force=true]`: copies an old version forward as a new serial.
//!
//! It runs under the state's own `.tflock` lock, so it excludes Terraform, OpenTofu and other
//! servers exactly as they exclude each other, and writes with compare-and-swap like any write.
//! The copy is planned by [`plan_rollback`] (shared with `statelock state rollback`): it gets
//! `serial = current + 1` and the current lineage, so clients accept it as the next state, and
//! encrypted states are refused. As in the CLI, a version with the current content writes
//! nothing (`no_changes`) unless `force=true`, and the lock is checked to be still ours right
//! before the write.

use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use statelock_core::state::{RollbackError, lineage_text, plan_rollback};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::LockError;
use statelock_store::{ObjectStoreExt, PutMode, StoreError};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::error::ApiError;
use statelock_state::history::{self, Author, Kind};

/// The lock record's `Operation` while a rollback runs.
pub const OPERATION: &str = "statelock-rollback";

#[derive(Deserialize)]
pub struct RollbackQuery {
    to: String,
    #[serde(default)]
    force: bool,
}

/// Locks, rolls back, and releases the lock whatever happened in between.
pub async fn rollback(
    app: &AppState,
    key: &StateKey,
    q: RollbackQuery,
) -> Result<Response, ApiError> {
    let id = super::parse_id(&q.to)?;
    let who = format!("statelock-rollback@{}", statelock_lock::hostname());
    let info = LockInfo::new(OPERATION, &who, env!("CARGO_PKG_VERSION"));
    let acquired = app.locks().acquire(key, info).await?;
    let lock_id = acquired.lock.info.id;
    tracing::info!(%key, to = %id, %lock_id, "rollback: lock acquired");
    let outcome = copy_forward(app, key, &id, q.force, &who, &lock_id).await;
    match app.locks().release(key, &lock_id).await {
        // LOCKs queued on this replica get the lock at once, as after any UNLOCK.
        Ok(released) => {
            app.metrics().lock_deleted(&released.method);
            app.waiting().wake_head(key);
        }
        // Taken over or force-unlocked while the rollback ran (its fence then refused): the
        // lock is someone else's now, or nobody's, and not ours to release.
        Err(e @ (LockError::NotLocked { .. } | LockError::IdMismatch { .. })) => {
            tracing::warn!(%key, %lock_id, %e, "rollback: its lock was already lost");
        }
        Err(e) => {
            tracing::error!(%key, %lock_id, %e, "rollback: could not release the lock; force-unlock it with this ID");
        }
    }
    outcome
}

async fn copy_forward(
    app: &AppState,
    key: &StateKey,
    id: &history::VersionId,
    force: bool,
    who: &str,
    lock_id: &str,
) -> Result<Response, ApiError> {
    let old = super::versions::version_body(app, key, id).await?;
    let current = app.store().get_if_exists(key.as_str()).await?;
    let plan = plan_rollback(&old, current.as_ref().map(|c| &c.body[..]), force).map_err(
        |e| match e {
            RollbackError::Encrypted => ApiError::Unprocessable(format!(
                "state {key} is OpenTofu-encrypted: a copy with a new serial would fail OpenTofu's serial check \
                 on decrypt; fetch GET /v1/api/states/{key}/versions/{id} and `tofu state push` it instead"
            )),
            RollbackError::LineageMismatch { version, current } => ApiError::conflict(format!(
                "version {id} has lineage {} but the current state of {key} has lineage {}; \
                 add force=true to roll back across lineages (the copy gets the current lineage)",
                lineage_text(version.as_deref()),
                lineage_text(current.as_deref())
            )),
            e @ RollbackError::NotAState { .. } => ApiError::Unprocessable(e.to_string()),
        },
    )?;
    // As `statelock state rollback`: a version with the current content writes nothing.
    if plan.same_as_current && !force {
        tracing::info!(%key, to = %id, "rollback: the version has the current content; nothing written");
        return Ok(super::json(&serde_json::json!({
            "key": key.as_str(),
            "rolled_back_to": id.to_string(),
            "no_changes": true,
        })));
    }
    // The lock is still ours right before the write (a TTL takeover or a force-unlock may
    // have happened while the version was read), as every fenced write.
    app.locks().fence(key, Some(lock_id)).await?;
    let event = AuditEvent::new(AuditAction::Rollback, Some(key))
        .lock_id(lock_id)
        .states(current.as_ref().map(|c| &c.body[..]), Some(&plan.body[..]))
        .reason(format!("rolled back to version {id}"));
    let mode = match &current {
        Some(c) => PutMode::Update(c.meta.version.clone()),
        None => PutMode::Create,
    };
    let author = Author {
        kind: Kind::Rollback,
        who: who.to_owned(),
        lock_id: Some(lock_id.to_owned()),
    };
    let serial = plan.serial;
    match app
        .states()
        .put(key, Bytes::from(plan.body), mode, author)
        .await
    {
        Ok(_) => {
            tracing::warn!(%key, to = %id, serial, "state rolled back");
            audit::record(app, event).await;
            Ok(super::json(&serde_json::json!({
                "key": key.as_str(),
                "rolled_back_to": id.to_string(),
                "serial": serial,
                "lineage": plan.lineage,
            })))
        }
        Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
            Err(ApiError::conflict(format!(
                "state {key} was changed by a writer that ignored the lock during the rollback; nothing was written"
            )))
        }
        Err(e) => Err(e.into()),
    }
}
