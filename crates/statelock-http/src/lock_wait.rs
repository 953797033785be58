//! A LOCK that waits (`?wait=` or `--lock-wait`) until the lock is free, the wait expires or
//! the server shuts down.
//!
//! The request queues behind earlier waiters for the same state on this replica. The head of
//! the queue tries the store when woken (an UNLOCK through this replica wakes it at once) and
//! otherwise every poll interval, which is how releases through other replicas or directly on
//! the store are seen. Others only wait to become head.

use std::time::Duration;

use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockError, LockState};
use tokio::time::{Instant, sleep, sleep_until};

use crate::app::AppState;
use crate::error::ApiError;
use crate::takeover::attempt;

/// Takes `key`'s lock for `info`, waiting up to `wait` for it; returns the stored record.
pub async fn acquire(
    app: &AppState,
    key: &StateKey,
    info: LockInfo,
    wait: Duration,
) -> Result<LockInfo, ApiError> {
    let waiting = app.waiting();
    if waiting.is_shutting_down() {
        return attempt(app, key, info).await.map_err(ApiError::from);
    }
    if wait.is_zero() {
        let ahead = waiting.queued(key);
        // A LOCK that will not wait must not overtake the ones waiting in line. Only when
        // the lock is free but its release has not reached the head yet (it came through
        // another replica, between two polls) does it go ahead rather than fail naming nobody.
        if ahead > 0
            && let Ok(Some(LockState::Held(held))) = app.locks().inspect(key).await
        {
            return Err(ApiError::Locked {
                message: format!(
                    "state {key} is locked by {} (lock ID {}), and {ahead} request(s) are \
                     waiting for it ahead of this one",
                    held.info.who, held.info.id
                ),
                holder: Box::new(held.info),
            });
        }
        return attempt(app, key, info).await.map_err(ApiError::from);
    }
    let deadline = Instant::now() + wait;
    let poll = app.config().locking.poll_interval;
    let place = waiting.join(key);
    let shutdown = waiting.shutdown();
    tokio::pin!(shutdown);
    let mut announced = false;
    loop {
        let head = place.is_head();
        if head {
            match attempt(app, key, info.clone()).await {
                Ok(held) => return Ok(held),
                // Still held (a takeover refused because of a secondary lock is still held).
                Err(
                    LockError::Held { .. }
                    | LockError::HeldIn { .. }
                    | LockError::TakeoverWithSecondary { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !announced {
            announced = true;
            tracing::info!(%key, id = %info.id, who = %info.who, ?wait, ahead = waiting.queued(key) - 1, "LOCK waits for the lock");
        }
        tokio::select! {
            () = place.woken() => {}
            () = sleep(poll), if head => {}
            () = sleep_until(deadline) => break,
            () = &mut shutdown => return Err(shutting_down(app, key).await),
        }
    }
    // The last look may come out of turn: the deadline is the client's, and a free lock
    // then is better than a 423 naming nobody.
    drop(place);
    attempt(app, key, info).await.map_err(|e| match e {
        LockError::Held { key, holder, .. }
        | LockError::HeldIn { key, holder, .. }
        | LockError::TakeoverWithSecondary { key, holder, .. } => ApiError::Locked {
            message: format!(
                "state {key} is still locked by {} (lock ID {}) after waiting {}s",
                holder.who,
                holder.id,
                wait.as_secs_f32()
            ),
            holder: Box::new(holder),
        },
        e => e.into(),
    })
}

/// The answer to a waiter when the server stops: 423 with the holder where there is one,
/// since that is what clients understand, else 503 so that clients retry elsewhere.
async fn shutting_down(app: &AppState, key: &StateKey) -> ApiError {
    let message = format!("the server is shutting down; stopped waiting for the lock on {key}");
    match app.locks().inspect(key).await {
        Ok(Some(LockState::Held(held))) => ApiError::Locked {
            message: format!(
                "{message}, which is held by {} (lock ID {})",
                held.info.who, held.info.id
            ),
            holder: Box::new(held.info),
        },
        _ => ApiError::ShuttingDown(message),
    }
}
