//! `/metrics`, `/healthz` and `/readyz`: counters after a known sequence of requests, and
//! readiness that follows the store (unreachable, or failing the conditional-write test).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use bytes::Bytes;
use common::{Holder, Replica, URL, memory_store, state};
use statelock_http::LockPolicy;
use statelock_store::{
    Capabilities, DeleteMode, Fault, FaultyStore, GetResult, ListPage, ObjectMeta, ObjectStore, Op,
    PutMode, PutOptions, StoreResult,
};

/// The scrape as `name{labels}` → value.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn counters_follow_a_known_sequence_of_requests() {
    let faulty = Arc::new(FaultyStore::new(memory_store()));
    let replica = Replica::new(faulty.clone(), LockPolicy::default());
    let (a, b) = (Holder::new("a@ci"), Holder::new("b@ci"));
    assert_eq!(replica.lock(&a, "").await.status, StatusCode::OK);
    assert_eq!(replica.lock(&b, "").await.status, StatusCode::LOCKED);
    assert_eq!(replica.write(&a, 1).await.status, StatusCode::OK);
    let mid = replica.call("GET", "/metrics", "").await;
    assert_eq!(scrape(&mid.text())["statelock_locks_held"], 1.0);
    assert_eq!(replica.call("GET", URL, "").await.status, StatusCode::OK);
    faulty.inject(Op::Get, Fault::Error);
    assert_eq!(
        replica.call("GET", URL, "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(replica.unlock(&a).await.status, StatusCode::OK);
    assert_eq!(
        replica.call("GET", "/v1/states/none", "").await.status,
        StatusCode::NOT_FOUND
    );

    let reply = replica.call("GET", "/metrics", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text();
    println!("{text}");
    let m = scrape(&text);
    let expect = [
        (
            "statelock_requests_total{operation=\"lock\",status=\"200\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"lock\",status=\"423\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"write\",status=\"200\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"read\",status=\"200\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"read\",status=\"503\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"read\",status=\"404\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"unlock\",status=\"200\"}",
            1.0,
        ),
        (
            "statelock_requests_total{operation=\"metrics\",status=\"200\"}",
            1.0,
        ),
        (
            "statelock_request_duration_seconds_count{operation=\"lock\"}",
            2.0,
        ),
        (
            "statelock_request_duration_seconds_count{operation=\"read\"}",
            3.0,
        ),
        ("statelock_lock_wait_seconds_count", 2.0),
        ("statelock_locks_held", 0.0),
        ("statelock_lock_conflicts_total", 1.0),
        ("statelock_lock_takeovers_total", 0.0),
        ("statelock_store_errors_total{op=\"get\"}", 1.0),
        (
            "statelock_store_operations_total{op=\"get\",outcome=\"error\"}",
            1.0,
        ),
        ("statelock_state_size_bytes_count", 1.0),
        ("statelock_state_size_bytes_sum", state(1).len() as f64),
    ];
    for (name, value) in expect {
        assert_eq!(m.get(name), Some(&value), "{name} in\n{text}");
    }
    // Every store call the server made is counted, by kind.
    let counted: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("statelock_store_operations_total"))
        .map(|(_, v)| v)
        .sum();
    let made: usize = faulty.call_counts().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, made as f64);
    assert!(m["statelock_store_operations_total{op=\"put\",outcome=\"ok\"}"] >= 2.0);
}

#[tokio::test]
async fn readiness_follows_the_store() {
    let faulty = Arc::new(FaultyStore::new(memory_store()));
    let replica = Replica::new(faulty.clone(), LockPolicy::default());
    assert_eq!(replica.call("GET", "/healthz", "").await.text(), "ok\n");
    let ready = replica.call("GET", "/readyz", "").await;
    assert_eq!(
        (ready.status, ready.text()),
        (StatusCode::OK, "ready\n".to_owned())
    );
    faulty.inject(Op::Head, Fault::Error);
    let down = replica.call("GET", "/readyz", "").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        down.text().contains("the store is unreachable"),
        "{}",
        down.text()
    );
    assert_eq!(
        replica.call("GET", "/healthz", "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        replica.call("GET", "/readyz", "").await.status,
        StatusCode::OK
    );

    // A store that ignores create-if-absent never becomes ready, and is probed again only
    // after a pause, so /readyz cannot be used to make the server write.
    let unsafe_store = Arc::new(IgnoresConditions(memory_store()));
    let replica = Replica::new(unsafe_store.clone(), LockPolicy::default());
    let refused = replica.call("GET", "/readyz", "").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.text().contains("self-test failed"),
        "{}",
        refused.text()
    );
    let puts = scrape(&replica.call("GET", "/metrics", "").await.text())["statelock_store_operations_total{op=\"put\",outcome=\"ok\"}"];
    assert_eq!(
        replica.call("GET", "/readyz", "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let again = scrape(&replica.call("GET", "/metrics", "").await.text())["statelock_store_operations_total{op=\"put\",outcome=\"ok\"}"];
    assert_eq!(puts, again, "the second /readyz did not probe again");
}

/// Turns every conditional put into a plain overwrite, as s3rver does.
#[derive(Debug)]
struct IgnoresConditions(Arc<dyn ObjectStore>);

#[async_trait]
impl ObjectStore for IgnoresConditions {
    fn describe(&self) -> String {
        "ignores-conditions".to_owned()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.0.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.0.head(key).await
    }
    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        let options = PutOptions {
            mode: PutMode::Overwrite,
            ..options
        };
        self.0.put(key, body, options).await
    }
    async fn delete(&self, key: &str, _mode: DeleteMode) -> StoreResult<()> {
        self.0.delete(key, DeleteMode::Unconditional).await
    }
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.0.list(prefix, continuation).await
    }
}
