//! The state rules of statelock's fronts (the `http` backend and the operator CLI today; the
//! S3 front and web UI to come), over the storage port and with no I/O of their own beyond
//! it:
//!
//! - [`history`]: every accepted state write kept as a version under `.statelock/history/`,
//!   recorded *before* the state it records replaces the old one, with retention; the read
//!   side (listing, metadata, bodies) that `statelock state history` uses on a bare bucket.
//! - [`guard`]: the stale-write guard (spec §5.2), which refuses an older or unrelated state.
//! - [`service`]: [`StateService`], which reads, writes and deletes states with fencing, the
//!   guard and the history applied once, for every front.
//!
//! Knows nothing about HTTP, the command line or how a request is authorised.

pub mod guard;
pub mod history;
pub mod service;

pub use guard::StateHeader;
pub use service::{StateError, StateRules, StateService, Written};
