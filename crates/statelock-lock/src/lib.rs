//! S3-native state locking over any statelock store (spec §2.3–2.6).
//!
//! A lock is the object `<state key>.tflock` holding the encoded [`statelock_core::LockInfo`],
//! created with a create-if-absent put. [`LockClient`] acquires, inspects, lists, releases
//! and breaks such locks; the records and keys are exactly those of Terraform's
//! `backend "s3"` with `use_lockfile = true`, so statelock and Terraform exclude each other.
//!
//! During a migration from DynamoDB locking a [`SecondaryLock`] can be attached: it is taken
//! after the `.tflock` lock (which is rolled back if it fails), released with it, and told
//! about every state write, as Terraform does with both `use_lockfile` and `dynamodb_table`.
//!
//! This crate knows the lock protocol and nothing about HTTP or the CLI.

mod client;
mod error;
pub mod fence;
mod secondary;
mod takeover;
mod who;

pub use client::{
    Acquired, Broken, DeleteMethod, HeldLock, ListedLock, LockClient, LockState, Released,
};
pub use error::LockError;
pub use fence::FenceError;
pub use secondary::{SecondaryError, SecondaryLock};
pub use takeover::{Acquisition, fence_fresh_for, takeover_settle};
pub use who::{hostname, user_at_host};
