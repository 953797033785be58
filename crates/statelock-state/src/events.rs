//! What the state service reports to its front after each change: the hook through which
//! every front records the same audit lines and metrics, since the events are emitted here,
//! once, and not by each front after its own call.
//!
//! The hook runs inside the request that caused the event, before it is answered, so a front
//! may read the caller from its request context (the `http` front's audit line names the
//! principal that way) and an audit trail kept in the store holds the event before the client
//! hears of it.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::DeleteMethod;

/// One change made by the state service, or one lock request finished.
#[derive(Debug)]
pub enum StateEvent<'a> {
    /// A lock request ended, granted or not, after waiting this long.
    LockWaited { key: &'a StateKey, waited: Duration },
    /// A lock was taken; `record` is what the `.tflock` object holds now.
    Locked {
        key: &'a StateKey,
        record: &'a LockInfo,
    },
    /// A lock idle for longer than the TTL was replaced by `record` (a `Locked` follows).
    TookOver {
        key: &'a StateKey,
        previous: &'a LockInfo,
        record: &'a LockInfo,
        idle: Duration,
        ttl: Duration,
    },
    /// A lock was removed: released by its holder's ID, or `forced` (a force-unlock).
    Unlocked {
        key: &'a StateKey,
        id: &'a str,
        method: &'a DeleteMethod,
        forced: bool,
    },
    /// A state was stored (identical rewrites store nothing and report nothing).
    Written {
        key: &'a StateKey,
        lock_id: Option<&'a str>,
        /// The serial of the state replaced, if any (a write of a tagged state does not read
        /// the old body).
        serial_before: Option<u64>,
        after: &'a [u8],
    },
    /// A state was deleted; `content` is what it held.
    Deleted {
        key: &'a StateKey,
        lock_id: Option<&'a str>,
        content: &'a [u8],
    },
    /// A state was rolled back to version `to` (a server history or S3 version ID).
    RolledBack {
        key: &'a StateKey,
        lock_id: &'a str,
        to: &'a str,
        before: Option<&'a [u8]>,
        after: &'a [u8],
    },
}

/// Where a front records the service's events (audit trail, metrics).
#[async_trait]
pub trait StateEvents: Send + Sync + Debug {
    async fn record(&self, event: StateEvent<'_>);
}

/// For fronts that record nothing (the operator CLI prints its own report).
#[derive(Debug, Default)]
pub struct NoEvents;

#[async_trait]
impl StateEvents for NoEvents {
    async fn record(&self, _event: StateEvent<'_>) {}
}
