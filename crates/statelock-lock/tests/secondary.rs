//! Dual-lock mode with a fake secondary lock: the file lock comes first, is rolled back when
//! the secondary fails, both are released, and writes reach the secondary.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockClient, LockError, SecondaryError, SecondaryLock};
use statelock_store::{MemoryStore, ObjectStore, ObjectStoreExt};

/// A secondary lock in memory that records every call and can be told to fail.
#[derive(Debug, Default)]
struct FakeSecondary {
    held: Mutex<Option<LockInfo>>,
    fail_with: Mutex<Option<&'static str>>,
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl SecondaryLock for FakeSecondary {
    fn describe(&self) -> String {
        "fake table".to_owned()
    }

    async fn acquire(&self, key: &StateKey, info: &LockInfo) -> Result<(), SecondaryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("acquire {key} {}", info.id));
        if let Some(message) = *self.fail_with.lock().unwrap() {
            return Err(SecondaryError::Failed(message.to_owned()));
        }
        let mut held = self.held.lock().unwrap();
        match &*held {
            Some(holder) if holder.id != info.id => Err(SecondaryError::Held {
                holder: holder.clone(),
            }),
            _ => {
                *held = Some(info.clone());
                Ok(())
            }
        }
    }

    async fn release(&self, key: &StateKey, id: &str) -> Result<(), SecondaryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("release {key} {id}"));
        let mut held = self.held.lock().unwrap();
        match &*held {
            None => Err(SecondaryError::NotLocked),
            Some(holder) if holder.id != id => Err(SecondaryError::IdMismatch {
                given: id.to_owned(),
                holder: holder.clone(),
            }),
            Some(_) => {
                *held = None;
                Ok(())
            }
        }
    }

    async fn state_written(&self, key: &StateKey, body: &[u8]) -> Result<(), SecondaryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("written {key} {}", String::from_utf8_lossy(body)));
        Ok(())
    }

    async fn state_deleted(&self, key: &StateKey) -> Result<(), SecondaryError> {
        self.calls.lock().unwrap().push(format!("deleted {key}"));
        Ok(())
    }
}

fn setup() -> (
    Arc<dyn ObjectStore>,
    Arc<FakeSecondary>,
    LockClient,
    StateKey,
) {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    let fake = Arc::new(FakeSecondary::default());
    let client = LockClient::new(store.clone(), "bucket")
        .with_secondary(Some(fake.clone() as Arc<dyn SecondaryLock>));
    (store, fake, client, StateKey::parse("a/b.tfstate").unwrap())
}

fn record(who: &str) -> LockInfo {
    LockInfo::new("OperationTypeApply", who, "1.0.3")
}

#[tokio::test]
async fn both_locks_are_taken_and_released_file_first() {
    let (store, fake, client, key) = setup();
    let acquired = client.acquire(&key, record("alice@ci")).await.unwrap();
    let id = acquired.lock.info.id.clone();
    assert!(
        store
            .get_if_exists("a/b.tfstate.tflock")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(fake.held.lock().unwrap().as_ref().unwrap().id, id);
    assert_eq!(
        fake.held.lock().unwrap().as_ref().unwrap().path,
        "bucket/a/b.tfstate"
    );

    client.release(&key, &id).await.unwrap();
    assert!(
        store
            .get_if_exists("a/b.tfstate.tflock")
            .await
            .unwrap()
            .is_none()
    );
    assert!(fake.held.lock().unwrap().is_none());
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [
            format!("acquire a/b.tfstate {id}"),
            format!("release a/b.tfstate {id}")
        ]
    );
}

#[tokio::test]
async fn a_held_secondary_rolls_the_file_lock_back_and_names_the_holder() {
    let (store, fake, client, key) = setup();
    let mut other = record("bob@laptop");
    other.id = "11111111-2222-3333-4444-555555555555".to_owned();
    *fake.held.lock().unwrap() = Some(other);

    let err = client.acquire(&key, record("alice@ci")).await.unwrap_err();
    let LockError::HeldIn { place, holder, .. } = &err else {
        panic!("expected HeldIn, got {err:?}");
    };
    assert_eq!(place, "fake table");
    assert_eq!(holder.who, "bob@laptop");
    assert!(err.to_string().contains("bob@laptop"), "{err}");
    assert!(
        store
            .get_if_exists("a/b.tfstate.tflock")
            .await
            .unwrap()
            .is_none(),
        "the file lock must be rolled back"
    );
    // The secondary's holder is untouched.
    assert_eq!(
        fake.held.lock().unwrap().as_ref().unwrap().who,
        "bob@laptop"
    );
}

#[tokio::test]
async fn a_failing_secondary_rolls_the_file_lock_back() {
    let (store, fake, client, key) = setup();
    *fake.fail_with.lock().unwrap() = Some("table not found");
    let err = client.acquire(&key, record("alice@ci")).await.unwrap_err();
    assert!(
        matches!(&err, LockError::Secondary { message, .. } if message.contains("table not found")),
        "{err:?}"
    );
    assert!(
        store
            .get_if_exists("a/b.tfstate.tflock")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_held_file_lock_never_reaches_the_secondary() {
    let (_store, fake, client, key) = setup();
    let first = client.acquire(&key, record("alice@ci")).await.unwrap();
    let err = client
        .acquire(&key, record("bob@laptop"))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Held { .. }), "{err:?}");
    assert_eq!(fake.calls.lock().unwrap().len(), 1);
    assert_eq!(
        fake.held.lock().unwrap().as_ref().unwrap().id,
        first.lock.info.id
    );
}

#[tokio::test]
async fn release_reaches_the_secondary_even_when_the_file_lock_is_gone() {
    let (store, fake, client, key) = setup();
    let id = client
        .acquire(&key, record("alice@ci"))
        .await
        .unwrap()
        .lock
        .info
        .id;
    store
        .delete(
            "a/b.tfstate.tflock",
            statelock_store::DeleteMode::Unconditional,
        )
        .await
        .unwrap();
    let err = client.release(&key, &id).await.unwrap_err();
    assert!(matches!(err, LockError::NotLocked { .. }), "{err:?}");
    assert!(
        fake.held.lock().unwrap().is_none(),
        "the secondary must be released too"
    );
}

#[tokio::test]
async fn writes_and_deletes_reach_the_secondary() {
    let (_store, fake, client, key) = setup();
    client.state_written(&key, b"{}").await;
    client.state_deleted(&key).await;
    assert_eq!(
        *fake.calls.lock().unwrap(),
        ["written a/b.tfstate {}", "deleted a/b.tfstate"]
    );
}

#[tokio::test]
async fn an_idle_lock_is_never_taken_over_with_a_secondary_lock() {
    let (store, _fake, client, key) = setup();
    let held = client.acquire(&key, record("alice@ci")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // A zero TTL makes any lock stale; a client with a secondary lock still refuses, since
    // the secondary would stay with alice.
    let err = client
        .acquire_or_take_over(&key, record("bob@ci"), std::time::Duration::ZERO, true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LockError::TakeoverWithSecondary { holder, place, .. }
            if holder.id == held.lock.info.id && place == "fake table"),
        "{err}"
    );
    let stored = store.get("a/b.tfstate.tflock").await.unwrap().body;
    assert_eq!(
        LockInfo::decode(&stored).unwrap().id,
        held.lock.info.id,
        "the lock stays with its holder"
    );

    // Without a secondary the same call takes the lock over.
    let plain = LockClient::new(store.clone(), "bucket");
    let took = plain
        .acquire_or_take_over(&key, record("bob@ci"), std::time::Duration::ZERO, true)
        .await
        .unwrap();
    let statelock_lock::Acquisition::TookOver {
        previous, record, ..
    } = took
    else {
        panic!("expected a takeover, got {took:?}");
    };
    assert_eq!(previous.id, held.lock.info.id);
    assert_eq!(record.who, "bob@ci");
}
