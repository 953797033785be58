//! The exact formats that Terraform and OpenTofu put on the wire, with no I/O.
//!
//! - [`LockInfo`]: the lock record (spec §1), encoded byte for byte as Go's `encoding/json`
//!   writes it and decoded as leniently as Go reads it.
//! - [`Timestamp`]: the `Created` field, Go's `time.Time` JSON form (RFC 3339, trimmed nanoseconds).
//! - [`LockId`]: new lock IDs, 16 random bytes as 8-4-4-4-12 lower-case hex.
//! - [`StateKey`] and [`workspace_state_key`]: object keys of states and their `.tflock` locks (spec §2.1).
//! - [`state`]: state documents: header, summary, diff and the rollback rewrite (spec §5).
//! - [`parse_duration`]: durations as Terraform users write them (`30s`, `10m`, `1h30m`).
//!
//! Nothing here knows about stores, HTTP or async; every other crate builds on these types.

mod duration;
mod go_json;
mod keys;
mod lock_id;
mod lock_info;
pub mod state;
mod timestamp;

pub use duration::parse_duration;
pub use keys::{KeyError, LOCK_SUFFIX, MAX_KEY_LEN, StateKey, workspace_state_key};
pub use lock_id::LockId;
pub use lock_info::{LockInfo, LockInfoError};
pub use timestamp::{Timestamp, TimestampError};
