//! The state service: reading, writing and deleting one state with every rule applied once,
//! for every front. A write is fenced (only the lock holder writes), passes the stale-write
//! guard, is recorded in the history and then lands by compare-and-swap on the version read;
//! a delete is fenced, recorded, and removes only the version read.
//!
//! Verbs take plain values (a key, bytes, the lock ID the client sent, who it is) and return
//! typed errors; the fronts turn those into HTTP statuses, S3 errors or CLI messages. Every
//! change is reported to the front's [`StateEvents`] hook (audit trail, metrics) from here.
//! The lock verbs (waiting, takeover, unlock) are in [`locking`]; the probe's scratch
//! objects, the only non-states a front may write, in [`scratch`].

mod locking;
mod owners;
mod rollback;
mod scratch;
#[cfg(test)]
mod test_service;

pub use locking::{LockRefused, LockRequest, Unlock, Unlocked};
pub use rollback::{
    LockRelease, PlannedRollback, ROLLBACK_OPERATION, RecordIn, RollbackError, RollbackOutcome,
    RolledBack,
};
pub use scratch::is_scratch_key;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use statelock_core::LockInfo;
use statelock_core::StateKey;
use statelock_core::state::StateHeader;
use statelock_lock::{FenceError, LockClient, LockState};
use statelock_store::{
    DeleteMode, GetStream, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    StoreError, StoreResult,
};

use crate::events::{NoEvents, StateEvent, StateEvents};
use crate::guard;
use crate::history::{self, Author, Incoming, Kind, Prior, Pruner, StateTag};
use crate::lock_policy::LockPolicy;
use crate::lock_queue::Waiting;
use crate::versions;

/// How a store's states are kept: whether the stale-write guard runs, how many history
/// versions each state keeps (0: all), and how lock requests wait and take over.
#[derive(Clone, Debug)]
pub struct StateRules {
    pub stale_write_guard: bool,
    pub history_retention: usize,
    pub locking: LockPolicy,
}

impl Default for StateRules {
    /// The server's defaults: guard on, [`history::DEFAULT_RETENTION`] versions, no lock wait,
    /// no TTL.
    fn default() -> StateRules {
        StateRules {
            stale_write_guard: true,
            history_retention: history::DEFAULT_RETENTION,
            locking: LockPolicy::default(),
        }
    }
}

/// One store's states under the rules, over the lock protocol of the same store.
#[derive(Clone, Debug)]
pub struct StateService {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) locks: LockClient,
    rules: StateRules,
    /// This replica's queue of waiting lock requests (only an ordering; the lock is the
    /// `.tflock` object).
    waiting: Arc<Waiting>,
    events: Arc<dyn StateEvents>,
    /// History prunes running in the background.
    pruner: Arc<Pruner>,
}

/// Which writer a state write or delete must come from while the state is locked.
#[derive(Clone, Copy, Debug)]
pub enum Fence<'a> {
    /// The lock ID the client sent with the write (the `http` backend's `?ID=`): a locked
    /// state is written only with its holder's ID, an unlocked one only without an ID.
    LockId(Option<&'a str>),
    /// The protocol carries no lock ID with the write (S3's PutObject): AWS's own semantics,
    /// the lock is advisory for the write itself. The history records the holder, if any.
    Advisory,
    /// No lock ID either, but the writer is a principal: while the state is locked, only the
    /// principal that took the lock (a [`LockRequest::owner`]) may write it.
    Owner(&'a str),
}

/// What the stored state must be for a write to go ahead, checked on the version the write
/// then replaces by compare-and-swap, so no other write can slip in between (S3's
/// `If-None-Match: *` and `If-Match`).
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    Any,
    /// No state is stored.
    Absent,
    /// The stored state's MD5, lower-case hex (a single-part S3 ETag without its quotes).
    Md5(&'a str),
}

/// An accepted write.
#[derive(Debug)]
pub struct Written {
    /// The state's document header (serial, lineage).
    pub header: StateHeader,
    /// The state it replaced, when its body had to be read (it carried no tag).
    pub before: Option<Bytes>,
    /// The serial of the state it replaced, if there was one with a serial.
    pub serial_before: Option<u64>,
    /// The bytes were identical to the stored state: nothing was stored (the secondary lock's
    /// digest was refreshed, which heals a digest a failed earlier write left stale).
    pub unchanged: bool,
}

/// Why a write or delete was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The body is not a Terraform/OpenTofu state document.
    #[error("the body is not a state document: {0}")]
    NotAState(String),
    /// The writer does not hold the lock.
    #[error(transparent)]
    Fenced(#[from] FenceError),
    /// The stale-write guard refused it; the message says why.
    #[error("{0}")]
    Stale(String),
    /// The stored state is not the one the write expected ([`Expect`]).
    #[error("{0}")]
    Precondition(String),
    /// The state is locked, and not by the principal writing ([`Fence::Owner`]).
    #[error(
        "state {key} is locked by {} (lock ID {}), {}; while it is locked only that principal \
         may write it, and {principal} is not it",
        holder.who,
        holder.id,
        match owner {
            Some(o) => format!("taken by principal {o}"),
            None => "taken by a client that is not a principal of this server (on the bucket \
                     directly, or through the http front)".to_owned(),
        }
    )]
    NotTheOwner {
        key: StateKey,
        holder: Box<LockInfo>,
        owner: Option<String>,
        principal: String,
    },
    /// There is no state to delete.
    #[error("state {0} does not exist")]
    NoState(StateKey),
    /// Another writer changed the state between the read and the compare-and-swap.
    #[error(
        "state {key} was changed by another writer while this {action} was checked; nothing was \
         changed, read the state again and retry"
    )]
    Changed { key: StateKey, action: &'static str },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StateService {
    pub fn new(store: Arc<dyn ObjectStore>, locks: LockClient, rules: StateRules) -> StateService {
        StateService {
            store,
            locks,
            rules,
            waiting: Arc::new(Waiting::default()),
            events: Arc::new(NoEvents),
            pruner: Arc::default(),
        }
    }

    /// Returns once the history prunes this service started in the background have finished
    /// (before shutting down, and in tests that count the versions kept).
    pub async fn settled(&self) {
        self.pruner.settled().await;
    }

    /// Reports every change to `events` (the front's audit trail and metrics).
    pub fn with_events(mut self, events: Arc<dyn StateEvents>) -> StateService {
        self.events = events;
        self
    }

    /// The stored bytes of `key`, or `None` when there is no state.
    pub async fn read(&self, key: &StateKey) -> StoreResult<Option<Bytes>> {
        Ok(self
            .store
            .get_if_exists(key.as_str())
            .await?
            .map(|found| found.body))
    }

    /// [`StateService::read`] with the body as a stream, so a large state is never held in
    /// memory whole where the store reads in chunks; `None` when there is no state.
    pub async fn read_stream(&self, key: &StateKey) -> StoreResult<Option<GetStream>> {
        match self.store.get_stream(key.as_str()).await {
            Ok(found) => Ok(Some(found)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The newest `limit` versions (0: all) of `key`, from the server history and the store's
    /// object versions, newest first.
    pub async fn versions(
        &self,
        key: &StateKey,
        limit: usize,
    ) -> Result<versions::History, versions::ListError> {
        versions::history(&*self.store, key, limit).await
    }

    /// The versions `statelock serve` recorded for `key`, newest first (empty when none).
    pub async fn server_history(&self, key: &StateKey) -> StoreResult<Vec<history::VersionMeta>> {
        history::list(&*self.store, key).await
    }

    /// Version `id` of `key`: `current`, a server history ID or an S3 version ID.
    pub async fn version(
        &self,
        key: &StateKey,
        id: &str,
    ) -> Result<versions::Fetched, versions::FetchError> {
        versions::fetch(&*self.store, key, id).await
    }

    /// Writes `bytes` as the state at `key` for a client that sent `lock_id` (Terraform's
    /// `?ID=`), from `client`: fence, guard, history, compare-and-swap.
    pub async fn write(
        &self,
        key: &StateKey,
        bytes: Bytes,
        fence: Fence<'_>,
        client: Option<SocketAddr>,
    ) -> Result<Written, StateError> {
        self.write_expecting(key, bytes, fence, client, Expect::Any)
            .await
    }

    /// [`StateService::write`], only if the stored state is as `expect` says.
    pub async fn write_expecting(
        &self,
        key: &StateKey,
        bytes: Bytes,
        fence: Fence<'_>,
        client: Option<SocketAddr>,
        expect: Expect<'_>,
    ) -> Result<Written, StateError> {
        let header =
            StateHeader::parse(&bytes).map_err(|e| StateError::NotAState(e.to_string()))?;
        let incoming = Incoming::new(bytes);
        // The fence's read of the lock and the read of the stored state's metadata are
        // independent, so they share one round trip; the swap below is on the version read
        // here, so nothing that changes the state in between can be overwritten.
        let fenced_at = Instant::now();
        let (holder, stored) =
            futures::future::join(self.holder(key, fence), self.stored(key)).await;
        let holder = holder?;
        let stored = stored?;
        let checks = self.rules.stale_write_guard || !matches!(expect, Expect::Any);
        let stored = match stored {
            Some(Stored::Untagged(_)) if checks => self.read_stored(key).await?,
            other => other,
        };
        check_expected(key, expect, stored.as_ref())?;
        if self.rules.stale_write_guard
            && let Some(found) = &stored
        {
            let identical = match found {
                Stored::Tagged(_, tag) => {
                    guard::check_header(&tag.header, incoming.is(tag), &header)
                        .map_err(StateError::Stale)?;
                    incoming.is(tag)
                }
                Stored::Body(found) => {
                    guard::check(&found.body, &incoming.bytes, &header)
                        .map_err(StateError::Stale)?;
                    found.body == incoming.bytes
                }
                Stored::Untagged(_) => unreachable!("read in full above when the guard runs"),
            };
            if identical {
                tracing::info!(%key, "write of identical bytes: nothing to store");
                self.locks.state_written(key, &incoming.bytes).await;
                return Ok(Written {
                    serial_before: header.serial,
                    before: stored.and_then(Stored::into_body),
                    header,
                    unchanged: true,
                });
            }
        }
        let serial_before = stored.as_ref().and_then(Stored::serial);
        let prior = Prior::of(stored.as_ref().map(Stored::meta));
        let mode = match stored.as_ref() {
            _ if crate::breakage::active(crate::breakage::Breakage::CasOff) => PutMode::Overwrite,
            Some(found) => PutMode::Update(found.meta().version.clone()),
            None => PutMode::Create,
        };
        let before = stored.and_then(Stored::into_body);
        let author = Author::of_write(Kind::Write, holder.as_ref(), client);
        let before_swap = self.fence_again_if_late(key, fence, fenced_at);
        match self
            .put(key, &incoming, mode, author, &prior, before_swap)
            .await
        {
            Ok(_) => {
                tracing::info!(%key, serial = ?header.serial, lineage = ?header.lineage, id = ?holder.as_ref().map(|h| &h.id), "state written");
                self.events
                    .record(StateEvent::Written {
                        key,
                        lock_id: holder.as_ref().map(|h| h.id.as_str()),
                        serial_before,
                        after: &incoming.bytes,
                    })
                    .await;
                Ok(Written {
                    header,
                    before,
                    serial_before,
                    unchanged: false,
                })
            }
            Err(StateError::Store(
                StoreError::Precondition { .. } | StoreError::AlreadyExists { .. },
            )) => Err(StateError::Changed {
                key: key.clone(),
                action: "write",
            }),
            Err(e) => Err(e),
        }
    }

    /// Right before a fenced write's swap: when locks may be taken over (a TTL is set) and
    /// the fence read that let the write through started longer ago than
    /// [`statelock_lock::fence_fresh_for`] allows (a slow history put, a paused process), the
    /// fence is read again. A takeover waits out its settle time before its second look at
    /// the state, so a write swapped within that bound is seen by it and the lock handed
    /// back; a later one would land under a lock that changed hands.
    async fn fence_again_if_late(
        &self,
        key: &StateKey,
        fence: Fence<'_>,
        fenced_at: Instant,
    ) -> Result<(), StateError> {
        let Some(ttl) = self.rules.locking.ttl else {
            return Ok(());
        };
        let fenced = matches!(fence, Fence::LockId(Some(_)) | Fence::Owner(_));
        let elapsed = fenced_at.elapsed();
        if !fenced || elapsed <= statelock_lock::fence_fresh_for(ttl) {
            return Ok(());
        }
        tracing::info!(%key, elapsed_ms = elapsed.as_millis() as u64, "the fence read is old by the time of the swap; fencing again");
        self.holder(key, fence).await.map(drop)
    }

    /// Deletes the state at `key`, fenced like a write; its content is kept in the history
    /// first, then it is removed only if it is still the version read. Returns that content.
    pub async fn delete(
        &self,
        key: &StateKey,
        fence: Fence<'_>,
        client: Option<SocketAddr>,
    ) -> Result<Bytes, StateError> {
        let holder = self.holder(key, fence).await?;
        let found = self
            .store
            .get_if_exists(key.as_str())
            .await?
            .ok_or_else(|| StateError::NoState(key.clone()))?;
        let author = Author::of_write(Kind::Delete, holder.as_ref(), client);
        history::record_snapshot(&*self.store, key, found.body.clone(), author).await?;
        match self
            .store
            .delete(key.as_str(), DeleteMode::IfVersion(found.meta.version))
            .await
        {
            Ok(()) => {
                self.locks.state_deleted(key).await;
                tracing::warn!(%key, id = ?holder.as_ref().map(|h| &h.id), "state deleted");
                self.events
                    .record(StateEvent::Deleted {
                        key,
                        lock_id: holder.as_ref().map(|h| h.id.as_str()),
                        content: &found.body,
                    })
                    .await;
                Ok(found.body)
            }
            Err(StoreError::NotFound { .. }) => Err(StateError::NoState(key.clone())),
            Err(StoreError::Precondition { .. }) => Err(StateError::Changed {
                key: key.clone(),
                action: "delete",
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `incoming` as the state at `key` in `mode` through the history (the version is
    /// recorded first, `before_swap` checked after it), then tells the secondary lock: in
    /// dual-lock mode, clients still on `dynamodb_table` check the state's `-md5` digest.
    /// Private: every write from outside goes through [`StateService::write`]'s fence and
    /// guard.
    async fn put(
        &self,
        key: &StateKey,
        incoming: &Incoming,
        mode: PutMode,
        author: Author,
        prior: &Prior,
        before_swap: impl Future<Output = Result<(), StateError>>,
    ) -> Result<ObjectMeta, StateError> {
        let written = history::write_state(
            &self.store,
            &self.pruner,
            self.rules.history_retention,
            key,
            incoming,
            PutOptions::json(mode),
            author,
            prior,
            before_swap,
        )
        .await?;
        self.locks.state_written(key, &incoming.bytes).await;
        Ok(written)
    }

    /// The stored state's metadata (one HEAD): with its tag when statelock wrote it.
    async fn stored(&self, key: &StateKey) -> StoreResult<Option<Stored>> {
        match self.store.head(key.as_str()).await {
            Ok(meta) => Ok(Some(
                match StateTag::from_metadata(&meta.metadata, meta.size) {
                    Some(tag) => Stored::Tagged(meta, tag),
                    None => Stored::Untagged(meta),
                },
            )),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stored state in full, for a state without a tag (written by another tool or an
    /// earlier release); `None` if it was deleted since its HEAD.
    async fn read_stored(&self, key: &StateKey) -> StoreResult<Option<Stored>> {
        Ok(self.store.get_if_exists(key.as_str()).await?.map(
            |found| match StateTag::from_metadata(&found.meta.metadata, found.meta.size) {
                Some(tag) => Stored::Tagged(found.meta, tag),
                None => Stored::Body(found),
            },
        ))
    }

    /// The lock holder the write is made for, after the fence has let it through.
    async fn holder(
        &self,
        key: &StateKey,
        fence: Fence<'_>,
    ) -> Result<Option<LockInfo>, StateError> {
        let fence = match fence {
            Fence::LockId(_) if crate::breakage::active(crate::breakage::Breakage::FenceOff) => {
                Fence::Advisory
            }
            fence => fence,
        };
        match fence {
            Fence::LockId(id) => Ok(self.locks.fence(key, id).await?),
            Fence::Advisory => Ok(match self.locks.inspect(key).await {
                Ok(Some(LockState::Held(held))) => Some(held.info),
                // Only the history's author line depends on it.
                Ok(_) | Err(_) => None,
            }),
            Fence::Owner(principal) => self.owned_by(key, principal).await,
        }
    }

    /// The lock's record if `principal` took it, `None` if the state is not locked; a lock
    /// taken by anyone else (or unreadable) refuses the write.
    async fn owned_by(
        &self,
        key: &StateKey,
        principal: &str,
    ) -> Result<Option<LockInfo>, StateError> {
        // The lock and its owner record are independent reads: one round trip for both.
        let (lock, owner) =
            futures::future::join(self.locks.inspect(key), owners::read(&*self.store, key)).await;
        let held = match lock {
            Ok(None) => return Ok(None),
            Ok(Some(LockState::Held(held))) => held.info,
            Ok(Some(LockState::Unreadable { reason, .. })) => {
                return Err(FenceError::Unreadable {
                    key: key.clone(),
                    reason,
                }
                .into());
            }
            Err(statelock_lock::LockError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(StateError::Precondition(e.to_string())),
        };
        let owner = owner?.filter(|o| o.lock_id == held.id).map(|o| o.principal);
        if owner.as_deref() == Some(principal) {
            return Ok(Some(held));
        }
        Err(StateError::NotTheOwner {
            key: key.clone(),
            holder: Box::new(held),
            owner,
            principal: principal.to_owned(),
        })
    }
}

/// The stored state as a write sees it.
#[derive(Debug)]
enum Stored {
    /// Written by statelock: its tag says all the checks need.
    Tagged(ObjectMeta, StateTag),
    /// No tag, body not read (nothing needs it).
    Untagged(ObjectMeta),
    /// No tag, body read.
    Body(statelock_store::GetResult),
}

impl Stored {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Stored::Tagged(meta, _) | Stored::Untagged(meta) => meta,
            Stored::Body(found) => &found.meta,
        }
    }

    fn serial(&self) -> Option<u64> {
        match self {
            Stored::Tagged(_, tag) => tag.header.serial,
            Stored::Untagged(_) => None,
            Stored::Body(found) => StateHeader::parse(&found.body).ok().and_then(|h| h.serial),
        }
    }

    fn into_body(self) -> Option<Bytes> {
        match self {
            Stored::Body(found) => Some(found.body),
            Stored::Tagged(..) | Stored::Untagged(_) => None,
        }
    }

    /// MD5 of the stored bytes, lower-case hex; `None` when the body was not read.
    fn md5(&self) -> Option<String> {
        match self {
            Stored::Tagged(_, tag) => Some(tag.md5.clone()),
            Stored::Untagged(_) => None,
            Stored::Body(found) => Some(history::md5_hex(&found.body)),
        }
    }
}

/// Whether the stored state (`current`) is what the write expects.
// The same error type as the write it is part of, which every caller matches on.
#[allow(clippy::result_large_err)]
fn check_expected(
    key: &StateKey,
    expect: Expect<'_>,
    current: Option<&Stored>,
) -> Result<(), StateError> {
    match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(StateError::Precondition(format!(
            "state {key} exists, and the write asked for none; nothing was written"
        ))),
        (Expect::Md5(_), None) => Err(StateError::NoState(key.clone())),
        (Expect::Md5(wanted), Some(found)) => {
            let stored = found
                .md5()
                .expect("an expectation makes the write read an untagged body");
            if stored.eq_ignore_ascii_case(wanted) {
                Ok(())
            } else {
                Err(StateError::Precondition(format!(
                    "state {key} has MD5 {stored}, not the {wanted} the write asked for; \
                     nothing was written"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statelock_core::Timestamp;
    use std::time::Duration;

    use statelock_store::{Fault, FaultyStore, Hook, MemoryStore, Op};

    fn service(guard: bool) -> (Arc<dyn ObjectStore>, StateService) {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let locks = LockClient::new(store.clone(), "bucket");
        let rules = StateRules {
            stale_write_guard: guard,
            history_retention: 0,
            ..StateRules::default()
        };
        (store.clone(), StateService::new(store, locks, rules))
    }

    fn state(serial: u64, n: u64) -> Bytes {
        Bytes::from(format!(
            r#"{{"version":4,"serial":{serial},"lineage":"L","outputs":{{"n":{{"value":{n},"type":"number"}}}},"resources":[]}}"#
        ))
    }

    fn key() -> StateKey {
        StateKey::parse("team/app.tfstate").unwrap()
    }

    fn record(id: &str) -> LockInfo {
        LockInfo {
            id: id.to_owned(),
            operation: "OperationTypeApply".to_owned(),
            info: String::new(),
            who: "a@x".to_owned(),
            version: "1.15.5".to_owned(),
            created: Timestamp::now(),
            path: String::new(),
        }
    }

    #[tokio::test]
    async fn a_write_is_fenced_guarded_recorded_and_swapped() {
        let (store, svc) = service(true);
        let k = key();
        let first = svc
            .write(&k, state(1, 1), Fence::LockId(None), None)
            .await
            .unwrap();
        assert!(!first.unchanged && first.before.is_none());
        let again = svc
            .write(&k, state(1, 1), Fence::LockId(None), None)
            .await
            .unwrap();
        assert!(again.unchanged, "identical bytes store nothing");
        let stale = svc
            .write(&k, state(1, 2), Fence::LockId(None), None)
            .await
            .unwrap_err();
        assert!(matches!(stale, StateError::Stale(_)), "{stale}");

        LockClient::new(store.clone(), "bucket")
            .acquire(&k, record("holder"))
            .await
            .unwrap();
        let fenced = svc
            .write(&k, state(2, 2), Fence::LockId(None), None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                fenced,
                StateError::Fenced(FenceError::LockedWithoutId { .. })
            ),
            "{fenced}"
        );
        let other = svc
            .write(&k, state(2, 2), Fence::LockId(Some("other")), None)
            .await
            .unwrap_err();
        assert!(
            matches!(other, StateError::Fenced(FenceError::OtherHolder { .. })),
            "{other}"
        );
        let written = svc
            .write(&k, state(2, 2), Fence::LockId(Some("holder")), None)
            .await
            .unwrap();
        // The stored state was statelock's own: its tag stood in for its body.
        assert_eq!((written.before, written.serial_before), (None, Some(1)));
        assert_eq!(svc.read(&k).await.unwrap(), Some(state(2, 2)));

        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions.len(), 2, "one version per stored write");
        assert_eq!(versions[0].who, "a@x", "the holder's Who is recorded");
        assert_eq!(versions[0].lock_id.as_deref(), Some("holder"));
    }

    fn counted(guard: bool, retention: usize) -> (Arc<FaultyStore>, StateService) {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let dyn_store: Arc<dyn ObjectStore> = store.clone();
        let locks = LockClient::new(dyn_store.clone(), "bucket");
        let rules = StateRules {
            stale_write_guard: guard,
            history_retention: retention,
            ..StateRules::default()
        };
        (store, StateService::new(dyn_store, locks, rules))
    }

    fn calls(store: &FaultyStore) -> Vec<(Op, usize)> {
        let mut calls = store.call_counts();
        calls.retain(|(_, n)| *n > 0);
        calls.sort_by_key(|(op, _)| format!("{op:?}"));
        calls
    }

    /// Found by the fault run (RELIABILITY.md): a write that passed the fence, then was slow
    /// (its history put, a paused process), landed after its lock had been taken over. With
    /// a TTL set, a write whose fence read is older than `fence_fresh_for` is fenced again
    /// right before its swap: here the lock changes hands during a slow history put.
    #[tokio::test]
    async fn a_write_slower_than_the_fence_allows_is_fenced_again_before_its_swap() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let inner: Arc<dyn ObjectStore> = store.clone();
        let mut rules = StateRules {
            history_retention: 0,
            ..StateRules::default()
        };
        rules.locking.ttl = Some(Duration::from_millis(400));
        let svc = StateService::new(
            store.clone(),
            LockClient::new(inner.clone(), "bucket"),
            rules,
        );
        let k = key();
        LockClient::new(inner.clone(), "bucket")
            .acquire(&k, record("alice"))
            .await
            .unwrap();
        svc.write(&k, state(1, 1), Fence::LockId(Some("alice")), None)
            .await
            .unwrap();
        let lock_key = k.lock_key();
        store.inject_for_key(
            Op::Put,
            history::HISTORY_PREFIX,
            Fault::Before(Hook::new(move |inner: Arc<dyn ObjectStore>| {
                let lock_key = lock_key.clone();
                async move {
                    // Bob takes the lock over while Alice's version is being stored...
                    inner
                        .put(
                            &lock_key,
                            Bytes::from(record("bob").encode()),
                            PutOptions::json(PutMode::Overwrite),
                        )
                        .await?;
                    // ...and the put takes longer than the fence read stays fresh.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(())
                }
            })),
        );
        let refused = svc
            .write(&k, state(2, 2), Fence::LockId(Some("alice")), None)
            .await
            .unwrap_err();
        let StateError::Fenced(FenceError::OtherHolder { holder, .. }) = &refused else {
            panic!("{refused}");
        };
        assert_eq!(holder.id, "bob");
        assert_eq!(svc.read(&k).await.unwrap(), Some(state(1, 1)), "unchanged");
        let versions = history::list(&*inner, &k).await.unwrap();
        assert_eq!(versions.len(), 1, "the refused write's version is removed");
        assert_eq!(store.pending_faults(), 0);
    }

    #[tokio::test]
    async fn a_write_over_a_tagged_state_reads_only_metadata_and_lists_nothing() {
        let (store, svc) = counted(true, 100);
        let k = key();
        svc.write(&k, state(1, 1), Fence::LockId(None), None)
            .await
            .unwrap();
        store.reset_counts();
        svc.write(&k, state(2, 2), Fence::LockId(None), None)
            .await
            .unwrap();
        // The lock's get (fence) and the state's head (guard) at once, then the version's
        // one put, then the state's swap.
        assert_eq!(
            calls(&store),
            [(Op::Get, 1), (Op::Head, 1), (Op::Put, 2)],
            "{:?}",
            store.call_counts()
        );
        store.reset_counts();
        let stale = svc
            .write(&k, state(2, 3), Fence::LockId(None), None)
            .await
            .unwrap_err();
        assert!(matches!(stale, StateError::Stale(_)), "{stale}");
        assert_eq!(
            calls(&store),
            [(Op::Get, 1), (Op::Head, 1)],
            "refused on the tag alone"
        );
    }

    #[tokio::test]
    async fn a_state_written_by_another_tool_is_read_in_full_and_guarded_the_same() {
        let (store, svc) = counted(true, 100);
        let k = key();
        // As Terraform writes it straight to the bucket: no statelock metadata.
        store
            .put(k.as_str(), state(5, 1), PutOptions::json(PutMode::Create))
            .await
            .unwrap();
        let stale = svc
            .write(&k, state(5, 2), Fence::LockId(None), None)
            .await
            .unwrap_err();
        assert!(matches!(stale, StateError::Stale(_)), "{stale}");
        let written = svc
            .write(&k, state(6, 2), Fence::LockId(None), None)
            .await
            .unwrap();
        assert_eq!(written.before.as_deref(), Some(&state(5, 1)[..]));
        assert_eq!(written.serial_before, Some(5));
        let tagged = store.head(k.as_str()).await.unwrap();
        let tag = StateTag::from_metadata(&tagged.metadata, tagged.size).expect("now tagged");
        assert_eq!(tag.header.serial, Some(6));
        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(
            tag.history.map(|id| id.to_string()),
            Some(versions[0].id.clone())
        );
    }

    #[tokio::test]
    async fn a_version_ordered_after_a_later_clock_is_recorded_again_after_it() {
        let (store, svc) = counted(true, 0);
        let k = key();
        // Another replica, its clock an hour ahead, recorded a version (then the state was
        // deleted, so no tag says so).
        let ahead = history::VersionId::new(
            Timestamp::from_unix(Timestamp::now().unix_secs() + 3600, 0),
            3,
        );
        store
            .put(
                &ahead.body_key(&k),
                state(3, 0),
                PutOptions::json(PutMode::Create),
            )
            .await
            .unwrap();
        svc.write(&k, state(1, 1), Fence::LockId(None), None)
            .await
            .unwrap();
        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions.len(), 2, "the early copy is gone: {versions:?}");
        assert!(versions[0].id > ahead.to_string(), "{versions:?}");
        assert_eq!(versions[0].serial, Some(1));
        // The next write goes by the tag, and still sorts last.
        svc.write(&k, state(2, 2), Fence::LockId(None), None)
            .await
            .unwrap();
        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions[0].serial, Some(2), "{versions:?}");
        assert!(versions[0].id > versions[1].id);
    }

    #[tokio::test]
    async fn versions_in_the_two_object_layout_of_earlier_releases_are_read_and_pruned() {
        let (store, svc) = counted(true, 1);
        let k = key();
        // What a previous release left: the state (untagged), and its version as a
        // `.meta.json` object beside the body.
        let old = history::VersionId::new(Timestamp::from_unix(1_700_000_000, 0), 1);
        let meta = history::VersionMeta {
            id: old.to_string(),
            kind: Kind::Write,
            time: old.time().to_rfc3339(),
            who: "old@release".to_owned(),
            serial: Some(1),
            lineage: Some("L".to_owned()),
            size: state(1, 1).len() as u64,
            md5: Some(history::md5_hex(&state(1, 1))),
            lock_id: None,
        };
        let json = Bytes::from(serde_json::to_vec(&meta).unwrap());
        for (object, body) in [(old.meta_key(&k), json), (old.body_key(&k), state(1, 1))] {
            store
                .put(&object, body, PutOptions::json(PutMode::Create))
                .await
                .unwrap();
        }
        store
            .put(k.as_str(), state(1, 1), PutOptions::json(PutMode::Create))
            .await
            .unwrap();
        assert_eq!(history::list(&*store, &k).await.unwrap(), [meta]);
        svc.write(&k, state(2, 2), Fence::LockId(None), None)
            .await
            .unwrap();
        svc.settled().await;
        // Retention 1: the old version and both its objects are gone, the new one listed.
        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions.len(), 1, "{versions:?}");
        assert_eq!(
            (versions[0].serial, versions[0].kind),
            (Some(2), Kind::Write)
        );
        assert!(
            store
                .get_if_exists(&old.meta_key(&k))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .list_all(&history::state_prefix(&k))
                .await
                .unwrap()
                .len(),
            1,
            "one object per new version"
        );
    }

    #[tokio::test]
    async fn retention_prunes_in_the_background_every_few_writes() {
        let (store, svc) = counted(true, 8);
        let k = key();
        for serial in 1..=20 {
            svc.write(&k, state(serial, serial), Fence::LockId(None), None)
                .await
                .unwrap();
        }
        svc.settled().await;
        let kept = history::list(&*store, &k).await.unwrap();
        // Pruned to 8 every prune_every(8) = 2 writes, and the first write lists anyway.
        assert!(
            (8..8 + history::prune_every(8) as usize).contains(&kept.len()),
            "{}",
            kept.len()
        );
        let serials: Vec<_> = kept.iter().map(|v| v.serial.unwrap()).collect();
        assert_eq!(serials[0], 20);
        assert!(serials.windows(2).all(|w| w[0] == w[1] + 1), "{serials:?}");
    }

    #[tokio::test]
    async fn releasing_the_lock_read_never_removes_one_taken_over_since() {
        let (store, _) = service(true);
        let k = key();
        let locks = LockClient::new(store.clone(), "bucket");
        locks.acquire(&k, record("first")).await.unwrap();
        let Some(LockState::Held(read)) = locks.inspect(&k).await.unwrap() else {
            panic!("locked")
        };
        // Taken over between the read and the release.
        locks.break_lock(&k, None).await.unwrap();
        locks.acquire(&k, record("second")).await.unwrap();
        let err = locks.release_read(read).await.unwrap_err();
        assert!(
            matches!(err, statelock_lock::LockError::Changed { .. }),
            "{err}"
        );
        let Some(LockState::Held(now)) = locks.inspect(&k).await.unwrap() else {
            panic!("still locked")
        };
        assert_eq!(now.info.id, "second");
        locks.release_read(now).await.unwrap();
        assert!(locks.inspect(&k).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_delete_keeps_the_content_in_the_history_and_refuses_a_missing_state() {
        let (store, svc) = service(false);
        let k = key();
        svc.write(&k, state(3, 1), Fence::LockId(None), None)
            .await
            .unwrap();
        let deleted = svc.delete(&k, Fence::LockId(None), None).await.unwrap();
        assert_eq!(deleted, state(3, 1));
        assert_eq!(svc.read(&k).await.unwrap(), None);
        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions[0].kind, Kind::Delete, "{versions:?}");
        let missing = svc.delete(&k, Fence::LockId(None), None).await.unwrap_err();
        assert!(matches!(missing, StateError::NoState(_)), "{missing}");
    }

    #[tokio::test]
    async fn an_expected_state_is_checked_on_the_version_replaced() {
        // Without the guard too: the expectation alone makes the write read the state.
        let (_, svc) = service(false);
        let k = key();
        let absent = Expect::Absent;
        let any = Fence::LockId(None);
        svc.write_expecting(&k, state(1, 1), any, None, absent)
            .await
            .unwrap();
        let exists = svc
            .write_expecting(&k, state(2, 2), any, None, absent)
            .await
            .unwrap_err();
        assert!(matches!(exists, StateError::Precondition(_)), "{exists}");
        let stored = history::md5_hex(&state(1, 1));
        let wrong = svc
            .write_expecting(&k, state(2, 2), any, None, Expect::Md5("00ff"))
            .await
            .unwrap_err();
        assert!(matches!(wrong, StateError::Precondition(_)), "{wrong}");
        assert_eq!(svc.read(&k).await.unwrap(), Some(state(1, 1)));
        svc.write_expecting(&k, state(2, 2), any, None, Expect::Md5(&stored))
            .await
            .unwrap();
        assert_eq!(svc.read(&k).await.unwrap(), Some(state(2, 2)));
        let missing = StateKey::parse("none.tfstate").unwrap();
        let none = svc
            .write_expecting(&missing, state(1, 1), any, None, Expect::Md5(&stored))
            .await
            .unwrap_err();
        assert!(matches!(none, StateError::NoState(_)), "{none}");
    }

    #[tokio::test]
    async fn not_a_state_document_is_refused_before_anything_is_read() {
        let (store, svc) = service(true);
        let err = svc
            .write(
                &key(),
                Bytes::from_static(b"[1,2]"),
                Fence::LockId(None),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::NotAState(_)), "{err}");
        assert!(store.list_all("").await.unwrap().is_empty());
    }
}
