//! Rollback, once for every front: a version's content copied forward as the next serial on
//! the current lineage, under the state's own `.tflock` lock, with compare-and-swap.
//!
//! Two steps, so that a front may show the plan and ask before anything is locked:
//! [`StateService::plan_rollback`] reads the version and the current state and plans the
//! document ("no changes" when it holds what the state holds); [`StateService::rollback`]
//! takes the lock, refuses if the state is no longer the one planned on or the lock is no
//! longer exactly ours right before the write, writes, and releases the lock on every path
//! (cancellation included: the locked work is dropped, then the lock released).

use std::future::Future;

use bytes::Bytes;
use statelock_core::state::{RollbackError as PlanError, RollbackPlan, plan_rollback};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{HeldLock, LockError, LockState};
use statelock_store::{GetResult, ObjectStoreExt, PutMode, PutOptions, StoreError};

use super::StateService;
use crate::events::StateEvent;
use crate::history::{self, Author, Incoming, Kind, Prior, StateTag};
use crate::versions::{self, FetchError, Fetched};

/// The lock record's `Operation` while a rollback runs, whichever front started it.
pub const ROLLBACK_OPERATION: &str = "statelock state rollback";

/// A rollback read and planned, not yet locked or written.
#[derive(Debug)]
pub struct PlannedRollback {
    pub key: StateKey,
    /// The version rolled back to, and its source.
    pub version: Fetched,
    /// The state object as it was when planned (an empty object is "no state" to the plan,
    /// but still the object the write must replace).
    pub current: Option<GetResult>,
    pub plan: RollbackPlan,
    /// Whether `force` was given (a version of another lineage, or one with no changes).
    pub force: bool,
}

impl PlannedRollback {
    /// The version holds what the current state holds, and nothing forces a write.
    pub fn no_changes(&self) -> bool {
        self.plan.same_as_current && !self.force
    }

    /// The current state's bytes, when there is a non-empty one.
    pub fn current_body(&self) -> Option<&[u8]> {
        self.current
            .as_ref()
            .map(|c| &c.body[..])
            .filter(|b| !b.is_empty())
    }
}

/// Whether the rollback is also recorded in the server history under `.statelock/history/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordIn {
    /// Always (a store `statelock serve` serves: the server itself, a statelock directory).
    History,
    /// Only when the state already has server history (a bucket Terraform may use directly,
    /// where `statelock serve` may or may not serve this key).
    HistoryIfKept,
}

/// A rollback written.
#[derive(Debug)]
pub struct RolledBack<T> {
    pub serial: u64,
    pub lineage: Option<String>,
    pub body: Bytes,
    /// It was also recorded in the server history.
    pub in_server_history: bool,
    /// What the caller's after-write step returned (run under the lock).
    pub after_write: T,
}

/// Why a rollback did not write; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The version cannot be read, or does not exist.
    #[error(transparent)]
    Version(#[from] FetchError),
    /// The plan refused it (encrypted, another lineage without force, not a state).
    #[error("cannot roll {key} back to {to}: {error}")]
    Plan {
        key: StateKey,
        to: String,
        error: PlanError,
    },
    /// The lock could not be taken (someone holds it; it is unreadable; the store failed).
    #[error(transparent)]
    Lock(LockError),
    /// The state changed after it was planned on.
    #[error("the state {key} changed since the rollback was planned; plan it again")]
    Moved { key: StateKey },
    /// The lock was broken and taken (or removed) before the write; not ours to release.
    #[error("the rollback's lock on {key} was taken over by {holder}")]
    TakenOver { key: StateKey, holder: String },
    /// A writer that ignores the lock changed the state under the compare-and-swap.
    #[error(
        "state {key} was changed by a writer that ignored the lock during the rollback; \
         nothing was written"
    )]
    Changed { key: StateKey },
    /// The caller's cancellation (Ctrl-C, shutdown) arrived while locked.
    #[error(
        "interrupted; the rollback of {key} may or may not have been written: check \
         `statelock state show {key}`"
    )]
    Interrupted { key: StateKey },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of the rollback's own lock.
#[derive(Debug)]
pub enum LockRelease {
    /// The lock was never taken (refused before).
    NotTaken,
    Released,
    /// Someone else holds it now: it was not released.
    Lost,
    /// It could not be released; it must be removed by hand with this ID.
    Failed {
        lock_id: String,
        error: Box<LockError>,
    },
}

/// A rollback's result and its lock's fate, reported together because a write may land and
/// the release still fail.
#[derive(Debug)]
pub struct RollbackOutcome<T> {
    pub result: Result<RolledBack<T>, RollbackError>,
    pub release: LockRelease,
}

impl StateService {
    /// Reads version `to` (`current`, a server history ID or an S3 version ID) and the
    /// current state, and plans the document; nothing is locked or written.
    pub async fn plan_rollback(
        &self,
        key: &StateKey,
        to: &str,
        force: bool,
    ) -> Result<PlannedRollback, RollbackError> {
        let version = versions::fetch(&*self.store, key, to).await?;
        let current = self.store.get_if_exists(key.as_str()).await?;
        let current_body = current
            .as_ref()
            .map(|c| &c.body[..])
            .filter(|b| !b.is_empty());
        let plan = plan_rollback(&version.body, current_body, force).map_err(|error| {
            RollbackError::Plan {
                key: key.clone(),
                to: to.to_owned(),
                error,
            }
        })?;
        Ok(PlannedRollback {
            key: key.clone(),
            version,
            current,
            plan,
            force,
        })
    }

    /// Writes `planned` under the state's lock, taken for `holder` (its Operation is set to
    /// [`ROLLBACK_OPERATION`]); `after_write` runs under the lock once the state is written
    /// (a DynamoDB digest update), and `cancel` abandons the locked work. A plan with no
    /// changes is not written and must be handled by the caller first.
    pub async fn rollback<T, F, Fut>(
        &self,
        planned: &PlannedRollback,
        mut holder: LockInfo,
        record_in: RecordIn,
        after_write: F,
        cancel: impl Future<Output = ()>,
    ) -> RollbackOutcome<T>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = T>,
    {
        let key = &planned.key;
        holder.operation = ROLLBACK_OPERATION.to_owned();
        if holder.info.is_empty() {
            holder.info = format!("rolling back to version {}", planned.version.id);
        }
        let lock = match self.locks.acquire(key, holder).await {
            Ok(acquired) => acquired.lock,
            Err(e) => {
                return RollbackOutcome {
                    result: Err(RollbackError::Lock(e)),
                    release: LockRelease::NotTaken,
                };
            }
        };
        tracing::info!(%key, to = %planned.version.id, lock_id = %lock.info.id, "rollback: its lock is taken");
        self.events
            .record(StateEvent::Locked {
                key,
                record: &lock.info,
            })
            .await;
        let result = tokio::select! {
            result = self.write_rolled_back(&lock, planned, record_in, after_write) => result,
            () = cancel => Err(RollbackError::Interrupted { key: key.clone() }),
        };
        let release = if matches!(result, Err(RollbackError::TakenOver { .. })) {
            // Its holder must not be told to unlock our ID either.
            LockRelease::Lost
        } else {
            self.release_own(&lock).await
        };
        RollbackOutcome { result, release }
    }

    async fn write_rolled_back<T, F, Fut>(
        &self,
        lock: &HeldLock,
        planned: &PlannedRollback,
        record_in: RecordIn,
        after_write: F,
    ) -> Result<RolledBack<T>, RollbackError>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = T>,
    {
        let key = &planned.key;
        let now = self.store.get_if_exists(key.as_str()).await?;
        let confirmed = planned.current.as_ref().map(|c| &c.meta.version);
        if now.as_ref().map(|c| &c.meta.version) != confirmed {
            return Err(RollbackError::Moved { key: key.clone() });
        }
        let in_server_history = match record_in {
            RecordIn::History => true,
            RecordIn::HistoryIfKept => !self
                .store
                .list(&history::state_prefix(key), None)
                .await?
                .objects
                .is_empty(),
        };
        // Last check before the write: a lock broken and taken by someone else meanwhile (a
        // force-unlock, a TTL takeover) means they may be writing this state now.
        if let Some(holder) = self.lost_to(lock).await? {
            return Err(RollbackError::TakenOver {
                key: key.clone(),
                holder,
            });
        }
        let mode = match confirmed {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let body = Bytes::from(planned.plan.body.clone());
        let incoming = Incoming::new(body.clone());
        // Content-MD5 as Terraform's SDK-v1 S3 backend sends it, which Object Lock buckets need.
        let options = PutOptions::json(mode).with_content_md5();
        let put = if in_server_history {
            let author = Author {
                kind: Kind::Rollback,
                who: lock.info.who.clone(),
                lock_id: Some(lock.info.id.clone()),
            };
            let retention = self.rules.history_retention;
            let prior = Prior::of(now.as_ref().map(|n| &n.meta));
            history::write_state(
                &self.store,
                &self.pruner,
                retention,
                key,
                &incoming,
                options,
                author,
                &prior,
                // The rollback checked its own lock's version already, which is stricter.
                async { Ok::<(), StoreError>(()) },
            )
            .await
        } else {
            // Tagged all the same, so the next write need not read it; with no version.
            let tag = StateTag::of(&incoming, None, 0).and_then(|t| t.to_metadata());
            let options = options.with_metadata(tag.unwrap_or_default());
            self.store.put(key.as_str(), body.clone(), options).await
        };
        match put {
            Ok(_) => {}
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                return Err(RollbackError::Changed { key: key.clone() });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(%key, to = %planned.version.id, serial = planned.plan.serial, "state rolled back");
        // Nothing after the put may fail the rollback: the state is written.
        self.locks.state_written(key, &body).await;
        let after_write = after_write(body.clone()).await;
        self.events
            .record(StateEvent::RolledBack {
                key,
                lock_id: &lock.info.id,
                to: &planned.version.id,
                before: planned.current_body(),
                after: &body,
            })
            .await;
        Ok(RolledBack {
            serial: planned.plan.serial,
            lineage: planned.plan.lineage.clone(),
            body,
            in_server_history,
            after_write,
        })
    }

    /// Who holds `lock`'s lock object now, when it is no longer exactly the one we created.
    async fn lost_to(&self, lock: &HeldLock) -> Result<Option<String>, RollbackError> {
        let now = self
            .locks
            .inspect(&lock.key)
            .await
            .map_err(RollbackError::Lock)?;
        Ok(match now {
            Some(LockState::Held(now))
                if now.info.id == lock.info.id && now.version == lock.version =>
            {
                None
            }
            Some(LockState::Held(now)) => {
                Some(format!("{} (lock ID {})", now.info.who, now.info.id))
            }
            Some(LockState::Unreadable { reason, .. }) => {
                Some(format!("an unreadable lock object ({reason})"))
            }
            None => Some("nobody: it was removed".to_owned()),
        })
    }

    /// Releases the rollback's own lock, and lets this replica's first waiter look.
    async fn release_own(&self, lock: &HeldLock) -> LockRelease {
        let key = &lock.key;
        let released = self.locks.release(key, &lock.info.id).await;
        self.waiting.wake_head(key);
        match released {
            Ok(released) => {
                self.events
                    .record(StateEvent::Unlocked {
                        key,
                        id: &released.info.id,
                        method: &released.method,
                        forced: false,
                    })
                    .await;
                LockRelease::Released
            }
            // Taken over or force-unlocked after the last check: not ours to release.
            Err(LockError::NotLocked { .. } | LockError::IdMismatch { .. }) => {
                tracing::warn!(%key, lock_id = %lock.info.id, "rollback: its lock was already lost");
                LockRelease::Lost
            }
            Err(error) => {
                tracing::error!(%key, lock_id = %lock.info.id, %error, "rollback: could not release the lock; force-unlock it with this ID");
                LockRelease::Failed {
                    lock_id: lock.info.id.clone(),
                    error: Box::new(error),
                }
            }
        }
    }
}
