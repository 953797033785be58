//! The conformance suite against the two S3-compatible servers with known quirks, at a
//! smaller size (they share the 2-core test machine): LocalStack (501 to a conditional
//! DELETE, which the adapter learns and reports as `NotImplemented`) and Ceph RGW 16 on
//! unversioned buckets (where its conditional writes work; versioned ones ignore
//! `If-None-Match`, which `statelock probe` reports). Each check runs on a fresh bucket.

mod s3_common;

use statelock_store::conformance::Profile;

const SMALL: Profile = Profile {
    racers: 8,
    race_rounds: 3,
    cas_workers: 3,
    cas_increments: 4,
    large_object_bytes: 20 * 1024 * 1024,
    list_objects: 25,
    failed_swaps_allowed: 0,
};

mod localstack {
    use super::{SMALL, s3_common};
    use statelock_test_support::localstack;

    statelock_store::conformance_tests!(
        async { __Arc::new(s3_common::fresh_store(localstack).await) as __Arc<dyn __ObjectStore> },
        SMALL
    );
}

/// Ceph RGW 16 on unversioned buckets, except `object_versions`, which needs versioning
/// (plain versioning works there; only the conditional writes ignore their headers).
mod ceph_rgw {
    use std::sync::Arc;

    use super::{SMALL, s3_common};
    use statelock_store::conformance as c;
    use statelock_store::{ObjectStore, S3Store};
    use statelock_test_support::ceph_rgw;

    async fn store_on(versioned: bool) -> Arc<dyn ObjectStore> {
        let (server, bucket) = s3_common::fresh_bucket(ceph_rgw, versioned).await;
        let store = S3Store::connect(s3_common::config(server, &bucket))
            .await
            .unwrap();
        // What `serve` and the operator commands do first: the probe teaches the adapter
        // that this server ignores If-Match on DELETE, which no answer reveals.
        statelock_store::probe_conditional_writes(&store)
            .await
            .unwrap();
        Arc::new(store)
    }

    statelock_store::conformance_tests!(
        store_on(false),
        // RGW answers some contended swaps with 500; the suite retries them (and checks that
        // no acknowledged one is lost), as the server's clients would.
        c::Profile {
            failed_swaps_allowed: 20,
            ..SMALL
        },
        versions = store_on(true)
    );
}
