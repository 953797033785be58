//! Helpers for integration tests that need real peers: S3-compatible servers (moto,
//! SeaweedFS, LocalStack, Ceph RGW, and s3rver, which ignores conditional headers) started
//! once per test process on free loopback ports, a boto3 client to set up and inspect buckets
//! with a real AWS SDK, the Terraform releases, child processes isolated from the developer's
//! environment, and the paths of the installed test tools.
//!
//! The tools come from `bash scripts/setup-test-tools.sh` into `<workspace>/.tools` (or
//! `$STATELOCK_TOOLS`). Servers are tied to the test process's lifetime through a pipe, so they
//! die with it even when a test panics or the harness aborts.

mod env;
mod names;
mod server;
mod tools;

pub use env::{is_personal, isolated, isolated_from};
pub use names::unique_name;
pub use server::{
    ACCESS_KEY, REGION, RestartableSeaweedFs, S3Server, SECRET_KEY, ceph_rgw, localstack, moto,
    s3rver, seaweedfs,
};
pub use tools::{Terraform, free_port, python_bin, terraform_bin, tools_dir, workspace_root};
