//! `--apply`: move held locks to `.tflock` objects, refresh or delete stale digests, delete
//! orphaned digests. Each change is one conditional step whose outcome is reported.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use statelock_core::StateKey;
use statelock_dynamodb::{LockTable, TableError, md5_hex};
use statelock_lock::{LockClient, LockError};
use statelock_store::{ObjectStore, ObjectStoreExt, Version};

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
        let key = statelock_core::StateKey::parse(&lock.store_key)
            .map_err(|e| format!("not moved: {:?} is not a state key: {e}", lock.store_key))?;
        let client = lock_client(store);
        let created = match client.adopt(&key, Bytes::from(lock.raw_info.clone())).await {
            Ok(created) => created,
            Err(e @ (LockError::Held { .. } | LockError::Unreadable { .. })) => {
                return Err(format!(
                    "not moved: {lock_key} already holds another lock ({e}); both locks are held, resolve by hand"
                ));
            }
            Err(LockError::Changed { .. }) => {
                return Err(format!("not moved: {lock_key} appeared and vanished; run again"));
            }
            Err(e) => return Err(format!("not moved: {}", chain(e))),
        };
        match table.delete_lock_if(&lock.lock_id, &lock.raw_info).await {
            Ok(()) => Ok(format!("written to {lock_key} (If-None-Match: *), DynamoDB item removed")),
            Err(e @ TableError::Changed { .. }) => {
                let undone = match created {
                    Some(version) => undo_move(&client, &key, &version).await,
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

/// The lock protocol over `store`: the bucket name only goes into records the client makes,
/// and a move writes records verbatim, so none is needed.
fn lock_client(store: &Arc<dyn ObjectStore>) -> LockClient {
    LockClient::new(store.clone(), "")
}

/// Removes the `.tflock` a move wrote, if it is still that very object, through the lock
/// protocol: a store without a working conditional delete (LocalStack, Ceph RGW 16) gets the
/// checked plain-delete fallback. Says what happened.
async fn undo_move(client: &LockClient, key: &StateKey, version: &Version) -> String {
    match client.break_lock(key, Some(version)).await {
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
