//! The lock protocol on the S3 adapter against moto (an AWS-faithful S3 emulator on
//! 127.0.0.1), with faults injected by `FaultyStore` in front of the real adapter.

include!("common/s3_store.rs");

async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
    store_on(statelock_test_support::moto, false).await
}

include!("common/protocol_cases.rs");
