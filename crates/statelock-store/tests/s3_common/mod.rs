//! Shared setup of the S3 adapter tests: a store on a fresh bucket of a test server.

use statelock_store::{S3Config, S3Store};
use statelock_test_support::{ACCESS_KEY, REGION, S3Server, SECRET_KEY, unique_name};

/// Listing page size of test stores: small, so every listing test crosses pages.
pub const PAGE_SIZE: i32 = 7;

/// A configuration for `bucket` on `server`, with the test credentials.
pub fn config(server: &S3Server, bucket: &str) -> S3Config {
    S3Config::new(bucket)
        .endpoint(server.endpoint.clone())
        .path_style(true)
        .region(REGION)
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .list_page_size(PAGE_SIZE)
}

/// Starts the server if needed and creates a fresh bucket on it, off the async workers
/// (both block on child processes). Returns the server and the bucket name.
pub async fn fresh_bucket(
    server: fn() -> &'static S3Server,
    versioning: bool,
) -> (&'static S3Server, String) {
    tokio::task::spawn_blocking(move || {
        let server = server();
        let bucket = unique_name(&format!("statelock-{}", server.name));
        server.create_bucket(&bucket, versioning);
        (server, bucket)
    })
    .await
    .expect("bucket setup panicked")
}

/// A store on a fresh versioned bucket of `server`.
pub async fn fresh_store(server: fn() -> &'static S3Server) -> S3Store {
    let (server, bucket) = fresh_bucket(server, true).await;
    S3Store::connect(config(server, &bucket))
        .await
        .expect("connect to the test server")
}
