//! The `statelock` binary end to end, as one test binary: real Terraform (1.0.3 and 1.15.5),
//! real S3-compatible servers (moto, SeaweedFS, s3rver), the AWS SDKs and a real browser
//! (Debian's chromium, for the web UI) against
//! `statelock serve` and the operator commands. One binary links once and starts each test
//! server once for every module here.
//!
//! Needs `bash scripts/setup-test-tools.sh` (or `STATELOCK_TOOLS` pointing at its output).
//! Run one module with `cargo test -p statelock --test e2e -- terraform::`.

mod harness;

mod access_control;
mod aws_cli;
mod bad_input;
mod config_file;
mod doctor;
mod dual_lock;
mod iam_policy;
mod lock_queue;
mod locks_cli;
mod migrate_dynamodb;
mod probe_cli;
mod replicas_and_crashes;
mod s3_front;
mod serve_s3;
mod state_cli;
mod stores;
mod terraform;
mod tls;
mod ui;
