//! The conformance suite against SeaweedFS (`weed mini`), a real S3-compatible server with its
//! own conditional-write implementation, at a smaller size: it shares the 2-core test machine.
//!
//! Every check runs on a fresh versioned bucket except `paginated_list`, which runs on an
//! unversioned one: SeaweedFS 4.48 lists a versioned bucket's objects in file-system walk
//! order, so an object `list` that is also the parent of `list/...` keys comes after them and
//! a page boundary among those keys drops it from a paginated ListObjectsV2 (reproduced with
//! boto3; `seaweedfs_versioned_pagination_quirk` in `s3_quirks.rs` pins it down).

mod s3_common;

use std::sync::Arc;

use statelock_store::ObjectStore;
use statelock_store::S3Store;
use statelock_store::conformance::{self as c, Profile};
use statelock_test_support::seaweedfs;

const SEAWEEDFS: Profile = Profile {
    racers: 5,
    race_rounds: 3,
    cas_workers: 3,
    cas_increments: 3,
    large_object_bytes: 100 * 1024 * 1024,
    list_objects: 25,
    failed_swaps_allowed: 0,
};

async fn store() -> Arc<dyn ObjectStore> {
    Arc::new(s3_common::fresh_store(seaweedfs).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_objects() {
    c::missing_objects(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_get_overwrite() {
    c::put_get_overwrite(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_conflict() {
    c::create_conflict(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_swap() {
    c::compare_and_swap(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_delete() {
    c::conditional_delete(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paginated_list() {
    let (server, bucket) = s3_common::fresh_bucket(seaweedfs, false).await;
    let store = S3Store::connect(s3_common::config(server, &bucket))
        .await
        .unwrap();
    c::paginated_list(&store, &SEAWEEDFS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_object() {
    c::large_object(&*store().await, &SEAWEEDFS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creators() {
    c::racing_creators(store().await, &SEAWEEDFS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_increments() {
    c::cas_increments(store().await, &SEAWEEDFS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_versions() {
    c::object_versions(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_keys() {
    c::invalid_keys(&*store().await).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_metadata() {
    c::user_metadata(&*store().await).await;
}
