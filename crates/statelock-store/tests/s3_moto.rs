//! The conformance suite against moto, an AWS-faithful S3 emulator, at full size: a fresh
//! versioned bucket per check, path-style, 7 keys a listing page.

mod s3_common;

use statelock_store::conformance::Profile;
use statelock_test_support::moto;

statelock_store::conformance_tests!(
    async { __Arc::new(s3_common::fresh_store(moto).await) as __Arc<dyn __ObjectStore> },
    Profile::FULL
);
