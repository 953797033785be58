// A fresh store on a test S3 server for the protocol cases, shared by `protocol_moto.rs` and
// `protocol_localstack_ceph.rs` (each includes this file): an unversioned bucket, path-style,
// the test credentials; with `probe_first`, the conditional-write check runs first, as
// `serve` does, so the adapter knows what no answer shows (Ceph's ignored If-Match on DELETE).

pub async fn store_on(
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

