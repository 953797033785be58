//! Stuck locks (`--lock-ttl`) on the `http` front: one lock attempt that may take over a lock
//! idle for too long, through [`statelock_lock::LockClient::acquire_or_take_over`] (where the
//! rules live: activity read from the store, a compare-and-swap of the record, no takeover
//! with a secondary lock). This module decides whether the caller may (admin on the state),
//! and records a takeover: a warning, the metric, a history version and the audit event.

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{Acquisition, LockError};
use statelock_store::StoreError;

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
    let Some(ttl) = app.config().locking.ttl else {
        return app.locks().acquire(key, info).await.map(|a| a.lock.info);
    };
    let allowed = auth::may(app, Permission::Admin, key);
    match app
        .locks()
        .acquire_or_take_over(key, info, ttl, allowed)
        .await?
    {
        Acquisition::Acquired(acquired) => Ok(acquired.lock.info),
        Acquisition::TookOver {
            record,
            previous,
            idle,
        } => {
            tracing::warn!(
                %key,
                old_id = %previous.id,
                old_who = %previous.who,
                new_id = %record.id,
                new_who = %record.who,
                idle_secs = idle.as_secs(),
                ttl_secs = ttl.as_secs(),
                "STUCK LOCK TAKEN OVER: the lock was idle for longer than --lock-ttl; \
                 writes under the old lock ID are refused from now on"
            );
            app.metrics().lock_takeover();
            record_in_history(app, key, &previous, &record).await;
            let event = AuditEvent::new(AuditAction::Takeover, Some(key))
                .lock_id(&record.id)
                .reason(format!(
                    "took over lock {} of {}, idle for {}s (--lock-ttl {}s)",
                    previous.id,
                    previous.who,
                    idle.as_secs(),
                    ttl.as_secs()
                ));
            audit::record(app, event).await;
            Ok(record)
        }
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
