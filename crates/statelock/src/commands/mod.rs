//! Operator subcommands besides `serve`, one module each, so that commands developed in
//! parallel touch only their own files.

pub mod doctor;
pub mod iam_policy;
