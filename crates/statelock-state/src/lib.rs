//! The state rules of statelock's fronts (the `http` backend, the S3 front, the web UI and
//! the operator CLI), over the storage port and with no I/O of their own beyond it:
//!
//! - [`history`]: every accepted state write kept as a version under `.statelock/history/`,
//!   recorded *before* the state it records replaces the old one, with retention; the read
//!   side (listing, metadata, bodies) that `statelock state history` uses on a bare bucket.
//! - [`listing`]: a store's states with their lock holders.
//! - [`versions`]: a state's versions from both sources (server history, S3 object versions)
//!   and one version's body by its ID.
//! - [`guard`]: the stale-write guard (spec §5.2), which refuses an older or unrelated state.
//! - [`service`]: [`StateService`], which reads, writes and deletes states with fencing, the
//!   guard and the history applied once, for every front, and takes and removes locks
//!   (waiting in line, taking over stuck locks).
//! - [`lock_policy`], [`lock_queue`]: how long a lock request may wait and how often it looks;
//!   the per-replica first-come-first-served queue of waiting requests.
//! - [`events`]: the hook through which each front records the service's changes (audit
//!   trail, metrics).
//!
//! Knows nothing about HTTP, the command line or how a request is authorised.

mod breakage;
pub mod events;
pub mod guard;
pub mod history;
pub mod listing;
pub mod lock_policy;
pub mod lock_queue;
pub mod service;
pub mod versions;

pub use events::{NoEvents, StateEvent, StateEvents};
pub use guard::StateHeader;
pub use listing::{LockEntry, StateEntry};
pub use lock_policy::{DEFAULT_LOCK_POLL_INTERVAL, LockPolicy, MAX_LOCK_WAIT, parse_lock_wait};
pub use lock_queue::Waiter;
pub use service::{
    Expect, Fence, LockRefused, LockRelease, LockRequest, PlannedRollback, ROLLBACK_OPERATION,
    RecordIn, RollbackError, RollbackOutcome, RolledBack, StateError, StateRules, StateService,
    Unlock, Unlocked, Written, is_scratch_key,
};
