//! Live updates: `GET /ui/events` is a stream of server-sent events; each `change` event
//! tells an open page to fetch itself again.
//!
//! Why server-sent events and not short polling: a change made through this server (a lock
//! taken or released, a write, a rollback, a takeover) reaches every open page at once, from
//! the state service's own events ([`Changes::notify`], called by `crate::events`), with no
//! request per page per second. Changes made elsewhere (Terraform's `backend "s3"` straight
//! on the bucket, another replica, a lock request joining the queue) have no event here, so
//! each stream also looks at the store every [`POLL_INTERVAL`] (one listing, plus one read
//! per locked state) and sends `change` when what it sees differs. The browser's
//! `EventSource` reconnects by itself, and the pages work without it (reload by hand).
//! Streams end when the server begins to shut down, so they never hold up a graceful stop.

use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use statelock_state::LockEntry;
use tokio::sync::{broadcast, watch};

use crate::app::AppState;

/// How often an open stream looks at the store for changes made elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

/// The signal from the state service's events to the open pages, and the shutdown that
/// ends their streams.
#[derive(Clone, Debug)]
pub struct Changes {
    tx: broadcast::Sender<()>,
    stopping: Arc<watch::Sender<bool>>,
}

impl Default for Changes {
    fn default() -> Changes {
        Changes {
            tx: broadcast::channel(16).0,
            stopping: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Changes {
    /// Something changed through this server.
    pub fn notify(&self) {
        // No open page: nobody to tell.
        let _ = self.tx.send(());
    }

    /// Ends every stream; the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }
}

struct Stream {
    app: AppState,
    changes: broadcast::Receiver<()>,
    stopping: watch::Receiver<bool>,
    tick: tokio::time::Interval,
    seen: Option<u64>,
}

/// `GET /ui/events`.
pub fn events(app: &AppState) -> Response {
    let changes = &app.ui().changes;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Stream {
        app: app.clone(),
        changes: changes.tx.subscribe(),
        stopping: changes.stopping.subscribe(),
        tick,
        seen: None,
    };
    // The caller scope (who may read what) is not needed: the event carries no data, and the
    // page it triggers is fetched, and authorised, as any other request.
    let stream = futures::stream::unfold(start, |mut s| async move {
        loop {
            if *s.stopping.borrow() {
                return None;
            }
            tokio::select! {
                received = s.changes.recv() => match received {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The next poll must not report the same change again.
                        s.seen = fingerprint(&s.app).await.or(s.seen);
                        return Some((Ok::<_, Infallible>(Event::default().event("change").data("state")), s));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = s.tick.tick() => {
                    let now = fingerprint(&s.app).await;
                    let changed = s.seen.is_some() && now.is_some() && now != s.seen;
                    if now.is_some() {
                        s.seen = now;
                    }
                    if changed {
                        return Some((Ok(Event::default().event("change").data("store")), s));
                    }
                }
                _ = s.stopping.changed() => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A digest of what the pages show that can change behind this server's back: the states'
/// sizes and times, who holds each lock, and who waits. `None` when the store cannot be read
/// (then nothing is reported until it can).
async fn fingerprint(app: &AppState) -> Option<u64> {
    let entries = app.states().list_states("").await.ok()?;
    let mut h = DefaultHasher::new();
    for e in &entries {
        e.key.as_str().hash(&mut h);
        if let Some(o) = &e.object {
            o.size.hash(&mut h);
            o.last_modified.hash(&mut h);
        }
        match &e.lock {
            None => 0u8.hash(&mut h),
            Some(LockEntry::Held(info)) => info.id.hash(&mut h),
            Some(LockEntry::Unreadable(r) | LockEntry::Failed(r)) => r.hash(&mut h),
        }
    }
    for (key, waiters) in app.states().lock_queue() {
        key.as_str().hash(&mut h);
        for w in waiters {
            w.id.hash(&mut h);
        }
    }
    Some(h.finish())
}
