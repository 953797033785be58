//! The lock protocol on the S3 adapter against the two S3-compatible servers with known
//! quirks: LocalStack (a 501 to conditional DELETE, learned at the first release) and Ceph
//! RGW 16 on an unversioned bucket (quoted ETags refused, conditional DELETE ignored, both
//! learned by the start-up probe as `serve` runs it), with faults injected by `FaultyStore`.

async fn store_on(
    server: fn() -> &'static statelock_test_support::S3Server,
    probe_first: bool,
) -> std::sync::Arc<dyn statelock_store::ObjectStore> {
    use statelock_test_support::{ACCESS_KEY, REGION, SECRET_KEY, unique_name};
    let (endpoint, bucket) = tokio::task::spawn_blocking(move || {
        let server = server();
        let bucket = unique_name("statelock-lock");
        server.create_bucket(&bucket, false);
        (server.endpoint.clone(), bucket)
    })
    .await
    .unwrap();
    let config = statelock_store::S3Config::new(bucket)
        .endpoint(endpoint)
        .path_style(true)
        .region(REGION)
        .static_credentials(ACCESS_KEY, SECRET_KEY);
    let store = statelock_store::S3Store::connect(config).await.unwrap();
    if probe_first {
        statelock_store::probe_conditional_writes(&store)
            .await
            .unwrap();
    }
    std::sync::Arc::new(store)
}

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
