//! Stuck locks (`--lock-ttl`): one lock attempt that may take over a lock idle for too long.
//!
//! # Activity is read from the store, never written for it
//!
//! A lock's last activity is the later of the `last_modified` times of its `.tflock` object
//! (written by the LOCK) and of the state object (rewritten by every accepted write, and a
//! write needs the lock's ID to pass fencing). Both live in the store, so every replica, and
//! every direct S3 client that writes through Terraform's `backend "s3"`, sees the same
//! activity, and recording it costs no extra request. The alternatives were worse: a separate
//! `<key>.tflock.activity` object costs a write per state write, can disagree with the lock
//! after a crash, and is unknown to direct S3 clients, whose writes would then not count;
//! rewriting the `.tflock` object changes either the record bytes (which must stay exactly
//! Terraform's) or, with identical bytes, nothing an S3 ETag can show.
//!
//! Consequences, documented in `--help`: the clock is the store's (S3 `LastModified`, one
//! second resolution), compared with this server's clock, so the TTL must be well above any
//! clock skew; and only writes count, so the TTL must exceed the longest gap between state
//! writes of an operation. Terraform ≥1.5 writes a snapshot about every 20 s during an apply
//! while the state changes; a single resource that takes an hour to create writes nothing
//! for an hour. A write of byte-identical state stores nothing and so is no activity.
//!
//! # The takeover is a compare-and-swap
//!
//! The new record replaces the old with `PutMode::Update(version read)`, so of two takers
//! that both judged the same lock stale, exactly one write lands (S3 `If-Match` on the ETag;
//! the records differ by ID, so their ETags differ too). The loser re-reads and reports the
//! winner as the holder. Fencing compares every write's `?ID=` with the current record, so
//! the old holder's writes are refused from then on.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::LockError;
use statelock_store::{ObjectMeta, PutMode, PutOptions, StoreError, Version};

use crate::app::AppState;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::auth::{self, Permission};
use statelock_state::history::{self, Author, Kind};

/// Tries to take `key`'s lock for `info`; with a TTL configured, a lock held by someone else
/// and idle for longer than the TTL is taken over. Returns the record now stored.
pub async fn attempt(
    app: &AppState,
    key: &StateKey,
    info: LockInfo,
) -> Result<LockInfo, LockError> {
    let held = match app.locks().acquire(key, info.clone()).await {
        Ok(acquired) => return Ok(acquired.lock.info),
        Err(held @ LockError::Held { .. }) => held,
        Err(e) => return Err(e),
    };
    let (
        Some(ttl),
        LockError::Held {
            holder, version, ..
        },
    ) = (app.config().locking.ttl, &held)
    else {
        return Err(held);
    };
    let Some(idle) = idle_for(app, key, version).await? else {
        return Err(held);
    };
    if idle <= ttl {
        return Err(held);
    }
    if !auth::may(Permission::Admin, key) {
        tracing::info!(%key, idle_secs = idle.as_secs(), "idle lock not taken over: the caller has no admin permission on this state");
        return Err(held);
    }
    let record = app.locks().record_for(key, info.clone());
    let put = app
        .store()
        .put(
            &key.lock_key(),
            Bytes::from(record.encode()),
            PutOptions::json(PutMode::Update(version.clone())),
        )
        .await;
    match put {
        Ok(_) => {
            tracing::warn!(
                %key,
                old_id = %holder.id,
                old_who = %holder.who,
                new_id = %record.id,
                new_who = %record.who,
                idle_secs = idle.as_secs(),
                ttl_secs = ttl.as_secs(),
                "STUCK LOCK TAKEN OVER: the lock was idle for longer than --lock-ttl; \
                 writes under the old lock ID are refused from now on"
            );
            app.metrics().lock_takeover();
            record_in_history(app, key, holder, &record).await;
            let event = AuditEvent::new(AuditAction::Takeover, Some(key))
                .lock_id(&record.id)
                .reason(format!(
                    "took over lock {} of {}, idle for {}s (--lock-ttl {}s)",
                    holder.id,
                    holder.who,
                    idle.as_secs(),
                    ttl.as_secs()
                ));
            audit::record(app, event).await;
            Ok(record)
        }
        // Another taker won, or the holder released meanwhile: a plain attempt says which.
        Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {
            app.locks().acquire(key, info).await.map(|a| a.lock.info)
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps a history version of kind `lock-takeover` holding the state as it was when the lock
/// changed hands (empty if there is no state yet), naming both holders. Best effort: the
/// takeover has happened whatever the history says, so a failure here is only logged.
async fn record_in_history(app: &AppState, key: &StateKey, old: &LockInfo, new: &LockInfo) {
    let state = match app.store().get(key.as_str()).await {
        Ok(found) => found.body,
        Err(StoreError::NotFound { .. }) => Bytes::new(),
        Err(e) => {
            tracing::warn!(%key, error = %e, "cannot read the state to record the lock takeover");
            return;
        }
    };
    let author = Author {
        kind: Kind::LockTakeover,
        who: format!("{} (took over lock {} of {})", new.who, old.id, old.who),
        lock_id: Some(new.id.clone()),
    };
    if let Err(e) = history::record_snapshot(app.store(), key, state, author).await {
        tracing::warn!(%key, error = %e, "cannot record the lock takeover in the history");
    }
}

/// How long the lock at `version` has been idle; `None` when it cannot be told (the lock
/// changed since it was read, or the store keeps no modification times), which never counts
/// as stale.
async fn idle_for(
    app: &AppState,
    key: &StateKey,
    version: &Version,
) -> Result<Option<Duration>, StoreError> {
    let Some(lock) = head(app, &key.lock_key()).await? else {
        return Ok(None);
    };
    if lock.version != *version {
        return Ok(None);
    }
    let state = head(app, key.as_str()).await?;
    let last = [Some(&lock), state.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|m| m.last_modified)
        .max();
    let Some(last) = last else {
        tracing::warn!(%key, "the store keeps no modification times, so --lock-ttl cannot judge this lock");
        return Ok(None);
    };
    // A store clock ahead of ours makes the lock look fresh, never stale.
    Ok(Some(
        SystemTime::now().duration_since(last).unwrap_or_default(),
    ))
}

async fn head(app: &AppState, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
    match app.store().head(key).await {
        Ok(meta) => Ok(Some(meta)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
