//! Stuck locks (`--lock-ttl`): takeover after inactivity, none while writes keep the lock
//! active, exactly one winner among concurrent takers, and fencing of the old holder.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use bytes::Bytes;
use common::{Holder, Replica, memory_store};
use statelock_http::LockPolicy;
use statelock_store::{
    Capabilities, DeleteMode, GetResult, ListPage, ObjectMeta, ObjectStore, PutMode, PutOptions,
    StoreResult,
};
use tokio::sync::Barrier;

fn ttl(ttl: Duration) -> LockPolicy {
    LockPolicy {
        ttl: Some(ttl),
        ..LockPolicy::default()
    }
}

#[tokio::test]
async fn an_idle_lock_is_taken_over_and_the_old_holder_is_fenced_off() {
    let replica = Replica::new(memory_store(), ttl(Duration::from_millis(300)));
    let old = Holder::new("crashed-ci@runner");
    let new = Holder::new("next@host");
    assert_eq!(replica.lock(&old, "").await.status, StatusCode::OK);
    assert_eq!(replica.write(&old, 1).await.status, StatusCode::OK);
    // Still within the TTL: an ordinary conflict.
    let early = replica.lock(&new, "").await;
    assert_eq!(early.status, StatusCode::LOCKED);
    assert_eq!(early.text(), old.stored());

    tokio::time::sleep(Duration::from_millis(450)).await;
    let taken = replica.lock(&new, "").await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text());
    assert_eq!(taken.text(), new.stored());

    let late_write = replica.write(&old, 2).await;
    assert_eq!(late_write.status, StatusCode::CONFLICT);
    assert_eq!(late_write.text(), new.stored(), "409 names the new holder");
    assert_eq!(replica.unlock(&old).await.status, StatusCode::CONFLICT);

    // The takeover is in the history: the state as it was, naming both holders.
    let key = common::KEY;
    let listed = replica
        .call("GET", &format!("/v1/api/states/{key}/versions"), "")
        .await;
    let listing: serde_json::Value = serde_json::from_str(&listed.text()).unwrap();
    let versions = &listing["versions"];
    let takeover = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "lock-takeover")
        .unwrap_or_else(|| panic!("no lock-takeover version in {versions:#}"));
    assert_eq!(takeover["serial"], 1);
    let who = takeover["who"].as_str().unwrap();
    assert!(who.starts_with("next@host (took over lock "), "{who}");
    assert!(who.ends_with(" of crashed-ci@runner)"), "{who}");
    assert_eq!(replica.write(&new, 2).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_ttl_an_idle_lock_is_never_taken_over() {
    let replica = Replica::new(memory_store(), LockPolicy::default());
    let old = Holder::new("old@host");
    assert_eq!(replica.lock(&old, "").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = replica.lock(&Holder::new("new@host"), "").await;
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert_eq!(reply.text(), old.stored());
}

#[tokio::test]
async fn writes_under_the_lock_keep_it_from_being_taken_over() {
    let limit = Duration::from_millis(500);
    let replica = Replica::new(memory_store(), ttl(limit));
    let holder = Holder::new("long-apply@host");
    let taker = Holder::new("impatient@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);
    // Three TTLs in all, with a write every 150 ms.
    for serial in 1..=10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(replica.write(&holder, serial).await.status, StatusCode::OK);
        let reply = replica.lock(&taker, "").await;
        assert_eq!(reply.status, StatusCode::LOCKED, "serial {serial}");
        assert_eq!(reply.text(), holder.stored());
    }
    // The same setup does take over once the writes stop, so the loop above proved something.
    tokio::time::sleep(limit + Duration::from_millis(200)).await;
    assert_eq!(replica.lock(&taker, "").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_takers_exactly_one_wins() {
    // Both takers judge the lock stale before either replaces it: the store holds each
    // compare-and-swap on the lock object until both have arrived.
    let store: Arc<dyn ObjectStore> = Arc::new(RendezvousStore {
        inner: memory_store(),
        barrier: Barrier::new(2),
    });
    let limit = Duration::from_millis(200);
    let (one, two) = (
        Replica::new(store.clone(), ttl(limit)),
        Replica::new(store.clone(), ttl(limit)),
    );
    let stuck = Holder::new("stuck@host");
    assert_eq!(one.lock(&stuck, "").await.status, StatusCode::OK);
    tokio::time::sleep(limit + Duration::from_millis(200)).await;

    let (a, b) = (Holder::new("a@host"), Holder::new("b@host"));
    let (ra, rb) = tokio::join!(one.lock(&a, ""), two.lock(&b, ""));
    let (winner, loser) = match (ra.status, rb.status) {
        (StatusCode::OK, StatusCode::LOCKED) => (&a, &rb),
        (StatusCode::LOCKED, StatusCode::OK) => (&b, &ra),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    assert_eq!(
        loser.text(),
        winner.stored(),
        "the loser is told the winner"
    );
    let stored = store.get(&format!("{}.tflock", common::KEY)).await.unwrap();
    assert_eq!(stored.body, Bytes::from(winner.stored()));
}

/// A store that makes conditional replacements of lock objects wait for each other.
#[derive(Debug)]
struct RendezvousStore {
    inner: Arc<dyn ObjectStore>,
    barrier: Barrier,
}

#[async_trait]
impl ObjectStore for RendezvousStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        if key.ends_with(".tflock") && matches!(options.mode, PutMode::Update(_)) {
            self.barrier.wait().await;
        }
        self.inner.put(key, body, options).await
    }
    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        self.inner.delete(key, mode).await
    }
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.inner.list(prefix, continuation).await
    }
}
