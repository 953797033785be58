//! The state service's lock verbs: taking a lock (waiting in this replica's queue, taking over
//! a stuck one) and removing it, for every front that serves Terraform's lock.
//!
//! A request that waits queues behind earlier waiters for the same state on this replica. The
//! head of the queue tries the store when woken (an unlock through this replica wakes it at
//! once) and otherwise every poll interval, which is how releases through other replicas or
//! directly on the store are seen. Others only wait to become head. The lock itself is always
//! the `.tflock` object, written by [`statelock_lock::LockClient`] alone.

use std::time::{Duration, Instant};

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{Acquisition, DeleteMethod, LockError, LockState};
use statelock_store::StoreError;
use tokio::time::{sleep, sleep_until};

use super::{StateService, owners};
use crate::events::StateEvent;
use crate::history::{self, Author, Kind};

/// One lock request: how long it may wait, whether its caller may take over a stuck lock
/// (the front decides that from the caller's permissions), and which principal takes it
/// when the front's writes carry no lock ID (see [`super::Fence::Owner`]).
#[derive(Clone, Copy, Debug)]
pub struct LockRequest<'a> {
    pub wait: Duration,
    pub may_take_over: bool,
    /// Recorded with the lock, so that only this principal's writes pass the fence.
    pub owner: Option<&'a str>,
}

/// Why a lock request was not granted.
#[derive(Debug, thiserror::Error)]
pub enum LockRefused {
    /// The record names no lock ID, so nobody could ever release it by ID.
    #[error("the lock record has an empty ID; the client must choose the ID it will unlock with")]
    EmptyId,
    /// Someone else still holds it (after the wait, or with others queued ahead).
    #[error("{message}")]
    Held {
        message: String,
        holder: Box<LockInfo>,
    },
    /// The server is stopping; nobody was named as holder.
    #[error("{0}")]
    ShuttingDown(String),
    /// The lock protocol refused it (held, unreadable, a secondary lock) or the store failed.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// How a lock is to be removed.
#[derive(Clone, Copy, Debug)]
pub enum Unlock<'a> {
    /// By the holder's ID; `forced` when the caller sent only the ID to remove someone
    /// else's lock (OpenTofu's `force-unlock`).
    Release { id: &'a str, forced: bool },
    /// Whatever lock object is there, readable or not (Terraform's `force-unlock`, which
    /// never sends the ID).
    Break,
    /// Whoever holds it now, as an ordinary release: for protocols where the client reads the
    /// lock, compares the ID itself and then deletes (Terraform's `backend "s3"`). A lock
    /// object that is not a valid record is removed if it is still the one read.
    Current,
    /// [`Unlock::Current`] if the lock object's bytes still have this MD5 (S3's `If-Match`
    /// on a DeleteObject of the `.tflock`, which is how statelock's own S3 adapter releases):
    /// a lock taken by someone else since the client read it is left alone.
    CurrentMatching { md5: &'a str },
}

/// A removed lock.
#[derive(Debug)]
pub struct Unlocked {
    /// The ID of the lock removed (empty for an unreadable lock object).
    pub id: String,
    pub method: DeleteMethod,
    pub forced: bool,
}

impl StateService {
    /// Takes `key`'s lock for `info`, waiting up to `request.wait` for it; returns the
    /// record now stored. The same ID locking again is granted (clients retry a lock whose
    /// first attempt landed).
    pub async fn lock(
        &self,
        key: &StateKey,
        info: LockInfo,
        request: LockRequest<'_>,
    ) -> Result<LockInfo, LockRefused> {
        if info.id.is_empty() {
            return Err(LockRefused::EmptyId);
        }
        let started = Instant::now();
        let outcome = self.wait_for_lock(key, info, request).await;
        let waited = started.elapsed();
        self.events
            .record(StateEvent::LockWaited { key, waited })
            .await;
        let record = outcome?;
        if let Some(principal) = request.owner
            && let Err(e) = owners::record(&*self.store, key, &record.id, principal).await
        {
            // Without the record the owner's own writes would be refused: give the lock
            // back rather than hold one nobody can write under.
            tracing::error!(%key, id = %record.id, error = %e, "cannot record the lock's owner; releasing it");
            let _ = self.locks.release(key, &record.id).await;
            self.waiting.wake_head(key);
            return Err(LockRefused::Lock(LockError::Store(e)));
        }
        tracing::info!(%key, id = %record.id, who = %record.who, operation = %record.operation, "lock acquired");
        self.events
            .record(StateEvent::Locked {
                key,
                record: &record,
            })
            .await;
        Ok(record)
    }

    /// Removes `key`'s lock; the first request waiting for it on this replica then looks at
    /// once, whatever the outcome (the lock may be free now).
    pub async fn unlock(&self, key: &StateKey, how: Unlock<'_>) -> Result<Unlocked, LockError> {
        let outcome = match how {
            Unlock::Break => self
                .locks
                .break_lock(key, None)
                .await
                .map(|broken| Unlocked {
                    id: broken.info.map(|i| i.id).unwrap_or_default(),
                    method: broken.method,
                    forced: true,
                }),
            Unlock::Current => self.release_current(key, None).await,
            Unlock::CurrentMatching { md5 } => self.release_current(key, Some(md5)).await,
            Unlock::Release { id, forced } => {
                self.locks.release(key, id).await.map(|released| Unlocked {
                    id: released.info.id,
                    method: released.method,
                    forced,
                })
            }
        };
        // The release is logged and recorded before the next waiter is woken, so that the
        // log and the audit trail show it before that waiter's acquire.
        if let Ok(unlocked) = &outcome {
            if let DeleteMethod::Plain { reason } = &unlocked.method {
                tracing::warn!(%key, %reason, "lock released by read, compare and plain delete");
            }
            if unlocked.forced {
                tracing::warn!(%key, id = %unlocked.id, "force-unlock: lock removed");
            } else {
                tracing::info!(%key, id = %unlocked.id, "lock released");
            }
            self.events
                .record(StateEvent::Unlocked {
                    key,
                    id: &unlocked.id,
                    method: &unlocked.method,
                    forced: unlocked.forced,
                })
                .await;
        }
        self.waiting.wake_head(key);
        outcome
    }

    async fn release_current(
        &self,
        key: &StateKey,
        md5: Option<&str>,
    ) -> Result<Unlocked, LockError> {
        if let Some(wanted) = md5 {
            // The check and the release are on one read: the delete removes only the version
            // whose MD5 matched, so a lock taken by someone else since is never removed.
            let found =
                statelock_store::ObjectStoreExt::get_if_exists(&*self.store, &key.lock_key())
                    .await?
                    .ok_or_else(|| LockError::NotLocked { key: key.clone() })?;
            if !crate::history::md5_hex(&found.body).eq_ignore_ascii_case(wanted) {
                return Err(LockError::Changed { key: key.clone() });
            }
            let version = found.meta.version;
            return match LockInfo::decode(&found.body) {
                Ok(info) => {
                    let held = statelock_lock::HeldLock {
                        key: key.clone(),
                        info,
                        version,
                    };
                    let released = self.locks.release_read(held).await?;
                    Ok(Unlocked {
                        id: released.info.id,
                        method: released.method,
                        forced: false,
                    })
                }
                Err(_) => {
                    let broken = self.locks.break_lock(key, Some(&version)).await?;
                    Ok(Unlocked {
                        id: String::new(),
                        method: broken.method,
                        forced: false,
                    })
                }
            };
        }
        match self.locks.inspect(key).await? {
            None => Err(LockError::NotLocked { key: key.clone() }),
            Some(LockState::Held(held)) => {
                // The record just read is the one released: no second read.
                let released = self.locks.release_read(held).await?;
                Ok(Unlocked {
                    id: released.info.id,
                    method: released.method,
                    forced: false,
                })
            }
            // Nobody can name the ID of a corrupt record; the delete removes it, as long as it
            // is still the object just read.
            Some(LockState::Unreadable { version, .. }) => {
                let broken = self.locks.break_lock(key, Some(&version)).await?;
                Ok(Unlocked {
                    id: String::new(),
                    method: broken.method,
                    forced: false,
                })
            }
        }
    }

    /// How many lock requests wait for `key`'s lock on this replica.
    pub fn lock_waiters(&self, key: &StateKey) -> usize {
        self.waiting.queued(key)
    }

    /// Every state with lock requests waiting on this replica, with who waits, head first
    /// (read-only; for fronts that show the queue).
    pub fn lock_queue(&self) -> Vec<(StateKey, Vec<crate::lock_queue::Waiter>)> {
        self.waiting.snapshot()
    }

    /// Answers every waiting lock request and makes later ones fail at once: the server is
    /// stopping, and graceful shutdown must not be held up by waiters.
    pub fn begin_shutdown(&self) {
        self.waiting.begin_shutdown();
    }

    async fn wait_for_lock(
        &self,
        key: &StateKey,
        info: LockInfo,
        request: LockRequest<'_>,
    ) -> Result<LockInfo, LockRefused> {
        let waiting = &*self.waiting;
        let wait = request.wait;
        if waiting.is_shutting_down() {
            return Ok(self.attempt(key, info, request).await?);
        }
        if wait.is_zero() {
            let ahead = waiting.queued(key);
            // A request that will not wait must not overtake the ones waiting in line. Only
            // when the lock is free but its release has not reached the head yet (it came
            // through another replica, between two polls) does it go ahead rather than fail
            // naming nobody.
            if ahead > 0
                && let Ok(Some(LockState::Held(held))) = self.locks.inspect(key).await
            {
                return Err(LockRefused::Held {
                    message: format!(
                        "state {key} is locked by {} (lock ID {}), and {ahead} request(s) are \
                         waiting for it ahead of this one",
                        held.info.who, held.info.id
                    ),
                    holder: Box::new(held.info),
                });
            }
            return Ok(self.attempt(key, info, request).await?);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let poll = self.rules.locking.poll_interval;
        let place = waiting.join(key, crate::lock_queue::Waiter::of(&info));
        let shutdown = waiting.shutdown();
        tokio::pin!(shutdown);
        let mut announced = false;
        loop {
            let head = place.is_head();
            if head {
                match self.attempt(key, info.clone(), request).await {
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
                tracing::info!(%key, id = %info.id, who = %info.who, ?wait, ahead = waiting.queued(key) - 1, "lock request waits for the lock");
            }
            tokio::select! {
                () = place.woken() => {}
                () = sleep(poll), if head => {}
                () = sleep_until(deadline) => break,
                () = &mut shutdown => return Err(self.shutting_down(key).await),
            }
        }
        // The last look may come out of turn: the deadline is the client's, and a free lock
        // then is better than a refusal naming nobody.
        drop(place);
        self.attempt(key, info, request).await.map_err(|e| match e {
            LockError::Held { key, holder, .. }
            | LockError::HeldIn { key, holder, .. }
            | LockError::TakeoverWithSecondary { key, holder, .. } => LockRefused::Held {
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

    /// The answer to a waiter when the server stops: the holder where there is one, since
    /// that is what clients understand, else "shutting down" so that clients retry elsewhere.
    async fn shutting_down(&self, key: &StateKey) -> LockRefused {
        let message = format!("the server is shutting down; stopped waiting for the lock on {key}");
        match self.locks.inspect(key).await {
            Ok(Some(LockState::Held(held))) => LockRefused::Held {
                message: format!(
                    "{message}, which is held by {} (lock ID {})",
                    held.info.who, held.info.id
                ),
                holder: Box::new(held.info),
            },
            _ => LockRefused::ShuttingDown(message),
        }
    }

    /// One try at `key`'s lock; with a TTL configured, a lock held by someone else and idle
    /// for longer than the TTL is taken over (the rules are
    /// [`statelock_lock::LockClient::acquire_or_take_over`]) and the takeover recorded.
    async fn attempt(
        &self,
        key: &StateKey,
        info: LockInfo,
        request: LockRequest<'_>,
    ) -> Result<LockInfo, LockError> {
        let Some(ttl) = self.rules.locking.ttl else {
            return self.locks.acquire(key, info).await.map(|a| a.lock.info);
        };
        let ttl = if crate::breakage::active(crate::breakage::Breakage::TakeoverNow) {
            Duration::ZERO
        } else {
            ttl
        };
        match self
            .locks
            .acquire_or_take_over(key, info, ttl, request.may_take_over)
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
                self.record_takeover(key, &previous, &record).await;
                self.events
                    .record(StateEvent::TookOver {
                        key,
                        previous: &previous,
                        record: &record,
                        idle,
                        ttl,
                    })
                    .await;
                Ok(record)
            }
        }
    }

    /// Keeps a history version of kind `lock-takeover` holding the state as it was when the
    /// lock changed hands (empty if there is no state yet), naming both holders. Best effort:
    /// the takeover has happened whatever the history says, so a failure here is only logged.
    async fn record_takeover(&self, key: &StateKey, old: &LockInfo, new: &LockInfo) {
        let state = match self.store.get(key.as_str()).await {
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
        if let Err(e) = history::record_snapshot(&*self.store, key, state, author).await {
            tracing::warn!(%key, error = %e, "cannot record the lock takeover in the history");
        }
    }
}
