//! The lock protocol on the S3 adapter against moto (an AWS-faithful S3 emulator on
//! 127.0.0.1), with faults injected by `FaultyStore` in front of the real adapter.

async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
    use statelock_test_support::{ACCESS_KEY, REGION, SECRET_KEY, moto, unique_name};
    let (endpoint, bucket) = tokio::task::spawn_blocking(|| {
        let server = moto();
        let bucket = unique_name("statelock-lock");
        server.create_bucket(&bucket, true);
        (server.endpoint.clone(), bucket)
    })
    .await
    .unwrap();
    let config = statelock_store::S3Config::new(bucket)
        .endpoint(endpoint)
        .path_style(true)
        .region(REGION)
        .static_credentials(ACCESS_KEY, SECRET_KEY);
    std::sync::Arc::new(statelock_store::S3Store::connect(config).await.unwrap())
}

include!("common/protocol_cases.rs");
