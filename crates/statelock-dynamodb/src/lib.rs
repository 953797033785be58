//! The DynamoDB lock table of Terraform's and OpenTofu's `backend "s3"` with
//! `dynamodb_table` (spec §3), for migrating to S3-native `.tflock` locks.
//!
//! - [`LockTable`]: the table client. Lock items (`LockID` = `<bucket>/<key>`, `Info` = the
//!   lock record) are put with `attribute_not_exists(LockID)`, read with `ConsistentRead`, and
//!   deleted only while `Info` is unchanged (as OpenTofu does); digest items
//!   (`<bucket>/<key>-md5`, `Digest` = lower-case hex MD5 of the state) are read, put and
//!   deleted; [`LockTable::scan`] reads the whole table, page by page.
//! - [`TableItem`]: an item classified as a lock, a digest or something else.
//! - [`DynamoSecondary`]: the table as a [`statelock_lock::SecondaryLock`], for dual-lock mode.
//!
//! Items statelock writes carry two extra attributes, `WrittenBy = "statelock"` and `Written`
//! (RFC 3339). Terraform and OpenTofu read items with a projection of `LockID` and `Info` or
//! `Digest`, so they never see them, and their own puts replace the whole item, which drops
//! them: that is how `statelock migrate dynamodb usage` tells their writes from ours.

mod config;
mod error;
mod item;
mod secondary;
mod table;

pub use config::DynamoConfig;
pub use error::TableError;
pub use item::{
    ItemKind, TableItem, WRITTEN_BY_STATELOCK, digest_id, is_valid_digest, lock_id, md5_hex,
};
pub use secondary::DynamoSecondary;
pub use table::{LockItem, LockTable};
