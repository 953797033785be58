//! The object-store port and its adapters.
//!
//! - [`ObjectStore`]: get, head, put (`Overwrite`, `Create`, `Update(version)`), delete
//!   (unconditional or if the version still matches), paginated prefix listing, and object
//!   versions where the store keeps them; user metadata written atomically with the body
//!   ([`Metadata`], S3's `x-amz-meta-*`). Errors are typed ([`StoreError`]).
//! - Adapters: [`MemoryStore`] for tests, [`LocalStore`] (the embedded default, a directory),
//!   and `S3Store` (feature `s3`) for AWS and S3-compatible servers.
//! - [`probe_conditional_writes`]: checks on a scratch key that a store honours the
//!   conditional writes locking depends on; [`probe_store`] adds races, the delete-marker
//!   rule and checksum headers, for `statelock probe`.
//! - [`FaultyStore`]: wraps any store to add latency, errors and lost replies.
//! - `conformance` (feature `conformance`): the one test suite every adapter must pass.
//!
//! Adapters know nothing about Terraform, locks or JSON: they move bytes under keys, with
//! exact conditional-write semantics.

mod error;
mod fault;
mod key;
mod local;
mod memory;
mod metadata;
mod port;
mod probe;
mod probe_full;
#[cfg(feature = "s3")]
mod s3;
mod version_token;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{BoxError, StoreError, error_chain};
pub use fault::{Fault, FaultyStore, Hook, Op};
pub use key::{MAX_OBJECT_KEY_LEN, check_key, check_prefix};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use metadata::{MAX_METADATA_LEN, check_metadata};
pub use port::{
    BodyStream, Capabilities, DeleteMode, GetResult, GetStream, ListPage, Metadata, ObjectMeta,
    ObjectStore, ObjectStoreExt, ObjectVersion, Observation, PutMode, PutOptions, Quirk,
    StoreResult, Version,
};
pub use probe::{Need, PROBE_PREFIX, ProbeCheck, ProbeReport, probe_conditional_writes};
pub use probe_full::{ProbeOptions, probe_store};
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Store, ServerSideEncryption};
