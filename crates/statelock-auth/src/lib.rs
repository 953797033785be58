//! Who may use statelock's server, and for what: principals, their tokens (kept as SHA-256
//! digests) and grants of a permission on a key pattern, read from the principals file.
//!
//! Shared by every front that authenticates (the `http` backend, the S3 front) and by
//! `statelock token create`, which writes the file; `s3_secrets` derives each principal's S3
//! secret from a server key. Knows nothing about how a request carries its credentials.

pub mod grants;
pub mod principals;
pub mod s3_secrets;
pub mod token;

pub use grants::{Grant, KeyPattern, Permission};
pub use principals::{Principal, Principals, PrincipalsError, create_token};
pub use s3_secrets::{S3KeyError, S3SecretKey, check_access_key};
pub use token::{TOKEN_PREFIX, TokenHash};
