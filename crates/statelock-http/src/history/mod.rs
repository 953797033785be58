//! State history: every accepted state write is also kept as a version under
//! `.statelock/history/<state key>/`, apart from the states so S3 lifecycle rules can target it.
//!
//! Layout (see `layout`): per version two objects,
//! `<id>.tfstate` (the exact bytes written) and `<id>.meta.json` ([`VersionMeta`]), where `<id>` is
//! `<UTC time>-<serial>-<random>`, fixed width, so one prefix listing lists the history in order.
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

use std::net::SocketAddr;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_store::{
    DeleteMode, ObjectMeta, ObjectStoreExt, PutMode, PutOptions, StoreError, StoreResult,
};

use crate::app::AppState;
use crate::guard::StateHeader;

pub use layout::{VersionId, check_server_key};
pub use meta::{Kind, VersionMeta, md5_hex};

/// Metadata objects read at once when listing versions.
const META_READ_CONCURRENCY: usize = 16;

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

/// One version found by a listing.
#[derive(Clone, Debug)]
struct Listed {
    id: VersionId,
    size: u64,
    has_meta: bool,
}

/// The versions of `key` in recording order (oldest first), and metadata objects whose body is
/// missing.
async fn scan(app: &AppState, key: &StateKey) -> StoreResult<(Vec<Listed>, Vec<VersionId>)> {
    let prefix = layout::state_prefix(key);
    let objects = app.store().list_all(&prefix).await?;
    let mut bodies: Vec<(VersionId, u64)> = Vec::new();
    let mut metas: Vec<VersionId> = Vec::new();
    for object in objects {
        // Listings of `a/` also hold the history of `a/b`; only direct children are ours.
        let Some(rest) = object.key.strip_prefix(&prefix) else {
            continue;
        };
        if rest.contains('/') {
            continue;
        }
        if let Some(id) = rest
            .strip_suffix(layout::BODY_SUFFIX)
            .and_then(VersionId::parse)
        {
            bodies.push((id, object.size));
        } else if let Some(id) = rest
            .strip_suffix(layout::META_SUFFIX)
            .and_then(VersionId::parse)
        {
            metas.push(id);
        }
    }
    bodies.sort();
    metas.sort();
    let listed = bodies
        .into_iter()
        .map(|(id, size)| Listed {
            has_meta: metas.binary_search(&id).is_ok(),
            id,
            size,
        })
        .collect::<Vec<_>>();
    let orphans = metas
        .into_iter()
        .filter(|m| listed.binary_search_by(|l| l.id.cmp(m)).is_err())
        .collect();
    Ok((listed, orphans))
}

/// Writes `bytes` as the state at `key` in `mode`, recording the version first (see the module
/// doc for the order and why). Errors are those of the failing put, history or state.
pub async fn put_state(
    app: &AppState,
    key: &StateKey,
    bytes: Bytes,
    mode: PutMode,
    author: Author,
) -> StoreResult<ObjectMeta> {
    let before = match scan(app, key).await {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(%key, %e, "cannot list the state's history; recording without it");
            None
        }
    };
    let (id, meta) = new_version(before.as_ref().map(|(l, _)| l.as_slice()), &bytes, author);
    record(app, key, &id, &meta, bytes.clone())
        .await
        .inspect_err(|e| {
            tracing::error!(%key, %e, "could not record the history version; the state write is refused");
        })?;
    match app
        .store()
        .put(key.as_str(), bytes.clone(), PutOptions::json(mode))
        .await
    {
        Ok(written) => {
            tracing::info!(%key, version = %id, kind = ?meta.kind, "history version recorded");
            app.locks().state_written(key, &bytes).await;
            if let Some((mut listed, orphans)) = before {
                listed.push(Listed {
                    id,
                    size: meta.size,
                    has_meta: true,
                });
                prune(app, key, &listed, &orphans).await;
            }
            Ok(written)
        }
        Err(e @ (StoreError::Precondition { .. } | StoreError::AlreadyExists { .. })) => {
            // Definitely not written: the version would record a state that never existed.
            remove(app, key, &id).await;
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
    app: &AppState,
    key: &StateKey,
    bytes: Bytes,
    author: Author,
) -> StoreResult<VersionId> {
    let listed = scan(app, key).await.ok().map(|(l, _)| l);
    let (id, meta) = new_version(listed.as_deref(), &bytes, author);
    record(app, key, &id, &meta, bytes).await?;
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
    app: &AppState,
    key: &StateKey,
    id: &VersionId,
    meta: &VersionMeta,
    bytes: Bytes,
) -> StoreResult<()> {
    let json = serde_json::to_vec(meta).expect("version metadata always serialises");
    app.store()
        .put(
            &id.meta_key(key),
            Bytes::from(json),
            PutOptions::json(PutMode::Create),
        )
        .await?;
    app.store()
        .put(&id.body_key(key), bytes, PutOptions::json(PutMode::Create))
        .await?;
    Ok(())
}

/// Removes one version, best effort: body first, so a half-removed version is an orphaned
/// metadata object, never a version that pretends to be complete.
async fn remove(app: &AppState, key: &StateKey, id: &VersionId) {
    for object in [id.body_key(key), id.meta_key(key)] {
        if let Err(e) = app.store().delete(&object, DeleteMode::Unconditional).await {
            tracing::warn!(%key, %object, %e, "could not remove a history object");
        }
    }
}

/// Drops versions beyond the retention setting, oldest first, and orphaned metadata older than
/// the oldest version kept.
async fn prune(app: &AppState, key: &StateKey, listed: &[Listed], orphans: &[VersionId]) {
    let keep = app.config().history_retention;
    if keep == 0 || listed.len() <= keep {
        return;
    }
    let cutoff = &listed[listed.len() - keep].id;
    for old in &listed[..listed.len() - keep] {
        remove(app, key, &old.id).await;
    }
    for orphan in orphans.iter().filter(|o| *o < cutoff) {
        remove(app, key, orphan).await;
    }
    tracing::info!(%key, pruned = listed.len() - keep, keep, "history pruned");
}

/// Every version of `key`, newest first, with its metadata.
pub async fn list(app: &AppState, key: &StateKey) -> StoreResult<Vec<VersionMeta>> {
    let (listed, _) = scan(app, key).await?;
    let reads = stream::iter(listed.into_iter().rev())
        .map(|l| async move {
            let stored = if l.has_meta {
                app.store().get_if_exists(&l.id.meta_key(key)).await?
            } else {
                None
            };
            let parsed = stored.and_then(|g| serde_json::from_slice::<VersionMeta>(&g.body).ok());
            Ok::<_, StoreError>(parsed.unwrap_or_else(|| VersionMeta {
                id: l.id.to_string(),
                kind: Kind::Unknown,
                time: l.id.time().to_rfc3339(),
                who: "unknown".to_owned(),
                serial: Some(l.id.serial),
                lineage: None,
                size: l.size,
                md5: None,
                lock_id: None,
            }))
        })
        .buffered(META_READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    reads.into_iter().collect()
}

/// The body of version `id` of `key`, `None` if there is no such version.
pub async fn body(app: &AppState, key: &StateKey, id: &VersionId) -> StoreResult<Option<Bytes>> {
    Ok(app
        .store()
        .get_if_exists(&id.body_key(key))
        .await?
        .map(|g| g.body))
}
