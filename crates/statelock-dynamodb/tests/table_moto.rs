//! `LockTable` against moto's DynamoDB: conditional lock puts that name the holder, retried
//! locks with the same ID, unlock by ID with the `Info = :info` condition, digests, and a
//! scan across several pages.

use statelock_core::LockInfo;
use statelock_dynamodb::{DynamoConfig, ItemKind, LockTable, TableError, md5_hex};
use statelock_test_support::{ACCESS_KEY, REGION, SECRET_KEY, moto, unique_name};

async fn table() -> LockTable {
    let server = moto();
    let name = unique_name("tf-locks");
    server.create_lock_table(&name);
    let config = DynamoConfig::new(name)
        .endpoint(Some(server.endpoint.clone()))
        .region(Some(REGION.to_owned()))
        .static_credentials(ACCESS_KEY, SECRET_KEY);
    LockTable::connect(&config).await
}

fn record(who: &str, lock_id: &str) -> LockInfo {
    let mut info = LockInfo::new("OperationTypeApply", who, "1.0.3");
    info.id = statelock_core::LockId::generate();
    info.path = lock_id.to_owned();
    info
}

#[tokio::test]
async fn a_second_locker_is_refused_with_the_holder_and_unlock_checks_the_id() {
    let table = table().await;
    let alice = record("alice@ci", "b/k.tfstate");
    table.lock("b/k.tfstate", &alice).await.unwrap();
    // The same ID again is a retried lock, not a conflict.
    table.lock("b/k.tfstate", &alice).await.unwrap();

    let err = table
        .lock("b/k.tfstate", &record("bob@laptop", "b/k.tfstate"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TableError::Held { holder, .. } if *holder == alice),
        "{err:?}"
    );
    assert!(err.to_string().contains("alice@ci"), "{err}");

    let stored = table.get_lock("b/k.tfstate").await.unwrap().unwrap();
    assert_eq!(stored.raw_info, alice.encode());

    let err = table.unlock("b/k.tfstate", "not-the-id").await.unwrap_err();
    assert!(matches!(err, TableError::IdMismatch { .. }), "{err:?}");
    // A conditional delete with another record leaves the lock alone.
    let err = table
        .delete_lock_if("b/k.tfstate", &record("x", "b/k.tfstate").encode())
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::Changed { .. }), "{err:?}");

    assert_eq!(table.unlock("b/k.tfstate", &alice.id).await.unwrap(), alice);
    assert!(table.get_lock("b/k.tfstate").await.unwrap().is_none());
    let err = table.unlock("b/k.tfstate", &alice.id).await.unwrap_err();
    assert!(matches!(err, TableError::NotLocked { .. }), "{err:?}");
}

#[tokio::test]
async fn digests_are_put_read_and_deleted_under_the_md5_key() {
    let table = table().await;
    assert_eq!(
        table.get_digest("b", "env:/dev/k.tfstate").await.unwrap(),
        None
    );
    let md5 = md5_hex(b"{}");
    table
        .put_digest("b", "env:/dev/k.tfstate", &md5.to_uppercase())
        .await
        .unwrap();
    assert_eq!(
        table.get_digest("b", "env:/dev/k.tfstate").await.unwrap(),
        Some(md5)
    );
    assert!(table.put_digest("b", "k", "not-a-digest").await.is_err());
    table
        .delete_digest("b", "env:/dev/k.tfstate")
        .await
        .unwrap();
    assert_eq!(
        table.get_digest("b", "env:/dev/k.tfstate").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn scan_reads_every_page() {
    let table = table().await.scan_page_size(2);
    for i in 0..7 {
        table
            .put_digest("b", &format!("s{i}.tfstate"), &md5_hex(&[i]))
            .await
            .unwrap();
    }
    table
        .lock("b/s0.tfstate", &record("alice@ci", "b/s0.tfstate"))
        .await
        .unwrap();
    let items = table.scan().await.unwrap();
    assert_eq!(items.len(), 8);
    let digests = items
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::Digest { .. }))
        .count();
    assert_eq!(digests, 7);
    assert!(
        items
            .iter()
            .all(|i| i.written_by_statelock && i.written.is_some())
    );
}
