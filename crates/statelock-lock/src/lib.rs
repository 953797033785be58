//! S3-native state locking over any statelock store (spec §2.3–2.6).
//!
//! A lock is the object `<state key>.tflock` holding the encoded [`statelock_core::LockInfo`],
//! created with a create-if-absent put. [`LockClient`] acquires, inspects, lists, releases
//! and breaks such locks; the records and keys are exactly those of Terraform's
//! `backend "s3"` with `use_lockfile = true`, so statelock and Terraform exclude each other.
//!
//! This crate knows the lock protocol and nothing about HTTP or the CLI.

mod client;
mod error;
mod who;

pub use client::{
    Acquired, Broken, DeleteMethod, HeldLock, ListedLock, LockClient, LockState, Released,
};
pub use error::LockError;
pub use who::{hostname, user_at_host};
