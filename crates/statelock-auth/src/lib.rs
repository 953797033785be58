//! Who may use statelock's server, and for what: principals, their tokens (kept as SHA-256
//! digests) and grants of a permission on a key pattern, read from the principals file.
//!
//! Shared by every front that authenticates (the `http` backend, the S3 front) and by
//! `statelock token create`, which writes the file; knows nothing about how a request carries
//! its credentials.

pub mod grants;
pub mod principals;
pub mod token;

pub use grants::{Grant, KeyPattern, Permission};
pub use principals::{Principal, Principals, PrincipalsError, create_token};
pub use token::{TOKEN_PREFIX, TokenHash};
