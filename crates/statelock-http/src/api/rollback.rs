//! `POST .../rollback?to=<id>[&force=true]`: copies an old version forward as a new serial.
//!
//! It runs under the state's own `.tflock` lock, so it excludes Terraform, OpenTofu and other
//! servers exactly as they exclude each other, and writes with compare-and-swap like any write.
//! The copy gets `serial = current + 1` and the current lineage, so clients accept it as the
//! next state. Encrypted states are refused: OpenTofu checks their plaintext serial against the
//! encrypted one, so a copy with a new serial could never be read back.

use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use statelock_core::{LockInfo, StateKey};
use statelock_store::{ObjectStoreExt, PutMode, StoreError};

use crate::app::AppState;
use crate::diff::is_encrypted;
use crate::error::ApiError;
use crate::guard::StateHeader;
use crate::history::{self, Author, Kind};

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
    let who = format!("statelock-rollback@{}", hostname());
    let info = LockInfo::new(OPERATION, &who, env!("CARGO_PKG_VERSION"));
    let acquired = app.locks().acquire(key, info).await?;
    let lock_id = acquired.lock.info.id;
    tracing::info!(%key, to = %id, %lock_id, "rollback: lock acquired");
    let outcome = copy_forward(app, key, &id, q.force, &who, &lock_id).await;
    if let Err(e) = app.locks().release(key, &lock_id).await {
        tracing::error!(%key, %lock_id, %e, "rollback: could not release the lock; force-unlock it with this ID");
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
    if is_encrypted(&old) || current.as_ref().is_some_and(|c| is_encrypted(&c.body)) {
        return Err(ApiError::Unprocessable(format!(
            "state {key} is OpenTofu-encrypted: a copy with a new serial would fail OpenTofu's serial check \
             on decrypt; fetch GET /v1/api/states/{key}/versions/{id} and `tofu state push` it instead"
        )));
    }
    let old_header = header(&old, "the version")?;
    let cur_header = match &current {
        Some(c) => Some(header(&c.body, "the current state")?),
        None => None,
    };
    let lineage = match &cur_header {
        Some(cur) if cur.lineage != old_header.lineage && !force => {
            return Err(ApiError::conflict(format!(
                "version {id} has lineage {:?} but the current state of {key} has lineage {:?}; \
                 add force=true to roll back across lineages (the copy gets the current lineage)",
                old_header.lineage, cur.lineage
            )));
        }
        Some(cur) => cur.lineage.clone(),
        None => old_header.lineage.clone(),
    };
    let base = cur_header
        .as_ref()
        .unwrap_or(&old_header)
        .serial
        .unwrap_or(0);
    let serial = base + 1;
    let body = rewrite(&old, serial, lineage.as_deref())?;
    let mode = match &current {
        Some(c) => PutMode::Update(c.meta.version.clone()),
        None => PutMode::Create,
    };
    let author = Author {
        kind: Kind::Rollback,
        who: who.to_owned(),
        lock_id: Some(lock_id.to_owned()),
    };
    match history::put_state(app, key, body, mode, author).await {
        Ok(_) => {
            tracing::warn!(%key, to = %id, serial, "state rolled back");
            Ok(super::json(&serde_json::json!({
                "key": key.as_str(),
                "rolled_back_to": id.to_string(),
                "serial": serial,
                "lineage": lineage,
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

fn header(bytes: &[u8], what: &str) -> Result<StateHeader, ApiError> {
    StateHeader::parse(bytes)
        .map_err(|e| ApiError::Unprocessable(format!("{what} is not a state document: {e}")))
}

/// The old document with its serial and lineage replaced, indented as Terraform writes states.
fn rewrite(old: &[u8], serial: u64, lineage: Option<&str>) -> Result<Bytes, ApiError> {
    let mut doc: Value = serde_json::from_slice(old)
        .map_err(|e| ApiError::Unprocessable(format!("the version is not JSON: {e}")))?;
    let Some(object) = doc.as_object_mut() else {
        return Err(ApiError::Unprocessable(
            "the version is not a JSON object".to_owned(),
        ));
    };
    object.insert("serial".to_owned(), Value::from(serial));
    if let Some(lineage) = lineage {
        object.insert("lineage".to_owned(), Value::from(lineage));
    }
    let mut out = serde_json::to_vec_pretty(&doc).expect("a parsed document serialises");
    out.push(b'\n');
    Ok(Bytes::from(out))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
