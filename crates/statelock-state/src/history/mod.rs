//! State history: every accepted state write is also kept as a version under
//! `.statelock/history/<state key>/`, apart from the states so S3 lifecycle rules can target it.
//!
//! Layout (see `layout`): a version is one object, `<id>.tfstate`, holding the exact bytes
//! written with its [`VersionMeta`] as object metadata (`tag`); `<id>` is
//! `<UTC time>-<serial>-<random>`, fixed width, so one prefix listing lists the history in
//! order. Versions written by earlier releases, and new ones whose metadata does not fit in
//! object metadata, keep it in a second object `<id>.meta.json` beside the body; both layouts
//! are read alike. Reading it (`read`) needs only a store, so `statelock state history` uses
//! the same code on a bucket with no server running.
//!
//! # Crash invariant: no accepted version is ever lost
//!
//! A state write goes: the version's put, then the state's compare-and-swap. The state can
//! only change after its version is durable, so whatever crashes or fails, every state that
//! was ever accepted has its version. The reverse does not hold: a version may exist for a
//! write that was *attempted* but not accepted, when the process died between the version put
//! and the swap, or the swap failed ambiguously (an error that may have landed). Such a version
//! is still a faithful copy of a body that passed fencing and the stale-write guard; it is never
//! removed, because it may well be the accepted one. When the swap is definitely refused (the
//! state changed under it) the version is removed again, best effort.
//! - If the history put fails, the state write is refused and the state is untouched.
//! - A one-object version has its metadata atomically. In the two-object layout the metadata
//!   is put first: a body without it (a crash during pruning) is listed with kind `unknown` and
//!   what the key says; metadata without a body is not a version and is pruned later.
//!
//! # Order without a listing
//!
//! Time in the ID is made strictly increasing per state, so replicas with skewed clocks still
//! list in write order. The state's tag names the version that recorded it, so a write of a
//! tagged state takes an ID after that one and lists nothing. A write with no tag to go by (a
//! new state, one written by another tool or an older release) lists the history while its
//! version is put, and if the listing holds a later ID (this replica's clock is behind) records
//! the version again after it and removes the early copy, before the state is touched.
//! Snapshots (before a delete, at a lock takeover) list the history as before.
//!
//! Retention keeps the newest `history_retention` versions per state (0: all). The tag counts
//! versions since the last prune; every [`prune_every`] writes a prune runs in the background
//! (`prune`), so a history may briefly hold up to `prune_every - 1` versions more. Pruning
//! failures are logged and never fail a write.

mod layout;
mod meta;
mod prune;
mod read;
mod tag;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_store::{
    DeleteMode, ObjectMeta, ObjectStore, PutMode, PutOptions, StoreError, StoreResult,
};

pub use layout::{
    BODY_SUFFIX, HISTORY_PREFIX, MAX_SERVER_KEY_LEN, MAX_SERVER_KEY_SEGMENT_LEN, META_SUFFIX,
    RESERVED_PREFIX, ServerKeyError, VersionId, check_server_key, state_prefix,
};
pub use meta::{Kind, VersionMeta, md5_hex};
pub use prune::{Pruner, prune_every};
pub use read::{body, latest, list};
pub use tag::{Incoming, StateTag};

use read::Listed;

/// Versions kept per state unless configured otherwise (`--history-retention`).
pub const DEFAULT_RETENTION: usize = 100;

/// Who made a write and under which lock, for the version's metadata.
#[derive(Clone, Debug)]
pub struct Author {
    pub kind: Kind,
    pub who: String,
    pub lock_id: Option<String>,
}

impl Author {
    /// The author of a client write: the lock holder's `Who` when the write is made under
    /// the lock (as the fence found it), else the client's address, else `unknown`.
    pub fn of_write(kind: Kind, holder: Option<&LockInfo>, client: Option<SocketAddr>) -> Author {
        let who = holder
            .map(|h| h.who.clone())
            .filter(|who| !who.is_empty())
            .or_else(|| client.map(|c| c.to_string()))
            .unwrap_or_else(|| "unknown".to_owned());
        Author {
            kind,
            who,
            lock_id: holder.map(|h| h.id.clone()),
        }
    }
}

/// What a write knows of the state it replaces, from that state's tag.
#[derive(Clone, Debug, Default)]
pub struct Prior {
    /// The version that recorded the stored state; `None` when there is no state, or it
    /// carries no tag or no history version (then the write lists the history).
    pub version: Option<VersionId>,
    /// Versions recorded since the history was last pruned.
    pub unpruned: u32,
}

impl Prior {
    /// What the tag in a stored object's metadata says, if it has one.
    pub fn of(stored: Option<&ObjectMeta>) -> Prior {
        stored
            .and_then(|m| StateTag::from_metadata(&m.metadata, m.size))
            .map(|tag| Prior {
                version: tag.history,
                unpruned: tag.unpruned,
            })
            .unwrap_or_default()
    }
}

/// One recorded version: its ID, and whether it took the two-object layout.
struct Recorded {
    id: VersionId,
    meta_object: bool,
}

/// Writes `incoming` as the state at `key` with `options`, recording the version first (see
/// the module doc for the order and why), tagged; then, when the tag's count says so, prunes
/// to the newest `retention` versions (0: all) in the background. `before_swap` runs after
/// the version is stored and right before the state's put (the writer's last check, e.g. a
/// second fence read); when it fails, the version is removed and nothing else is written.
/// Errors are those of `before_swap` or of the failing put, history or state.
#[allow(clippy::too_many_arguments)]
pub async fn write_state<E: From<StoreError>>(
    store: &Arc<dyn ObjectStore>,
    pruner: &Arc<Pruner>,
    retention: usize,
    key: &StateKey,
    incoming: &Incoming,
    mut options: PutOptions,
    author: Author,
    prior: &Prior,
    before_swap: impl Future<Output = Result<(), E>>,
) -> Result<ObjectMeta, E> {
    if crate::breakage::active(crate::breakage::Breakage::HistoryAfterState) {
        // A deliberately broken test build (see `breakage`): the state lands before the
        // version that records it, which the fault run's checker must catch.
        before_swap.await?;
        let written = store
            .put(key.as_str(), incoming.bytes.clone(), options)
            .await?;
        let id = next_id(prior.version.as_ref(), serial_of(incoming));
        let meta = new_meta(&id, incoming, author);
        record(&**store, key, &id, &meta, incoming.bytes.clone()).await?;
        return Ok(written);
    }
    let id = next_id(prior.version.as_ref(), serial_of(incoming));
    let meta = new_meta(&id, incoming, author.clone());
    let recording = record(&**store, key, &id, &meta, incoming.bytes.clone());
    let (recorded, listed) = if prior.version.is_some() {
        (recording.await, None)
    } else {
        let (recorded, listed) = futures::future::join(recording, read::scan(&**store, key)).await;
        let listed = listed
            .inspect_err(|e| tracing::warn!(%key, %e, "cannot list the state's history; recording without it"))
            .ok();
        (recorded, listed)
    };
    let mut recorded = recorded.inspect_err(|e| {
        tracing::error!(%key, %e, "could not record the history version; the state write is refused");
    })?;
    let latest_listed = listed
        .iter()
        .flat_map(|(listed, _)| listed.iter().map(|l| &l.id))
        .filter(|listed| **listed != recorded.id)
        .max();
    if let Some(latest) = latest_listed.filter(|latest| **latest >= recorded.id) {
        // This replica's clock is behind the one that recorded `latest`: record again after
        // it, so the history lists in write order, and only then drop the early copy.
        let id = next_id(Some(latest), serial_of(incoming));
        let meta = new_meta(&id, incoming, author);
        let again = record(&**store, key, &id, &meta, incoming.bytes.clone())
            .await
            .inspect_err(|e| {
                tracing::error!(%key, %e, "could not record the history version; the state write is refused");
            })?;
        remove(&**store, key, &recorded.id, recorded.meta_object).await;
        recorded = again;
    }
    let due = retention > 0
        && match &listed {
            // The listing counted them: prune only a history over the limit.
            Some((listed, _)) => listed.len() >= retention,
            None => prior.unpruned.saturating_add(1) >= prune_every(retention),
        };
    if let Err(e) = before_swap.await {
        // Definitely not written: the version would record a state that never existed.
        remove(&**store, key, &recorded.id, recorded.meta_object).await;
        return Err(e);
    }
    let unpruned = if due { 0 } else { prior.unpruned + 1 };
    if let Some(tag) =
        StateTag::of(incoming, Some(recorded.id.clone()), unpruned).and_then(|t| t.to_metadata())
    {
        options.metadata.extend(tag);
    }
    match store
        .put(key.as_str(), incoming.bytes.clone(), options)
        .await
    {
        Ok(written) => {
            tracing::info!(%key, version = %recorded.id, kind = ?meta.kind, "history version recorded");
            if due {
                pruner.start(Arc::clone(store), key, retention);
            }
            Ok(written)
        }
        Err(e @ (StoreError::Precondition { .. } | StoreError::AlreadyExists { .. })) => {
            // Definitely not written: the version would record a state that never existed.
            remove(&**store, key, &recorded.id, recorded.meta_object).await;
            Err(e.into())
        }
        Err(e) => {
            tracing::warn!(%key, version = %recorded.id, %e, "state write failed ambiguously; its history version is kept");
            Err(e.into())
        }
    }
}

/// Records `bytes`, the state `key` had, as a version of `kind` without changing the state:
/// before a delete, or when a lock is taken over.
pub async fn record_snapshot(
    store: &dyn ObjectStore,
    key: &StateKey,
    bytes: Bytes,
    author: Author,
) -> StoreResult<VersionId> {
    let listed = read::scan(store, key).await.ok().map(|(l, _)| l);
    let last = listed.as_ref().and_then(|l| l.last()).map(|l| &l.id);
    let incoming = Incoming::new(bytes);
    let id = next_id(last, serial_of(&incoming));
    let meta = new_meta(&id, &incoming, author);
    record(store, key, &id, &meta, incoming.bytes).await?;
    Ok(id)
}

fn serial_of(incoming: &Incoming) -> Option<u64> {
    incoming.header.as_ref().and_then(|h| h.serial)
}

/// The metadata of version `id` holding `incoming`.
fn new_meta(id: &VersionId, incoming: &Incoming, author: Author) -> VersionMeta {
    VersionMeta {
        id: id.to_string(),
        kind: author.kind,
        time: id.time().to_rfc3339(),
        who: author.who,
        serial: serial_of(incoming),
        lineage: incoming.header.as_ref().and_then(|h| h.lineage.clone()),
        size: incoming.bytes.len() as u64,
        md5: Some(incoming.md5.clone()),
        lock_id: author.lock_id,
    }
}

/// A new ID for a version of `serial`, later than `last` (the newest version known) even if
/// this replica's clock is behind the one that recorded it.
fn next_id(last: Option<&VersionId>, serial: Option<u64>) -> VersionId {
    let mut id = VersionId::new(Timestamp::now(), serial.unwrap_or(0));
    if let Some(last) = last
        && (id.unix_secs, id.nanos) <= (last.unix_secs, last.nanos)
    {
        (id.unix_secs, id.nanos) = match last.nanos + 1 {
            1_000_000_000 => (last.unix_secs + 1, 0),
            n => (last.unix_secs, n),
        };
    }
    id
}

/// One put of the body with its metadata attached; when the metadata does not fit, the
/// two-object layout: metadata first, then the body, since a body is the version and must
/// not exist without its metadata except after a crash while pruning.
async fn record(
    store: &dyn ObjectStore,
    key: &StateKey,
    id: &VersionId,
    meta: &VersionMeta,
    bytes: Bytes,
) -> StoreResult<Recorded> {
    let options = PutOptions::json(PutMode::Create);
    if let Some(attached) = tag::version_metadata(meta) {
        store
            .put(&id.body_key(key), bytes, options.with_metadata(attached))
            .await?;
        return Ok(Recorded {
            id: id.clone(),
            meta_object: false,
        });
    }
    let json = serde_json::to_vec(meta).expect("version metadata always serialises");
    store
        .put(&id.meta_key(key), Bytes::from(json), options.clone())
        .await?;
    store.put(&id.body_key(key), bytes, options).await?;
    Ok(Recorded {
        id: id.clone(),
        meta_object: true,
    })
}

/// Removes one version, best effort: body first, so a half-removed two-object version is an
/// orphaned metadata object, never a version that pretends to be complete.
async fn remove(store: &dyn ObjectStore, key: &StateKey, id: &VersionId, meta_object: bool) {
    let objects = [
        Some(id.body_key(key)),
        meta_object.then(|| id.meta_key(key)),
    ];
    for object in objects.into_iter().flatten() {
        if let Err(e) = store.delete(&object, DeleteMode::Unconditional).await {
            tracing::warn!(%key, %object, %e, "could not remove a history object");
        }
    }
}

/// Drops versions beyond the retention setting, oldest first, and orphaned metadata older than
/// the oldest version kept.
async fn prune(
    store: &dyn ObjectStore,
    keep: usize,
    key: &StateKey,
    listed: &[Listed],
    orphans: &[VersionId],
) {
    if keep == 0 || listed.len() <= keep {
        return;
    }
    let cutoff = &listed[listed.len() - keep].id;
    for old in &listed[..listed.len() - keep] {
        remove(store, key, &old.id, old.has_meta).await;
    }
    for orphan in orphans.iter().filter(|o| *o < cutoff) {
        if let Err(e) = store
            .delete(&orphan.meta_key(key), DeleteMode::Unconditional)
            .await
        {
            tracing::warn!(%key, %e, "could not remove an orphaned history metadata object");
        }
    }
    tracing::info!(%key, pruned = listed.len() - keep, keep, "history pruned");
}
