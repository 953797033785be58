//! The state service: reading, writing and deleting one state with every rule applied once,
//! for every front. A write is fenced (only the lock holder writes), passes the stale-write
//! guard, is recorded in the history and then lands by compare-and-swap on the version read;
//! a delete is fenced, recorded, and removes only the version read.
//!
//! Verbs take plain values (a key, bytes, the lock ID the client sent, who it is) and return
//! typed errors; the fronts turn those into HTTP statuses, S3 errors or CLI messages. Every
//! change is reported to the front's [`StateEvents`] hook (audit trail, metrics) from here.
//! The lock verbs (waiting, takeover, unlock) are in [`locking`].

mod locking;
mod rollback;

pub use locking::{LockRefused, LockRequest, Unlock, Unlocked};
pub use rollback::{
    LockRelease, PlannedRollback, ROLLBACK_OPERATION, RecordIn, RollbackError, RollbackOutcome,
    RolledBack,
};

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use statelock_core::LockInfo;
use statelock_core::StateKey;
use statelock_core::state::StateHeader;
use statelock_lock::{FenceError, LockClient, LockState};
use statelock_store::{
    DeleteMode, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError,
    StoreResult, Version,
};

use crate::events::{NoEvents, StateEvent, StateEvents};
use crate::guard;
use crate::history::{self, Author, Kind};
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
    /// The state it replaced, when the guard read it (for the audit trail).
    pub before: Option<Bytes>,
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
        }
    }

    /// Reports every change to `events` (the front's audit trail and metrics).
    pub fn with_events(mut self, events: Arc<dyn StateEvents>) -> StateService {
        self.events = events;
        self
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
        self.write_checked(key, bytes, fence, client, expect).await
    }

    /// The stored bytes of `key`, or `None` when there is no state.
    pub async fn read(&self, key: &StateKey) -> StoreResult<Option<Bytes>> {
        Ok(self
            .store
            .get_if_exists(key.as_str())
            .await?
            .map(|found| found.body))
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
        self.write_checked(key, bytes, fence, client, Expect::Any)
            .await
    }

    async fn write_checked(
        &self,
        key: &StateKey,
        bytes: Bytes,
        fence: Fence<'_>,
        client: Option<SocketAddr>,
        expect: Expect<'_>,
    ) -> Result<Written, StateError> {
        let header =
            StateHeader::parse(&bytes).map_err(|e| StateError::NotAState(e.to_string()))?;
        let holder = self.holder(key, fence).await?;
        // Without the guard nothing reads the old state, so its content is not returned.
        let mut before = None;
        let read_body = self.rules.stale_write_guard || !matches!(expect, Expect::Any);
        let current = if read_body {
            let found = self.store.get_if_exists(key.as_str()).await?;
            check_expected(key, expect, found.as_ref().map(|f| &f.body[..]))?;
            if let Some(found) = found.as_ref().filter(|_| self.rules.stale_write_guard) {
                guard::check(&found.body, &bytes, &header).map_err(StateError::Stale)?;
                if found.body == bytes {
                    tracing::info!(%key, "write of identical bytes: nothing to store");
                    self.locks.state_written(key, &bytes).await;
                    return Ok(Written {
                        header,
                        before: Some(found.body.clone()),
                        unchanged: true,
                    });
                }
            }
            found.map(|f| {
                before = Some(f.body);
                f.meta.version
            })
        } else {
            self.head_version(key).await?
        };
        let mode = match current {
            _ if crate::breakage::active(crate::breakage::Breakage::CasOff) => PutMode::Overwrite,
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        let author = Author::of_write(Kind::Write, holder.as_ref(), client);
        match self.put(key, bytes.clone(), mode, author).await {
            Ok(_) => {
                tracing::info!(%key, serial = ?header.serial, lineage = ?header.lineage, id = ?holder.as_ref().map(|h| &h.id), "state written");
                self.events
                    .record(StateEvent::Written {
                        key,
                        lock_id: holder.as_ref().map(|h| h.id.as_str()),
                        before: before.as_deref(),
                        after: &bytes,
                    })
                    .await;
                Ok(Written {
                    header,
                    before,
                    unchanged: false,
                })
            }
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                Err(StateError::Changed {
                    key: key.clone(),
                    action: "write",
                })
            }
            Err(e) => Err(e.into()),
        }
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

    /// Writes `bytes` as the state at `key` in `mode` through the history (the version is
    /// recorded first), then tells the secondary lock: in dual-lock mode, clients still on
    /// `dynamodb_table` check the state's `-md5` digest. Private: every write from outside
    /// goes through [`StateService::write`]'s fence and guard.
    async fn put(
        &self,
        key: &StateKey,
        bytes: Bytes,
        mode: PutMode,
        author: Author,
    ) -> StoreResult<ObjectMeta> {
        let written = history::write_state(
            &*self.store,
            self.rules.history_retention,
            key,
            bytes.clone(),
            PutOptions::json(mode),
            author,
        )
        .await?;
        self.locks.state_written(key, &bytes).await;
        Ok(written)
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
        }
    }

    async fn head_version(&self, key: &StateKey) -> StoreResult<Option<Version>> {
        match self.store.head(key.as_str()).await {
            Ok(meta) => Ok(Some(meta.version)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether the stored state (`current`) is what the write expects.
// The same error type as the write it is part of, which every caller matches on.
#[allow(clippy::result_large_err)]
fn check_expected(
    key: &StateKey,
    expect: Expect<'_>,
    current: Option<&[u8]>,
) -> Result<(), StateError> {
    match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(StateError::Precondition(format!(
            "state {key} exists, and the write asked for none; nothing was written"
        ))),
        (Expect::Md5(_), None) => Err(StateError::NoState(key.clone())),
        (Expect::Md5(wanted), Some(body)) => {
            let stored = history::md5_hex(body);
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
    use statelock_store::MemoryStore;

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
        assert_eq!(written.before.as_deref(), Some(&state(1, 1)[..]));
        assert_eq!(svc.read(&k).await.unwrap(), Some(state(2, 2)));

        let versions = history::list(&*store, &k).await.unwrap();
        assert_eq!(versions.len(), 2, "one version per stored write");
        assert_eq!(versions[0].who, "a@x", "the holder's Who is recorded");
        assert_eq!(versions[0].lock_id.as_deref(), Some("holder"));
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
