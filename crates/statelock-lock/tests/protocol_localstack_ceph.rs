//! The lock protocol on the S3 adapter against the two S3-compatible servers with known
//! quirks: LocalStack (a 501 to conditional DELETE, learned at the first release) and Ceph
//! RGW 16 on an unversioned bucket (quoted ETags refused, conditional DELETE ignored, both
//! learned by the start-up probe as `serve` runs it), with faults injected by `FaultyStore`.

include!("common/s3_store.rs");

mod localstack {
    async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
        super::store_on(statelock_test_support::localstack, false).await
    }

    include!("common/protocol_cases.rs");
}

mod ceph_rgw {
    async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
        super::store_on(statelock_test_support::ceph_rgw, true).await
    }

    include!("common/protocol_cases.rs");
}
