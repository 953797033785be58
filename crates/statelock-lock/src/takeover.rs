//! Stuck locks: taking over a lock that has been idle for longer than a TTL.
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
//! second resolution), compared with this process's clock, so the TTL must be well above any
//! clock skew; and only writes count, so the TTL must exceed the longest gap between state
//! writes of an operation (Terraform >= 1.5 writes a snapshot about every 20 s during an apply
//! while the state changes; a write of identical bytes stores nothing and is no activity; the
//! README's "Waiting for a lock, and stuck locks" says how to pick the TTL).
//!
//! # A write racing the takeover hands the lock back
//!
//! The swap covers the lock object only, so a state write of the holder that passed the fence
//! before it and lands after the idleness was judged would make a premature takeover stand
//! (the fault run of RELIABILITY.md found this: a lock taken over 89 ms after its holder's
//! accepted write). S3 offers no compare-and-swap across two objects, so the two sides share a
//! time bound instead, [`takeover_settle`] (a quarter of the TTL, at most 5 s):
//! - the taker, after a successful swap, waits the settle time, then looks at the state again;
//!   if its version changed since the judgement, the holder's record is put back by
//!   compare-and-swap and the caller is told the lock is held;
//! - a writer swaps the state only within [`fence_fresh_for`] (half the settle time) of
//!   starting the fence read that let it through, and fences again first when it is later
//!   (a slow history put, a paused process), in `statelock-state`'s write path.
//!
//! A write that passed the fence before the swap therefore lands before the second look
//! unless its own final request takes longer than the other half of the settle time to reach
//! the store; only such a write can still land after a takeover.
//!
//! # The takeover is a compare-and-swap
//!
//! The new record replaces the old with `PutMode::Update(version read)`, so of two takers
//! that both judged the same lock stale, exactly one write lands (S3 `If-Match` on the ETag;
//! the records differ by ID, so their ETags differ too). The loser re-reads and reports the
//! winner as the holder. Fencing compares every write's lock ID with the current record, so
//! the old holder's writes are refused from then on.
//!
//! A client with a secondary lock (dual-lock mode) never takes over: the `.tflock` lock would
//! change hands while the secondary stayed with the old holder, so both would think they hold
//! the state. [`LockClient::acquire_or_take_over`] refuses with
//! [`LockError::TakeoverWithSecondary`] instead.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_store::{ObjectMeta, PutMode, PutOptions, StoreError, Version};

use crate::client::{Acquired, LockClient};
use crate::error::LockError;

/// How long a taker waits after its swap before the second look at the state: a quarter of
/// the TTL, at most 5 s. Long enough for a write that passed the fence just before the swap
/// to land (see [`fence_fresh_for`]), short next to the TTL the lock has already been idle.
pub fn takeover_settle(ttl: Duration) -> Duration {
    (ttl / 4).min(Duration::from_secs(5))
}

/// How long after the start of its fence read a write may still swap the state without
/// fencing again, when locks on it may be taken over after `ttl`: half of
/// [`takeover_settle`], so the swap's own request has the other half to land.
pub fn fence_fresh_for(ttl: Duration) -> Duration {
    takeover_settle(ttl) / 2
}

/// What [`LockClient::acquire_or_take_over`] did.
#[derive(Debug)]
pub enum Acquisition {
    /// The lock was free (or already ours) and is taken.
    Acquired(Acquired),
    /// The lock was idle for longer than the TTL and is now ours.
    TookOver {
        /// The record now stored.
        record: LockInfo,
        /// The holder it replaced.
        previous: LockInfo,
        /// How long that lock had been idle.
        idle: Duration,
    },
}

impl LockClient {
    /// [`LockClient::acquire`], and when someone else holds the lock and it has been idle
    /// for longer than `ttl`, a compare-and-swap of their record by ours, if `allowed` (the
    /// caller may take over locks on this state). A lock whose idleness cannot be told is
    /// never taken over.
    pub async fn acquire_or_take_over(
        &self,
        key: &StateKey,
        info: LockInfo,
        ttl: Duration,
        allowed: bool,
    ) -> Result<Acquisition, LockError> {
        let held = match self.acquire(key, info.clone()).await {
            Ok(acquired) => return Ok(Acquisition::Acquired(acquired)),
            Err(held @ LockError::Held { .. }) => held,
            Err(e) => return Err(e),
        };
        let LockError::Held {
            holder, version, ..
        } = &held
        else {
            unreachable!("matched above")
        };
        let Some((idle, state_seen)) = self.idle_for(key, version).await? else {
            return Err(held);
        };
        if idle <= ttl {
            return Err(held);
        }
        if !allowed {
            tracing::info!(%key, idle_secs = idle.as_secs(), "idle lock not taken over: the caller may not take over locks on this state");
            return Err(held);
        }
        if let Some(secondary) = self.secondary() {
            return Err(LockError::TakeoverWithSecondary {
                key: key.clone(),
                place: secondary.describe(),
                holder: holder.clone(),
            });
        }
        let record = self.record_for(key, info.clone());
        let put = self
            .store()
            .put(
                &key.lock_key(),
                Bytes::from(record.encode()),
                PutOptions::json(PutMode::Update(version.clone())),
            )
            .await;
        match put {
            Ok(ours) => {
                // The holder may have been active after all: a state write of theirs that
                // passed the fence before our swap and landed after we judged the lock idle,
                // or lands within the settle time (the swap covers the lock object only).
                // Then the lock goes back to them.
                tokio::time::sleep(takeover_settle(ttl)).await;
                match self.head(key.as_str()).await {
                    Ok(state_now)
                        if state_now.as_ref().map(|m| &m.version) != state_seen.as_ref() =>
                    {
                        return Err(self.hand_back(key, holder, ours.version).await);
                    }
                    Ok(_) => {}
                    // Unknowable now: the takeover stands, as it did before this look.
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "cannot re-read the state after a takeover; it stands");
                    }
                }
                Ok(Acquisition::TookOver {
                    record,
                    previous: holder.clone(),
                    idle,
                })
            }
            // Another taker won, or the holder released meanwhile: a plain attempt says which.
            Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {
                self.acquire(key, info).await.map(Acquisition::Acquired)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `holder`'s record back over ours (at `ours`) after a takeover that turned out
    /// premature, and answers as for a held lock: the caller keeps waiting.
    async fn hand_back(&self, key: &StateKey, holder: &LockInfo, ours: Version) -> LockError {
        tracing::warn!(%key, id = %holder.id, "the state was written while the lock was being taken over: the lock goes back to its holder");
        let put = self
            .store()
            .put(
                &key.lock_key(),
                Bytes::from(holder.encode()),
                PutOptions::json(PutMode::Update(ours)),
            )
            .await;
        match put {
            Ok(meta) => LockError::Held {
                key: key.clone(),
                holder: holder.clone(),
                version: meta.version,
            },
            Err(e) => e.into(),
        }
    }

    /// How long the lock at `version` has been idle, and the state's version that judgement
    /// rests on; `None` when it cannot be told (the lock changed since it was read, or the
    /// store keeps no modification times), which never counts as stale.
    async fn idle_for(
        &self,
        key: &StateKey,
        version: &Version,
    ) -> Result<Option<(Duration, Option<Version>)>, StoreError> {
        let Some(lock) = self.head(&key.lock_key()).await? else {
            return Ok(None);
        };
        if lock.version != *version {
            return Ok(None);
        }
        let state = self.head(key.as_str()).await?;
        let last = [Some(&lock), state.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|m| m.last_modified)
            .max();
        let Some(last) = last else {
            tracing::warn!(%key, "the store keeps no modification times, so a lock TTL cannot judge this lock");
            return Ok(None);
        };
        // A store clock ahead of ours makes the lock look fresh, never stale.
        Ok(Some((
            SystemTime::now().duration_since(last).unwrap_or_default(),
            state.map(|m| m.version),
        )))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.store().head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use statelock_core::Timestamp;
    use statelock_store::{
        Fault, FaultyStore, Hook, MemoryStore, ObjectStore, Op, PutMode, PutOptions, StoreResult,
    };

    use super::*;
    use crate::LockState;

    fn record(id: &str) -> LockInfo {
        LockInfo {
            id: id.to_owned(),
            operation: "OperationTypeApply".to_owned(),
            info: String::new(),
            who: format!("{id}@ci"),
            version: "1.15.5".to_owned(),
            created: Timestamp::now(),
            path: String::new(),
        }
    }

    async fn held_by_alice() -> (Arc<FaultyStore>, LockClient, StateKey) {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let locks = LockClient::new(store.clone(), "bucket");
        let key = StateKey::parse("team/app.tfstate").unwrap();
        locks.acquire(&key, record("alice")).await.unwrap();
        store
            .put(
                key.as_str(),
                Bytes::from_static(b"{\"serial\":1}"),
                PutOptions::json(PutMode::Overwrite),
            )
            .await
            .unwrap();
        (store, locks, key)
    }

    #[tokio::test]
    async fn an_idle_lock_is_taken_over() {
        let (_, locks, key) = held_by_alice().await;
        let got = locks
            .acquire_or_take_over(&key, record("bob"), Duration::ZERO, true)
            .await
            .unwrap();
        assert!(matches!(got, Acquisition::TookOver { .. }), "{got:?}");
    }

    /// Alice's state write, as her server makes it under her lock.
    async fn alice_writes(inner: Arc<dyn ObjectStore>, key: StateKey) -> StoreResult<()> {
        inner
            .put(
                key.as_str(),
                Bytes::from_static(b"{\"serial\":2}"),
                PutOptions::json(PutMode::Overwrite),
            )
            .await
            .map(drop)
    }

    /// Bob's attempt to create the lock fails as usual and `around_swap` is scripted on his
    /// swap; his takeover must answer that Alice holds the lock, and the lock be hers again.
    async fn bob_takes_over(
        store: &FaultyStore,
        locks: &LockClient,
        key: &StateKey,
        ttl: Duration,
        around_swap: Fault,
    ) {
        let lock_key = key.lock_key();
        store.inject_for_exact_key(Op::Put, &lock_key, Fault::Delay(Duration::ZERO));
        store.inject_for_exact_key(Op::Put, &lock_key, around_swap);
        let err = locks
            .acquire_or_take_over(key, record("bob"), ttl, true)
            .await
            .unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(holder.id, "alice", "the takeover was handed back");
        let Some(LockState::Held(now)) = locks.inspect(key).await.unwrap() else {
            panic!("no lock");
        };
        assert_eq!(now.info.id, "alice", "the lock is Alice's again");
        assert_eq!(store.pending_faults(), 0, "both scripted puts happened");
    }

    /// Found by the fault run: the holder's state write landed between the idleness check
    /// and the swap, and the takeover stood 89 ms after that accepted write.
    #[tokio::test]
    async fn a_state_write_landing_during_the_takeover_hands_the_lock_back() {
        let (store, locks, key) = held_by_alice().await;
        let state_key = key.clone();
        let before_swap = Fault::Before(Hook::new(move |inner| {
            alice_writes(inner, state_key.clone())
        }));
        bob_takes_over(&store, &locks, &key, Duration::ZERO, before_swap).await;
    }

    /// The rest of that race: the holder's write passed the fence before the swap and lands
    /// right after it. The taker's settle time before its second look catches it.
    #[tokio::test]
    async fn a_state_write_landing_within_the_settle_time_hands_the_lock_back() {
        let (store, locks, key) = held_by_alice().await;
        let ttl = Duration::from_millis(400);
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let state_key = key.clone();
        // Bob's swap lands; Alice's write lands 20 ms later, well within the 100 ms settle.
        let after_swap = Fault::After(Hook::new(move |inner| {
            let state_key = state_key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                alice_writes(inner, state_key).await.unwrap();
            });
            async { Ok(()) }
        }));
        bob_takes_over(&store, &locks, &key, ttl, after_swap).await;
        assert_eq!(takeover_settle(ttl), Duration::from_millis(100));
        assert_eq!(fence_fresh_for(ttl), Duration::from_millis(50));
        assert_eq!(
            takeover_settle(Duration::from_secs(600)),
            Duration::from_secs(5)
        );
    }
}
