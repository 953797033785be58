// The lock-protocol cases, shared by `protocol_*.rs`: each of those files defines
// `async fn backing() -> Arc<dyn ObjectStore>` (a fresh, empty store) and includes this file,
// so every case runs on every adapter. Cases that need a store with a specific defect build it
// over `MemoryStore` themselves.
//
// Index:
// - acquire: exact bytes and keys, conflicts carry the holder, ambiguous replies (opentofu#4405)
// - fence: only the holder writes
// - release: ID checks, conditional delete, the lock changing underneath, plain-delete fallback
// - break_lock and list: unreadable lock objects, prefixes

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_lock::{DeleteMethod, FenceError, LockClient, LockError, LockState};
use statelock_store::{
    Capabilities, DeleteMode, Fault, FaultyStore, GetResult, Hook, ListPage, MemoryStore, ObjectMeta,
    ObjectStore, ObjectStoreExt, Op, PutMode, PutOptions, StoreResult,
};

fn key(s: &str) -> StateKey {
    StateKey::parse(s).unwrap()
}

fn record(id: &str, who: &str) -> LockInfo {
    LockInfo {
        id: id.to_owned(),
        operation: "OperationTypeApply".to_owned(),
        info: String::new(),
        who: who.to_owned(),
        version: "1.10.0".to_owned(),
        created: Timestamp::parse_rfc3339("2024-12-02T09:15:27.402913Z").unwrap(),
        path: String::new(),
    }
}

/// The store under test, wrapped so faults can be injected and requests counted.
async fn setup() -> (Arc<FaultyStore>, LockClient) {
    let faulty = Arc::new(FaultyStore::new(backing().await));
    let client = LockClient::new(faulty.clone(), "mybucket");
    (faulty, client)
}

/// A conditional delete where the store has one; where it has shown it cannot (LocalStack's
/// 501, RGW's ignored If-Match), the plain-delete fallback, naming that quirk.
fn deleted_as_the_store_can(store: &dyn ObjectStore, method: &DeleteMethod) {
    if store.capabilities().conditional_delete {
        assert_eq!(*method, DeleteMethod::Conditional);
    } else {
        let DeleteMethod::Plain { reason } = method else {
            panic!("a store without conditional delete, yet {method:?}");
        };
        assert!(reason.contains("If-Match"), "{reason}");
    }
}

async fn keys(store: &dyn ObjectStore) -> Vec<String> {
    store
        .list_all("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect()
}

#[tokio::test]
async fn acquire_writes_the_s3_backend_record_at_the_tflock_key() {
    let (store, client) = setup().await;
    let k = key("env:/dev/app.tfstate");
    let acquired = client
        .acquire(
            &k,
            record("0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f", "alice@ci-runner-7"),
        )
        .await
        .unwrap();
    assert!(!acquired.recovered_after_ambiguous_reply);
    // One create, no reads: the fast path costs a single store request.
    assert_eq!((store.calls(Op::Put), store.calls(Op::Get)), (1, 0));
    assert_eq!(keys(&*store).await, ["env:/dev/app.tfstate.tflock"]);
    let stored = store.get("env:/dev/app.tfstate.tflock").await.unwrap().body;
    assert_eq!(
        stored,
        Bytes::from_static(
            br#"{"ID":"0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f","Operation":"OperationTypeApply","Info":"","Who":"alice@ci-runner-7","Version":"1.10.0","Created":"2024-12-02T09:15:27.402913Z","Path":"mybucket/env:/dev/app.tfstate"}"#
        )
    );
    assert_eq!(
        acquired.lock.version,
        store
            .head("env:/dev/app.tfstate.tflock")
            .await
            .unwrap()
            .version
    );
}

#[tokio::test]
async fn empty_id_gets_a_generated_one() {
    let (_, client) = setup().await;
    let acquired = client
        .acquire(&key("a"), record("", "me@host"))
        .await
        .unwrap();
    assert!(statelock_core::LockId::is_well_formed(
        &acquired.lock.info.id
    ));
}

#[tokio::test]
async fn conflict_reports_the_holder() {
    let (store, client) = setup().await;
    let k = key("team-a/prod/terraform.tfstate");
    client
        .acquire(&k, record("holder-id", "alice@ci"))
        .await
        .unwrap();
    let err = client
        .acquire(&k, record("other-id", "bob@laptop"))
        .await
        .unwrap_err();
    let LockError::Held { holder, .. } = &err else {
        panic!("expected Held, got {err}");
    };
    assert_eq!(holder.id, "holder-id");
    assert_eq!(holder.path, "mybucket/team-a/prod/terraform.tfstate");
    let message = err.to_string();
    assert!(
        message.contains("already locked by alice@ci (lock ID holder-id)"),
        "{message}"
    );
    assert!(
        message.contains("Lock Info:\n  ID:        holder-id\n"),
        "{message}"
    );
    // The holder's lock is untouched.
    let stored = LockInfo::decode(&store.get(&k.lock_key()).await.unwrap().body).unwrap();
    assert_eq!(stored.id, "holder-id");
}

#[tokio::test]
async fn lost_reply_after_a_successful_create_is_recognised_as_ours() {
    // opentofu#4405: the create landed, the reply was lost, a retry would see 412 against our
    // own lock. The protocol reads the lock, finds our ID, and reports success.
    let (store, client) = setup().await;
    store.inject(Op::Put, Fault::ReplyLost);
    let k = key("r2/state.tfstate");
    let acquired = client.acquire(&k, record("my-id", "me@ci")).await.unwrap();
    assert!(acquired.recovered_after_ambiguous_reply);
    assert_eq!(acquired.lock.info.id, "my-id");
    assert_eq!(
        acquired.lock.version,
        store.head(&k.lock_key()).await.unwrap().version
    );
    // And we can release it normally: the lock is not orphaned.
    client.release(&k, "my-id").await.unwrap();
    assert!(keys(&*store).await.is_empty());
}

#[tokio::test]
async fn failed_create_that_never_landed_is_retried() {
    let (store, client) = setup().await;
    store.inject(Op::Put, Fault::Error);
    let acquired = client
        .acquire(&key("s"), record("id-1", "me@ci"))
        .await
        .unwrap();
    assert!(!acquired.recovered_after_ambiguous_reply);
    assert_eq!(store.calls(Op::Put), 2);
}

#[tokio::test]
async fn persistent_store_failure_is_an_error_and_leaves_nothing() {
    let (store, client) = setup().await;
    for _ in 0..3 {
        store.inject(Op::Put, Fault::Error);
    }
    let err = client
        .acquire(&key("s"), record("id-1", "me@ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Store(_)), "{err}");
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert!(keys(&*store).await.is_empty());
}

#[tokio::test]
async fn unreachable_store_during_the_read_back_reports_the_original_failure() {
    let (store, client) = setup().await;
    store.inject(Op::Put, Fault::Error);
    store.inject(Op::Get, Fault::Error);
    let err = client
        .acquire(&key("s"), record("id-1", "me@ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("put"), "{err}");
    assert!(keys(&*store).await.is_empty());
}

#[tokio::test]
async fn lock_released_between_refusal_and_read_back_is_taken_on_retry() {
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let client = LockClient::new(store.clone(), "b");
    let k = key("s");
    client.acquire(&k, record("first", "a@x")).await.unwrap();
    // The holder releases just as the contender reads the lock back after a refused create.
    let lock_key = k.lock_key();
    let release = Hook::new(move |inner: Arc<dyn ObjectStore>| {
        let lock_key = lock_key.clone();
        async move { inner.delete(&lock_key, DeleteMode::Unconditional).await }
    });
    store.inject(Op::Get, Fault::Before(release));
    let acquired = client.acquire(&k, record("second", "b@x")).await.unwrap();
    assert_eq!(acquired.lock.info.id, "second");
    let stored = LockInfo::decode(&store.get(&k.lock_key()).await.unwrap().body).unwrap();
    assert_eq!(stored.id, "second");
}

#[tokio::test]
async fn fencing_lets_only_the_holder_write() {
    let (_, client) = setup().await;
    let k = key("fenced/state");
    assert!(client.fence(&k, None).await.unwrap().is_none(), "no lock, no ID: -lock=false");
    let err = client.fence(&k, Some("gone")).await.unwrap_err();
    assert!(matches!(err, FenceError::NotLocked { .. }), "{err}");
    client.acquire(&k, record("mine", "a@x")).await.unwrap();
    let holder = client.fence(&k, Some("mine")).await.unwrap().unwrap();
    assert_eq!((holder.id.as_str(), holder.who.as_str()), ("mine", "a@x"));
    let err = client.fence(&k, Some("theirs")).await.unwrap_err();
    assert!(
        matches!(&err, FenceError::OtherHolder { holder, .. } if holder.id == "mine"),
        "{err}"
    );
    let err = client.fence(&k, None).await.unwrap_err();
    assert!(matches!(err, FenceError::LockedWithoutId { .. }), "{err}");
    assert!(err.to_string().contains("locked by a@x under lock ID mine"), "{err}");
}

#[tokio::test]
async fn release_checks_the_id_and_deletes_conditionally() {
    let (store, client) = setup().await;
    let k = key("a/b.tfstate");
    client.acquire(&k, record("right", "a@x")).await.unwrap();

    let err = client.release(&k, "wrong").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("lock ID \"wrong\" does not match the existing lock ID \"right\""),
        "{err}"
    );
    assert_eq!(err.holder().unwrap().id, "right");
    assert_eq!(
        keys(&*store).await,
        ["a/b.tfstate.tflock"],
        "a wrong ID removes nothing"
    );

    let released = client.release(&k, "right").await.unwrap();
    deleted_as_the_store_can(&*store, &released.method);
    assert_eq!(released.info.id, "right");
    assert!(keys(&*store).await.is_empty());

    let err = client.release(&k, "right").await.unwrap_err();
    assert!(matches!(err, LockError::NotLocked { .. }), "{err}");
}

#[tokio::test]
async fn release_does_not_delete_a_lock_that_changed_underneath() {
    // The release reads the lock, then (slowly) deletes it; meanwhile an operator breaks the
    // lock and someone else acquires it. The conditional delete must refuse.
    let (store, client) = setup().await;
    if !store.capabilities().conditional_delete {
        // A plain delete cannot see a replacement that lands while it is in flight: the
        // window the probe reports for such stores (Ceph RGW 16). Nothing to assert here.
        eprintln!(
            "protocol[{}]: no conditional delete, the in-flight replacement case does not apply",
            store.describe()
        );
        return;
    }
    let k = key("slow/state");
    client.acquire(&k, record("old", "a@x")).await.unwrap();
    store.inject(Op::Delete, Fault::Delay(Duration::from_millis(300)));
    let releasing = {
        let client = client.clone();
        let k = k.clone();
        tokio::spawn(async move { client.release(&k, "old").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Someone replaces the lock while the release's delete is in flight.
    let new_body = Bytes::from(client.record_for(&k, record("new", "b@y")).encode());
    store
        .put(
            &k.lock_key(),
            new_body,
            PutOptions::json(PutMode::Overwrite),
        )
        .await
        .unwrap();
    let err = releasing.await.unwrap().unwrap_err();
    assert!(matches!(err, LockError::Changed { .. }), "{err}");
    let stored = LockInfo::decode(&store.get(&k.lock_key()).await.unwrap().body).unwrap();
    assert_eq!(stored.id, "new", "the newer lock survives");
}

/// A store that cannot delete conditionally, as some S3-compatible servers; with `replace`
/// set, the first `head` of a lock object first replaces that lock by someone else's, as if
/// a takeover landed between the release's read and its delete.
#[derive(Debug)]
struct NoConditionalDelete(MemoryStore, Option<std::sync::Mutex<Option<Bytes>>>);

#[async_trait]
impl ObjectStore for NoConditionalDelete {
    fn describe(&self) -> String {
        "no-conditional-delete".to_owned()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_delete: false,
            ..self.0.capabilities()
        }
    }
    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.0.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        let replacement = self.1.as_ref().and_then(|r| r.lock().unwrap().take());
        if let Some(body) = replacement {
            self.0
                .put(key, body, PutOptions::new(PutMode::Overwrite))
                .await?;
        }
        self.0.head(key).await
    }
    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        self.0.put(key, body, options).await
    }
    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        assert_eq!(
            mode,
            DeleteMode::Unconditional,
            "conditional delete sent to a store without it"
        );
        self.0.delete(key, mode).await
    }
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.0.list(prefix, continuation).await
    }
}

#[tokio::test]
async fn release_falls_back_to_plain_delete_and_says_so() {
    let store = Arc::new(NoConditionalDelete(MemoryStore::new(), None));
    let client = LockClient::new(store.clone(), "b");
    let k = key("s");
    client.acquire(&k, record("id", "a@x")).await.unwrap();
    let released = client.release(&k, "id").await.unwrap();
    let DeleteMethod::Plain { reason } = released.method else {
        panic!("expected a plain delete");
    };
    assert!(
        reason.contains("does not support conditional delete"),
        "{reason}"
    );
    assert!(keys(&*store).await.is_empty());
}

#[tokio::test]
async fn the_plain_delete_fallback_rechecks_the_lock_right_before_deleting() {
    let theirs = record("theirs", "b@y").encode();
    let store = Arc::new(NoConditionalDelete(
        MemoryStore::new(),
        Some(std::sync::Mutex::new(Some(Bytes::from(theirs.clone())))),
    ));
    let client = LockClient::new(store.clone(), "b");
    let k = key("s");
    client.acquire(&k, record("mine", "a@x")).await.unwrap();
    let err = client.release(&k, "mine").await.unwrap_err();
    assert!(matches!(err, LockError::Changed { .. }), "{err}");
    assert_eq!(
        store.get("s.tflock").await.unwrap().body,
        Bytes::from(theirs),
        "the lock that replaced ours is kept"
    );
}

#[tokio::test]
async fn unreadable_lock_blocks_acquire_and_release_until_broken() {
    let (store, client) = setup().await;
    let k = key("corrupt/state");
    store
        .put(
            &k.lock_key(),
            Bytes::from_static(b"{\"ID\":"),
            PutOptions::new(PutMode::Create),
        )
        .await
        .unwrap();
    let err = client.acquire(&k, record("me", "a@x")).await.unwrap_err();
    assert!(matches!(err, LockError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("unreadable lock object corrupt/state.tflock"),
        "{err}"
    );
    let err = client.release(&k, "me").await.unwrap_err();
    assert!(matches!(err, LockError::Unreadable { .. }), "{err}");

    let Some(LockState::Unreadable { version, .. }) = client.inspect(&k).await.unwrap() else {
        panic!("inspect should show the unreadable lock");
    };
    let broken = client.break_lock(&k, Some(&version)).await.unwrap();
    assert_eq!(broken.raw, Bytes::from_static(b"{\"ID\":"));
    assert!(broken.info.is_none());
    deleted_as_the_store_can(&*store, &broken.method);
    client.acquire(&k, record("me", "a@x")).await.unwrap();
}

#[tokio::test]
async fn break_lock_refuses_when_the_shown_version_is_stale() {
    let (_, client) = setup().await;
    let k = key("s");
    let first = client.acquire(&k, record("one", "a@x")).await.unwrap();
    client.release(&k, "one").await.unwrap();
    client.acquire(&k, record("two", "b@x")).await.unwrap();
    let err = client
        .break_lock(&k, Some(&first.lock.version))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Changed { .. }), "{err}");
    let broken = client.break_lock(&k, None).await.unwrap();
    assert_eq!(broken.info.unwrap().id, "two");
}

#[tokio::test]
async fn list_finds_locks_under_a_prefix_only() {
    let (store, client) = setup().await;
    for (k, id) in [
        ("team-a/prod.tfstate", "a1"),
        ("team-a/dev.tfstate", "a2"),
        ("team-b/prod.tfstate", "b1"),
    ] {
        client.acquire(&key(k), record(id, "x@y")).await.unwrap();
    }
    // State objects and other files are not locks.
    store
        .put(
            "team-a/prod.tfstate",
            Bytes::from_static(b"{}"),
            PutOptions::new(PutMode::Overwrite),
        )
        .await
        .unwrap();
    store
        .put(
            "team-a/junk.tfstate.tflock",
            Bytes::from_static(b"garbage"),
            PutOptions::new(PutMode::Create),
        )
        .await
        .unwrap();
    let locks = client.list("team-a/").await.unwrap();
    let summary: Vec<(String, Option<String>)> = locks
        .iter()
        .map(|l| {
            let id = match &l.state {
                LockState::Held(h) => Some(h.info.id.clone()),
                LockState::Unreadable { .. } => None,
            };
            (l.lock_key.clone(), id)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "team-a/dev.tfstate.tflock".to_owned(),
                Some("a2".to_owned())
            ),
            ("team-a/junk.tfstate.tflock".to_owned(), None),
            (
                "team-a/prod.tfstate.tflock".to_owned(),
                Some("a1".to_owned())
            ),
        ]
    );
    assert_eq!(
        locks[0].state_key.as_ref().unwrap().as_str(),
        "team-a/dev.tfstate"
    );
    assert_eq!(client.list("").await.unwrap().len(), 4);
}

#[tokio::test]
async fn racing_acquirers_have_exactly_one_winner() {
    let (_, client) = setup().await;
    let k = key("race/state");
    let tasks = (0..20).map(|i| {
        let client = client.clone();
        let k = k.clone();
        tokio::spawn(async move { client.acquire(&k, record(&format!("id-{i}"), "x@y")).await })
    });
    let results = futures::future::join_all(tasks).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .collect();
    assert_eq!(winners.len(), 1);
    let winner_id = winners[0]
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap()
        .lock
        .info
        .id
        .clone();
    for r in &results {
        if let Err(LockError::Held { holder, .. }) = r.as_ref().unwrap() {
            assert_eq!(holder.id, winner_id, "every loser is told who won");
        }
    }
}
