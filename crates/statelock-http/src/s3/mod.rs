//! The S3-compatible front: Terraform's and OpenTofu's own `backend "s3"` with
//! `use_lockfile = true` pointed at statelock, on a listener of its own.
//!
//! One bucket (named by `HttpConfig::bucket`, the name already in every lock record's `Path`)
//! holds the states and their `<key>.tflock` locks. A PutObject of a `.tflock` key is a lock
//! acquire through the same wait and takeover path as the `http` front, a DeleteObject of it a
//! release; a PutObject of any other key is a state write through `StateService` (the
//! stale-write guard and the history apply), and so is a completed multipart upload of one.
//! `.statelock/` is neither listed nor reachable.
//!
//! [`s3s`] parses the protocol, routes operations and, when it verifies signatures, decodes
//! aws-chunked bodies and checks a signed payload's SHA-256. Everything else about a body
//! (the `x-amz-checksum-*` values in headers or trailers, `Content-MD5`, the size limit, and
//! aws-chunked decoding when signatures are not verified) is in `body`.
//!
//! Modules:
//! - `front`: the hyper service and how requests are authenticated (see [`S3Front`]).
//! - `access`: principals over SigV4 (derived secrets) and the grants each operation needs.
//! - `service`: the [`s3s::S3`] implementation, one method per operation, dispatching to
//!   `objects`, `locks` and `list`.
//! - `hosts`: virtual-hosted-style `Host` names (`<bucket>.localhost`).
//! - `keys`: bucket and object-key rules.
//! - `body`: reading and verifying a PutObject or UploadPart body.
//! - `objects`: HEAD, GET, PUT and DELETE of states (and reads of lock objects).
//! - `locks`: PUT and DELETE of `.tflock` objects through the lock protocol.
//! - `multipart`: Create/UploadPart/Complete/Abort/ListParts of states, written at Complete.
//! - `uploads`: where open uploads live (`.statelock/uploads/`) and how abandoned ones expire.
//! - `list`: ListObjects v1 and v2.
//! - `errors`: statelock's errors as S3 error codes.

mod access;
mod body;
mod errors;
mod front;
mod hosts;
mod keys;
mod list;
mod locks;
mod multipart;
mod objects;
mod service;
mod uploads;

pub use front::{S3Front, s3_service};
