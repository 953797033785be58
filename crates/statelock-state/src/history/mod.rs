//! State history: every accepted state write is also kept as a version under
//! `.statelock/history/<state key>/`, apart from the states so S3 lifecycle rules can target it.
//!
//! Layout (see `layout`): per version two objects,
//! `<id>.tfstate` (the exact bytes written) and `<id>.meta.json` ([`VersionMeta`]), where `<id>` is
//! `<UTC time>-<serial>-<random>`, fixed width, so one prefix listing lists the history in order.
//! Reading it (`read`) needs only a store, so `statelock state history` uses the same code on a
//! bucket with no server running.
//!
//! # Crash invariant: no accepted version is ever lost
//!
//! A state write goes: metadata put, body put, then the state's compare-and-swap. The state can
//! only change after its version's body is durable, so whatever crashes or fails, every state
//! that was ever accepted has its version. The reverse does not hold: a version may exist for a
//! write that was *attempted* but not accepted, when the process died between the body put and
//! the swap, or the swap failed ambiguously (an error that may have landed). Such a version is
//! still a faithful copy of a body that passed fencing and the stale-write guard; it is never
//! removed, because it may well be the accepted one. When the swap is definitely refused (the
//! state changed under it) the version is removed again, best effort.
//! - If the history put fails, the state write is refused and the state is untouched.
//! - A version is its body object; metadata is looked up beside it. A body without metadata
//!   (a crash during pruning) is listed with kind `unknown` and what the key says. Metadata
//!   without a body (a crash before the body put) is not a version and is pruned later.
//!
//! Time in the ID is made strictly increasing per state, from the listing read before each
//! write, so replicas with skewed clocks still list in write order.
//!
//! Retention keeps the newest `history_retention` versions per state (0: all), pruned after each
//! accepted write; pruning failures are logged and never fail the write.

mod layout;
mod meta;
mod read;

use std::net::SocketAddr;

use bytes::Bytes;
use statelock_core::state::StateHeader;
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_store::{
    DeleteMode, ObjectMeta, ObjectStore, PutMode, PutOptions, StoreError, StoreResult,
};

pub use layout::{
    BODY_SUFFIX, HISTORY_PREFIX, MAX_SERVER_KEY_LEN, MAX_SERVER_KEY_SEGMENT_LEN, META_SUFFIX,
    RESERVED_PREFIX, ServerKeyError, VersionId, check_server_key, state_prefix,
};
pub use meta::{Kind, VersionMeta, md5_hex};
pub use read::{body, list};

use read::{Listed, scan};

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

/// Writes `bytes` as the state at `key` with `options`, recording the version first (see the
/// module doc for the order and why), then keeps the newest `retention` versions (0: all).
/// Errors are those of the failing put, history or state.
pub async fn write_state(
    store: &dyn ObjectStore,
    retention: usize,
    key: &StateKey,
    bytes: Bytes,
    options: PutOptions,
    author: Author,
) -> StoreResult<ObjectMeta> {
    let before = match scan(store, key).await {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(%key, %e, "cannot list the state's history; recording without it");
            None
        }
    };
    let (id, meta) = new_version(before.as_ref().map(|(l, _)| l.as_slice()), &bytes, author);
    if crate::breakage::active(crate::breakage::Breakage::HistoryAfterState) {
        let written = store.put(key.as_str(), bytes.clone(), options).await?;
        record(store, key, &id, &meta, bytes).await?;
        return Ok(written);
    }
    record(store, key, &id, &meta, bytes.clone())
        .await
        .inspect_err(|e| {
            tracing::error!(%key, %e, "could not record the history version; the state write is refused");
        })?;
    match store.put(key.as_str(), bytes, options).await {
        Ok(written) => {
            tracing::info!(%key, version = %id, kind = ?meta.kind, "history version recorded");
            if let Some((mut listed, orphans)) = before {
                listed.push(Listed {
                    id,
                    size: meta.size,
                    has_meta: true,
                });
                prune(store, retention, key, &listed, &orphans).await;
            }
            Ok(written)
        }
        Err(e @ (StoreError::Precondition { .. } | StoreError::AlreadyExists { .. })) => {
            // Definitely not written: the version would record a state that never existed.
            remove(store, key, &id).await;
            Err(e)
        }
        Err(e) => {
            tracing::warn!(%key, version = %id, %e, "state write failed ambiguously; its history version is kept");
            Err(e)
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
    let listed = scan(store, key).await.ok().map(|(l, _)| l);
    let (id, meta) = new_version(listed.as_deref(), &bytes, author);
    record(store, key, &id, &meta, bytes).await?;
    Ok(id)
}

/// The ID and metadata of a new version holding `bytes`, after the versions `listed`.
fn new_version(
    listed: Option<&[Listed]>,
    bytes: &Bytes,
    author: Author,
) -> (VersionId, VersionMeta) {
    let header = StateHeader::parse(bytes).ok();
    let serial = header.as_ref().and_then(|h| h.serial);
    let id = next_id(listed, serial);
    let meta = VersionMeta {
        id: id.to_string(),
        kind: author.kind,
        time: id.time().to_rfc3339(),
        who: author.who,
        serial,
        lineage: header.and_then(|h| h.lineage),
        size: bytes.len() as u64,
        md5: Some(md5_hex(bytes)),
        lock_id: author.lock_id,
    };
    (id, meta)
}

/// A new ID for a version of `serial`, later than every version listed even if this
/// replica's clock is behind the one that wrote the last version.
fn next_id(listed: Option<&[Listed]>, serial: Option<u64>) -> VersionId {
    let mut id = VersionId::new(Timestamp::now(), serial.unwrap_or(0));
    if let Some(last) = listed.and_then(<[Listed]>::last)
        && (id.unix_secs, id.nanos) <= (last.id.unix_secs, last.id.nanos)
    {
        (id.unix_secs, id.nanos) = match last.id.nanos + 1 {
            1_000_000_000 => (last.id.unix_secs + 1, 0),
            n => (last.id.unix_secs, n),
        };
    }
    id
}

/// Metadata first, then the body: a body is the version, so it must not exist without its
/// metadata except after a crash while pruning.
async fn record(
    store: &dyn ObjectStore,
    key: &StateKey,
    id: &VersionId,
    meta: &VersionMeta,
    bytes: Bytes,
) -> StoreResult<()> {
    let json = serde_json::to_vec(meta).expect("version metadata always serialises");
    store
        .put(
            &id.meta_key(key),
            Bytes::from(json),
            PutOptions::json(PutMode::Create),
        )
        .await?;
    store
        .put(&id.body_key(key), bytes, PutOptions::json(PutMode::Create))
        .await?;
    Ok(())
}

/// Removes one version, best effort: body first, so a half-removed version is an orphaned
/// metadata object, never a version that pretends to be complete.
async fn remove(store: &dyn ObjectStore, key: &StateKey, id: &VersionId) {
    for object in [id.body_key(key), id.meta_key(key)] {
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
        remove(store, key, &old.id).await;
    }
    for orphan in orphans.iter().filter(|o| *o < cutoff) {
        remove(store, key, orphan).await;
    }
    tracing::info!(%key, pruned = listed.len() - keep, keep, "history pruned");
}
