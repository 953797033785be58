#!/usr/bin/env bash
# The whole test suite: installs the real peers (moto, SeaweedFS, LocalStack, s3rver, boto3,
# Terraform 1.0.3 and 1.15.5 into .tools/; Ceph RGW from Debian's packages) if missing, then
# runs every test of the workspace once, showing each passing test's report lines
# (conformance race counts, cross-process counts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-test-tools.sh
export STATELOCK_TOOLS="${STATELOCK_TOOLS:-$PWD/.tools}"
cargo test --workspace --locked "$@" -- --show-output
