//! `--apply`: move held locks to `.tflock` objects, refresh or delete stale digests, delete
//! orphaned digests. Each change is one conditional step whose outcome is reported.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use statelock_dynamodb::{LockTable, TableError, md5_hex};
use statelock_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError, Version};

use super::survey::{DigestItem, DynamoLock, OrphanReason, Survey};

/// What to do with stale or invalid digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestAction {
    /// Leave them; they only matter while some client still uses `dynamodb_table`.
    Keep,
    /// Set them to the state's MD5, so clients on `dynamodb_table` read the state again.
    Refresh,
    /// Delete them (clients on `dynamodb_table` then only warn of a missing digest).
    Delete,
}

/// One change and how it went.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub item: String,
    pub action: String,
    pub ok: bool,
    pub detail: String,
}

impl Outcome {
    fn new(item: &str, action: &str, result: Result<String, String>) -> Outcome {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Outcome {
            item: item.to_owned(),
            action: action.to_owned(),
            ok,
            detail,
        }
    }
}

/// Writes each held lock's record verbatim as `<key>.tflock` with `If-None-Match: *`, then
/// deletes the DynamoDB item only if its `Info` is unchanged. If the holder released it in
/// between, the new `.tflock` is removed again, so no lock outlives its holder.
pub async fn move_lock(
    table: &LockTable,
    store: &Arc<dyn ObjectStore>,
    lock: &DynamoLock,
) -> Outcome {
    let result = async {
        if let Some(reason) = &lock.unreadable {
            return Err(format!(
                "not moved: Info is not a lock record ({reason}); remove the item by hand once nobody holds it"
            ));
        }
        let lock_key = format!("{}{}", lock.store_key, statelock_core::LOCK_SUFFIX);
        let body = Bytes::from(lock.raw_info.clone());
        let created = match store
            .put(&lock_key, body.clone(), PutOptions::json(PutMode::Create))
            .await
        {
            Ok(meta) => Some(meta.version),
            Err(StoreError::AlreadyExists { .. }) => {
                let existing = store.get_if_exists(&lock_key).await.map_err(chain)?;
                match existing {
                    // Moved by an earlier run that stopped before deleting the item.
                    Some(found) if found.body == body => None,
                    Some(found) => {
                        return Err(format!(
                            "not moved: {lock_key} already holds another lock ({}); both locks are held, resolve by hand",
                            String::from_utf8_lossy(&found.body)
                        ));
                    }
                    None => return Err(format!("not moved: {lock_key} appeared and vanished; run again")),
                }
            }
            Err(e) => return Err(format!("not moved: {}", chain(e))),
        };
        match table.delete_lock_if(&lock.lock_id, &lock.raw_info).await {
            Ok(()) => Ok(format!("written to {lock_key} (If-None-Match: *), DynamoDB item removed")),
            Err(e @ TableError::Changed { .. }) => {
                let undone = match created {
                    Some(version) => undo_move(store, &lock.store_key, &version).await,
                    None => "left in place (an earlier run wrote it)".to_owned(),
                };
                Err(format!("{e}: the holder released or changed it meanwhile; {lock_key} {undone}"))
            }
            Err(e) => Err(format!(
                "{lock_key} written but the DynamoDB item could not be removed: {}; both locks are held now",
                chain(e)
            )),
        }
    }
    .await;
    Outcome::new(&lock.lock_id, "move lock", result)
}

/// Removes the `.tflock` a move wrote, if it is still that very object, through the lock
/// protocol: a store without a working conditional delete (LocalStack, Ceph RGW 16) gets the
/// checked plain-delete fallback. Says what happened.
async fn undo_move(store: &Arc<dyn ObjectStore>, state_key: &str, version: &Version) -> String {
    let Ok(key) = statelock_core::StateKey::parse(state_key) else {
        return format!("not removed: {state_key:?} is not a state key; remove it by hand");
    };
    // The bucket name only goes into records the client creates; breaking needs none.
    let client = statelock_lock::LockClient::new(store.clone(), "");
    match client.break_lock(&key, Some(version)).await {
        Ok(_) => "removed again".to_owned(),
        Err(e) => format!("NOT removed ({e}); check it with `statelock locks show`"),
    }
}

/// Refreshes or deletes one stale or invalid digest.
pub async fn fix_digest(
    table: &LockTable,
    store: &Arc<dyn ObjectStore>,
    survey: &Survey,
    digest: &DigestItem,
    action: DigestAction,
) -> Option<Outcome> {
    let result = match action {
        DigestAction::Keep => return None,
        DigestAction::Delete => table
            .delete_item(&digest.lock_id)
            .await
            .map(|()| "deleted".to_owned())
            .map_err(chain),
        DigestAction::Refresh => refresh(table, store, survey, digest).await,
    };
    let name = match action {
        DigestAction::Refresh => "refresh digest",
        _ => "delete digest",
    };
    Some(Outcome::new(&digest.lock_id, name, result))
}

/// Puts the state's MD5 as its digest, then reads the state again: if it changed meanwhile
/// (a client wrote it), the digest may be stale again, and that is reported.
async fn refresh(
    table: &LockTable,
    store: &Arc<dyn ObjectStore>,
    survey: &Survey,
    digest: &DigestItem,
) -> Result<String, String> {
    let object_key = survey.object_key(&digest.store_key);
    table
        .put_digest(&survey.bucket, &object_key, &digest.state_md5)
        .await
        .map_err(chain)?;
    let now = store
        .get_if_exists(&digest.store_key)
        .await
        .map_err(chain)?;
    match now {
        Some(found) if md5_hex(&found.body) == digest.state_md5 => {
            Ok(format!("{} -> {}", digest.digest, digest.state_md5))
        }
        _ => Err("the state changed while its digest was refreshed; run again".to_owned()),
    }
}

/// Deletes a digest whose state object does not exist.
pub async fn delete_orphan(
    table: &LockTable,
    lock_id: &str,
    reason: &OrphanReason,
) -> Option<Outcome> {
    if *reason != OrphanReason::NoState {
        return None;
    }
    let result = table
        .delete_item(lock_id)
        .await
        .map(|()| "deleted".to_owned())
        .map_err(chain);
    Some(Outcome::new(lock_id, "delete orphaned digest", result))
}

fn chain(e: impl std::error::Error + 'static) -> String {
    statelock_store::error_chain(&e)
}
