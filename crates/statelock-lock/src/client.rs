//! Acquire, inspect, release and break `.tflock` locks, exactly as Terraform's S3 backend with
//! `use_lockfile = true` does, plus the recovery that upstream lacks.
//!
//! - Acquire is one create-if-absent put of the encoded record at `<key>.tflock`, with
//!   `Content-Type: application/json`; the S3 adapter adds the pre-computed
//!   `x-amz-checksum-sha256` header, as OpenTofu sends it. `Path` is `<bucket>/<key>`.
//! - On any failure the lock is read back. A record carrying *our* ID means an earlier attempt
//!   landed and only its reply was lost (opentofu#4405): that is success, not a stuck lock.
//! - Release reads, compares the ID, and deletes only if the lock object is unchanged, where
//!   the store supports conditional delete; otherwise it deletes plainly and says so.
//! - With a [`SecondaryLock`] attached (dual-lock mode, spec §2.7), acquire takes the file lock
//!   first and then the secondary, releasing the file lock again if the secondary fails;
//!   release attempts both, file first. This is Terraform's order with `use_lockfile` and
//!   `dynamodb_table` both set, so statelock and such clients never deadlock each other.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use statelock_core::{LockId, LockInfo, StateKey};
use statelock_store::{
    DeleteMode, ObjectStore, ObjectStoreExt, PutMode, PutOptions, Quirk, StoreError, Version,
};

use crate::error::LockError;
use crate::fence::FenceError;
use crate::secondary::{SecondaryError, SecondaryLock};

/// How many times an acquire re-tries after the lock vanished under it or a request failed
/// without landing.
const ACQUIRE_ATTEMPTS: usize = 3;

/// Lock objects read at once when listing.
const LIST_READ_CONCURRENCY: usize = 16;

/// The lock protocol over one store.
#[derive(Debug, Clone)]
pub struct LockClient {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    secondary: Option<Arc<dyn SecondaryLock>>,
}

/// A lock as found in the store, with the version it was read or written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub key: StateKey,
    pub info: LockInfo,
    pub version: Version,
}

/// A successful acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    pub lock: HeldLock,
    /// The create's reply was lost or ambiguous and the lock was recognised as ours by its ID.
    pub recovered_after_ambiguous_reply: bool,
}

/// How a lock object was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteMethod {
    /// Deleted only because its version was still the one read: nothing newer was removed.
    Conditional,
    /// Deleted unconditionally, because the store cannot delete conditionally.
    Plain { reason: String },
}

/// A successful release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub info: LockInfo,
    pub method: DeleteMethod,
}

/// What [`LockClient::inspect`] finds at a state's lock key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Held(HeldLock),
    /// An object that is not a valid lock record.
    Unreadable {
        raw: Bytes,
        version: Version,
        reason: String,
    },
}

/// A lock found by [`LockClient::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLock {
    /// The lock object's key.
    pub lock_key: String,
    /// The state key it protects; `None` if the lock key does not name a valid state key.
    pub state_key: Option<StateKey>,
    pub state: LockState,
    pub last_modified: Option<SystemTime>,
}

/// The result of [`LockClient::break_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The removed record, when it was readable.
    pub info: Option<LockInfo>,
    /// The removed bytes.
    pub raw: Bytes,
    pub method: DeleteMethod,
}

impl LockClient {
    /// Locks on `store`; `bucket` is used in each record's `Path` (`<bucket>/<key>`), so use the
    /// bucket name for S3 and a stable name for other stores.
    pub fn new(store: Arc<dyn ObjectStore>, bucket: impl Into<String>) -> LockClient {
        LockClient {
            store,
            bucket: bucket.into(),
            secondary: None,
        }
    }

    /// Also takes and releases `secondary` with every lock (dual-lock mode).
    pub fn with_secondary(mut self, secondary: Option<Arc<dyn SecondaryLock>>) -> LockClient {
        self.secondary = secondary;
        self
    }

    /// The secondary lock, in dual-lock mode.
    pub fn secondary(&self) -> Option<&Arc<dyn SecondaryLock>> {
        self.secondary.as_ref()
    }

    /// The store this client locks in.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The record `info` completed as the S3 backend would write it for `key`: `Path` set to
    /// `<bucket>/<key>` and, if `ID` is empty, a fresh random ID.
    pub fn record_for(&self, key: &StateKey, mut info: LockInfo) -> LockInfo {
        info.path = key.lock_path(&self.bucket);
        if info.id.is_empty() {
            info.id = LockId::generate();
        }
        info
    }

    /// Takes the lock on `key` with `info` (completed by [`LockClient::record_for`]).
    ///
    /// Fails with [`LockError::Held`] (carrying the holder's record) when another ID holds it,
    /// and with [`LockError::HeldIn`] when only the secondary lock is held by someone else.
    pub async fn acquire(&self, key: &StateKey, info: LockInfo) -> Result<Acquired, LockError> {
        let acquired = self.acquire_file(key, info).await?;
        let Some(secondary) = &self.secondary else {
            return Ok(acquired);
        };
        let error = match secondary.acquire(key, &acquired.lock.info).await {
            Ok(()) => return Ok(acquired),
            Err(e) => e,
        };
        let place = secondary.describe();
        // Both locks or neither: the file lock must not outlive a failed secondary.
        if let Err(rollback) = self.release_file(key, &acquired.lock.info.id).await {
            return Err(LockError::Secondary {
                key: key.clone(),
                place,
                message: format!(
                    "failed to clean up the .tflock lock after the lock error: {rollback}; original error: {error}"
                ),
            });
        }
        Err(match error {
            SecondaryError::Held { holder } => LockError::HeldIn {
                key: key.clone(),
                place,
                holder,
            },
            other => LockError::Secondary {
                key: key.clone(),
                place,
                message: format!("{other} (the .tflock lock was released again)"),
            },
        })
    }

    /// The `.tflock` half of [`LockClient::acquire`].
    async fn acquire_file(&self, key: &StateKey, info: LockInfo) -> Result<Acquired, LockError> {
        let info = self.record_for(key, info);
        let body = Bytes::from(info.encode());
        let lock_key = key.lock_key();
        let mut last_error: Option<StoreError> = None;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let put = self
                .store
                .put(&lock_key, body.clone(), PutOptions::json(PutMode::Create))
                .await;
            let ambiguous = match put {
                Ok(meta) => {
                    return Ok(Acquired {
                        lock: HeldLock {
                            key: key.clone(),
                            info,
                            version: meta.version,
                        },
                        recovered_after_ambiguous_reply: false,
                    });
                }
                Err(StoreError::AlreadyExists { .. }) => false,
                Err(e @ StoreError::Other { .. }) => {
                    last_error = Some(e);
                    true
                }
                Err(other) => return Err(other.into()),
            };
            // Every failure is followed by reading the holder, as upstream does; unlike
            // upstream, a record with our own ID is recognised as ours.
            let found = match self.store.get(&lock_key).await {
                Ok(found) => found,
                // Gone: released between our create and this read, or our create never
                // landed. Either way nobody holds it now, so try again.
                Err(StoreError::NotFound { .. }) => continue,
                Err(read_error) if ambiguous => {
                    tracing::warn!(%lock_key, %read_error, "could not read the lock after a failed create");
                    return Err(last_error.take().unwrap_or(read_error).into());
                }
                Err(read_error) => return Err(read_error.into()),
            };
            match LockInfo::decode(&found.body) {
                Ok(holder) if holder.id == info.id => {
                    tracing::info!(%lock_key, id = %info.id, "recognised our own lock after an ambiguous reply");
                    return Ok(Acquired {
                        lock: HeldLock {
                            key: key.clone(),
                            info: holder,
                            version: found.meta.version,
                        },
                        recovered_after_ambiguous_reply: true,
                    });
                }
                Ok(holder) => {
                    return Err(LockError::Held {
                        key: key.clone(),
                        holder,
                        version: found.meta.version,
                    });
                }
                Err(e) => {
                    return Err(LockError::Unreadable {
                        key: key.clone(),
                        raw: found.body,
                        version: found.meta.version,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(match last_error {
            Some(e) => e.into(),
            None => StoreError::other(
                self.store.describe(),
                "acquire lock",
                &lock_key,
                format!("the lock kept appearing and vanishing over {ACQUIRE_ATTEMPTS} attempts"),
            )
            .into(),
        })
    }

    /// What is at `key`'s lock object now: `None` when unlocked.
    pub async fn inspect(&self, key: &StateKey) -> Result<Option<LockState>, LockError> {
        let Some(found) = self.store.get_if_exists(&key.lock_key()).await? else {
            return Ok(None);
        };
        Ok(Some(match LockInfo::decode(&found.body) {
            Ok(info) => LockState::Held(HeldLock {
                key: key.clone(),
                info,
                version: found.meta.version,
            }),
            Err(e) => LockState::Unreadable {
                raw: found.body,
                version: found.meta.version,
                reason: e.to_string(),
            },
        }))
    }

    /// Releases the lock on `key` held under `id`: read, compare the ID, then delete only if the
    /// lock object is unchanged. This is also `force-unlock ID`: whoever knows the ID may release.
    /// In dual-lock mode the secondary is released too, even when the file release fails.
    pub async fn release(&self, key: &StateKey, id: &str) -> Result<Released, LockError> {
        let file = self.release_file(key, id).await;
        self.release_secondary(key, id, file).await
    }

    /// Releases `held`, a lock the caller has just read (its holder, whoever that is), without
    /// reading it again: deleted only if it is still that version, so a lock taken over
    /// meanwhile is never removed. The secondary lock as in [`LockClient::release`].
    pub async fn release_read(&self, held: HeldLock) -> Result<Released, LockError> {
        let file = self
            .delete_lock_object(&held.key, held.version.clone())
            .await
            .map(|method| Released {
                info: held.info.clone(),
                method,
            });
        self.release_secondary(&held.key, &held.info.id, file).await
    }

    /// The secondary half of a release whose `.tflock` half came out as `file`.
    async fn release_secondary(
        &self,
        key: &StateKey,
        id: &str,
        file: Result<Released, LockError>,
    ) -> Result<Released, LockError> {
        let Some(secondary) = &self.secondary else {
            return file;
        };
        match (file, secondary.release(key, id).await) {
            (file, Ok(())) => file,
            (file, Err(SecondaryError::NotLocked)) => {
                tracing::info!(%key, %id, place = %secondary.describe(), "the secondary lock was already gone");
                file
            }
            (Ok(_), Err(e)) => Err(LockError::Secondary {
                key: key.clone(),
                place: secondary.describe(),
                message: format!("the .tflock lock was released but this one was not: {e}"),
            }),
            (Err(file), Err(e)) => {
                tracing::warn!(%key, %id, place = %secondary.describe(), error = %e, "the secondary lock was not released either");
                Err(file)
            }
        }
    }

    /// Tells the secondary lock (if any) that `body` is now the state at `key`. A failure is
    /// logged, not returned: the write has happened, as upstream's `putMD5` treats it.
    pub async fn state_written(&self, key: &StateKey, body: &[u8]) {
        if let Some(secondary) = &self.secondary
            && let Err(e) = secondary.state_written(key, body).await
        {
            tracing::error!(%key, place = %secondary.describe(), error = %e, "the state was written but its digest was not updated; clients still locking there will refuse it until it is refreshed (statelock migrate dynamodb --apply --stale-digests refresh)");
        }
    }

    /// Tells the secondary lock (if any) that the state at `key` was deleted; failures are
    /// logged.
    pub async fn state_deleted(&self, key: &StateKey) {
        if let Some(secondary) = &self.secondary
            && let Err(e) = secondary.state_deleted(key).await
        {
            tracing::warn!(%key, place = %secondary.describe(), error = %e, "the state was deleted but its digest was not");
        }
    }

    /// The `.tflock` half of [`LockClient::release`].
    async fn release_file(&self, key: &StateKey, id: &str) -> Result<Released, LockError> {
        let held = match self.inspect(key).await? {
            None => return Err(LockError::NotLocked { key: key.clone() }),
            Some(LockState::Unreadable {
                raw,
                version,
                reason,
            }) => {
                return Err(LockError::Unreadable {
                    key: key.clone(),
                    raw,
                    version,
                    reason,
                });
            }
            Some(LockState::Held(held)) => held,
        };
        if held.info.id != id {
            return Err(LockError::IdMismatch {
                key: key.clone(),
                given: id.to_owned(),
                holder: held.info,
            });
        }
        let method = self.delete_lock_object(key, held.version).await?;
        Ok(Released {
            info: held.info,
            method,
        })
    }

    /// Creates `key`'s lock object holding exactly `raw`, a record another lock system holds
    /// (a DynamoDB lock item's `Info`, moved verbatim), with create-if-absent. Returns the new
    /// object's version, or `None` when the object already holds exactly these bytes (an
    /// earlier move that stopped halfway). Another lock there is [`LockError::Held`] (or
    /// [`LockError::Unreadable`]), and nothing is written.
    pub async fn adopt(&self, key: &StateKey, raw: Bytes) -> Result<Option<Version>, LockError> {
        let lock_key = key.lock_key();
        match self
            .store
            .put(&lock_key, raw.clone(), PutOptions::json(PutMode::Create))
            .await
        {
            Ok(meta) => Ok(Some(meta.version)),
            Err(StoreError::AlreadyExists { .. }) => {
                let Some(found) = self.store.get_if_exists(&lock_key).await? else {
                    // Released between the create and the read: nothing to adopt over; the
                    // caller may try again.
                    return Err(LockError::Changed { key: key.clone() });
                };
                if found.body == raw {
                    return Ok(None);
                }
                Err(match LockInfo::decode(&found.body) {
                    Ok(holder) => LockError::Held {
                        key: key.clone(),
                        holder,
                        version: found.meta.version,
                    },
                    Err(e) => LockError::Unreadable {
                        key: key.clone(),
                        raw: found.body,
                        version: found.meta.version,
                        reason: e.to_string(),
                    },
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a state write under `id` (or under no lock) may proceed on `key` now (see
    /// [`crate::fence`]); returns the holder's record when the write is made under the lock,
    /// so callers need not read it again.
    pub async fn fence(
        &self,
        key: &StateKey,
        id: Option<&str>,
    ) -> Result<Option<LockInfo>, FenceError> {
        match (self.inspect(key).await?, id) {
            (None, None) => Ok(None),
            (None, Some(id)) => Err(FenceError::NotLocked {
                key: key.clone(),
                id: id.to_owned(),
            }),
            (Some(LockState::Held(held)), Some(id)) if held.info.id == id => Ok(Some(held.info)),
            (Some(LockState::Held(held)), Some(id)) => Err(FenceError::OtherHolder {
                key: key.clone(),
                id: id.to_owned(),
                holder: Box::new(held.info),
            }),
            (Some(LockState::Held(held)), None) => Err(FenceError::LockedWithoutId {
                key: key.clone(),
                holder: Box::new(held.info),
            }),
            (Some(LockState::Unreadable { reason, .. }), _) => Err(FenceError::Unreadable {
                key: key.clone(),
                reason,
            }),
        }
    }

    /// Removes whatever lock object is at `key`, readable or not, as long as it is still the
    /// version `expected` (when given) or the version read now. For Terraform's empty-body
    /// force-unlock and for removing corrupt lock objects after an operator has seen them.
    pub async fn break_lock(
        &self,
        key: &StateKey,
        expected: Option<&Version>,
    ) -> Result<Broken, LockError> {
        let found = self
            .store
            .get_if_exists(&key.lock_key())
            .await?
            .ok_or_else(|| LockError::NotLocked { key: key.clone() })?;
        if expected.is_some_and(|v| *v != found.meta.version) {
            return Err(LockError::Changed { key: key.clone() });
        }
        let method = self.delete_lock_object(key, found.meta.version).await?;
        let info = LockInfo::decode(&found.body).ok();
        // The secondary lock was taken under the same ID; without a readable record there is
        // no ID to release it with, and it is left for an operator.
        if let (Some(secondary), Some(info)) = (&self.secondary, &info) {
            match secondary.release(key, &info.id).await {
                Ok(()) | Err(SecondaryError::NotLocked) => {}
                Err(e) => {
                    tracing::warn!(%key, id = %info.id, place = %secondary.describe(), error = %e, "the .tflock lock was broken but the secondary lock was not released")
                }
            }
        }
        Ok(Broken {
            info,
            raw: found.body,
            method,
        })
    }

    /// Every lock object under `prefix` (a string prefix of state keys), with its holder.
    /// Locks released while the listing runs are left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedLock>, LockError> {
        let objects = self.store.list_all(prefix).await?;
        let lock_objects = objects
            .into_iter()
            .filter(|m| m.key.ends_with(statelock_core::LOCK_SUFFIX));
        let reads = stream::iter(lock_objects)
            .map(|meta| async move {
                let found = self.store.get_if_exists(&meta.key).await?;
                Ok::<_, StoreError>(found.map(|found| (meta.key, found)))
            })
            .buffered(LIST_READ_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut locks = Vec::new();
        for read in reads {
            let Some((lock_key, found)) = read? else {
                continue;
            };
            let state_key = StateKey::from_lock_key(&lock_key).and_then(Result::ok);
            let state = match LockInfo::decode(&found.body) {
                Ok(info) => match &state_key {
                    Some(k) => LockState::Held(HeldLock {
                        key: k.clone(),
                        info,
                        version: found.meta.version,
                    }),
                    None => LockState::Unreadable {
                        raw: found.body,
                        version: found.meta.version,
                        reason: "the lock key does not name a valid state key".to_owned(),
                    },
                },
                Err(e) => LockState::Unreadable {
                    raw: found.body,
                    version: found.meta.version,
                    reason: e.to_string(),
                },
            };
            locks.push(ListedLock {
                lock_key,
                state_key,
                state,
                last_modified: found.meta.last_modified,
            });
        }
        Ok(locks)
    }

    async fn delete_lock_object(
        &self,
        key: &StateKey,
        version: Version,
    ) -> Result<DeleteMethod, LockError> {
        let lock_key = key.lock_key();
        if !self.store.capabilities().conditional_delete {
            let reason = self.fallback_reason("the store does not support conditional delete");
            return self.plain_delete(key, &version, &reason).await;
        }
        match self
            .store
            .delete(&lock_key, DeleteMode::IfVersion(version.clone()))
            .await
        {
            Ok(()) => Ok(DeleteMethod::Conditional),
            Err(StoreError::Precondition { .. }) => Err(LockError::Changed { key: key.clone() }),
            Err(StoreError::NotFound { .. }) => Err(LockError::NotLocked { key: key.clone() }),
            Err(StoreError::NotImplemented { .. }) => {
                let reason = self
                    .fallback_reason("the store refused a conditional delete as not implemented");
                self.plain_delete(key, &version, &reason).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Why a release falls back, in the store's own terms where it knows them (a 501, an
    /// ignored condition), so the operator sees which quirk forced it; else `otherwise`.
    fn fallback_reason(&self, otherwise: &str) -> String {
        self.store
            .quirks()
            .into_iter()
            .find(|q| {
                matches!(
                    q,
                    Quirk::ConditionalDeleteNotImplemented | Quirk::ConditionalDeleteIgnored
                )
            })
            .map_or_else(|| otherwise.to_owned(), |q| q.to_string())
    }

    /// The release of a store without a working conditional delete: Terraform's own
    /// sequence (read, compare, delete), with the lock's version checked once more right
    /// before the delete so that the window in which a replaced lock could be removed is
    /// one round trip, not the whole release.
    async fn plain_delete(
        &self,
        key: &StateKey,
        version: &Version,
        reason: &str,
    ) -> Result<DeleteMethod, LockError> {
        let lock_key = key.lock_key();
        match self.store.head(&lock_key).await {
            Ok(meta) if meta.version == *version => {}
            Ok(_) => return Err(LockError::Changed { key: key.clone() }),
            Err(StoreError::NotFound { .. }) => {
                return Err(LockError::NotLocked { key: key.clone() });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(%lock_key, reason, "deleting the lock object unconditionally");
        self.store
            .delete(&lock_key, DeleteMode::Unconditional)
            .await?;
        Ok(DeleteMethod::Plain {
            reason: reason.to_owned(),
        })
    }
}
