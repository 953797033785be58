//! Terraform/OpenTofu state documents (format v4, spec §5): what the server and the operator
//! CLI read from them, with no I/O.
//!
//! - [`StateHeader`]: serial, lineage and whether there is content, for the stale-write guard.
//! - [`StateSummary`]: serial, lineage, Terraform version, resource counts and outputs (with
//!   sensitive values withheld), for `statelock state show` and listings.
//! - [`diff`]: resources added, removed and changed by address, and outputs changed.
//! - [`resources`]: resource blocks with their type, provider and instance count, for the web UI.
//! - [`plan_rollback`]: an old version rewritten as the next serial on the current lineage.
//!
//! Only the fields needed are parsed and unknown fields are ignored, so states written by newer
//! Terraform or OpenTofu releases read the same way. OpenTofu-encrypted states (spec §5.3) keep
//! `serial` and `lineage` in plain text and everything else sealed, and say so.

mod diff;
mod header;
mod raw;
mod resources;
mod rollback;
mod summary;

pub use diff::{DiffError, OutputChange, OutputDiff, ResourceDiff, Side, StateDiff, diff};
pub use header::StateHeader;
pub use raw::is_encrypted;
pub use resources::{ResourceRow, resources};
pub use rollback::{
    RollbackError, RollbackPlan, lineage_text, plan_rollback, rewrite_serial_lineage,
};
pub use summary::{OutputSummary, StateSummary};
