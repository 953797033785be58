//! `POST .../rollback?to=<id>[&force=true]`: copies an old version forward as a new serial.
//!
//! It runs under the state's own `.tflock` lock, so it excludes Terraform, OpenTofu and other
//! servers exactly as they exclude each other, and writes with compare-and-swap like any write.
//! The copy gets `serial = current + 1` and the current lineage, so clients accept it as the
//! next state. Encrypted states are refused: OpenTofu checks their plaintext serial against the
//! encrypted one, so a copy with a new serial could never be read back.

use std::collections::BTreeMap;

use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use statelock_core::{LockInfo, StateKey};
use statelock_store::{ObjectStoreExt, PutMode, StoreError};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
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
    match app.locks().release(key, &lock_id).await {
        // LOCKs queued on this replica get the lock at once, as after any UNLOCK.
        Ok(_) => app.waiting().wake_head(key),
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
    let event = AuditEvent::new(AuditAction::Rollback, Some(key))
        .lock_id(lock_id)
        .states(current.as_ref().map(|c| &c.body[..]), Some(&body))
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
    match history::put_state(app, key, body, mode, author).await {
        Ok(_) => {
            tracing::warn!(%key, to = %id, serial, "state rolled back");
            audit::record(app, event).await;
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
///
/// Every other top-level value is copied as raw JSON text, never through numbers: a state's
/// numbers are arbitrary-precision (cty) and would be rounded by an `f64` round trip.
fn rewrite(old: &[u8], serial: u64, lineage: Option<&str>) -> Result<Bytes, ApiError> {
    let mut doc: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(old)
        .map_err(|e| ApiError::Unprocessable(format!("the version is not a JSON object: {e}")))?;
    let raw = |json: String| RawValue::from_string(json).expect("serde_json wrote valid JSON");
    doc.insert("serial".to_owned(), raw(serial.to_string()));
    if let Some(lineage) = lineage {
        let quoted = serde_json::to_string(lineage).expect("a string serialises");
        doc.insert("lineage".to_owned(), raw(quoted));
    }
    let mut out = serde_json::to_vec_pretty(&doc).expect("raw values serialise");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_changes_serial_and_lineage_and_keeps_numbers_exact() {
        let old = br#"{"version":4,"serial":3,"lineage":"old","outputs":{"big":{"value":123456789012345678901234567890.000000000000000000001,"type":"number"}},"resources":[]}"#;
        let new = rewrite(old, 9, Some("cur")).unwrap();
        let text = std::str::from_utf8(&new).unwrap();
        assert!(
            text.contains("123456789012345678901234567890.000000000000000000001"),
            "{text}"
        );
        let doc: serde_json::Value = serde_json::from_slice(&new).unwrap();
        assert_eq!(doc["serial"], 9);
        assert_eq!(doc["lineage"], "cur");
        assert_eq!(doc["version"], 4);
        assert!(matches!(
            rewrite(b"[1]", 1, None),
            Err(ApiError::Unprocessable(_))
        ));
    }
}
