//! Which principal took each lock through a front whose writes carry no lock ID (S3's
//! PutObject), so that such writes can still be fenced: while a state is locked, only the
//! principal that took the lock may write or delete it. The record sits beside the state's
//! history, at `.statelock/lock-owners/<key>`, and names the lock ID it belongs to; a record
//! left by an earlier lock never matches a later one, so it needs no removal on release.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use statelock_core::StateKey;
use statelock_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreResult};

use crate::history::RESERVED_PREFIX;

/// The owner record of one lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub lock_id: String,
    pub principal: String,
}

fn owner_key(key: &StateKey) -> String {
    format!("{RESERVED_PREFIX}lock-owners/{key}")
}

/// Records that `principal` took `key`'s lock `lock_id`.
pub(super) async fn record(
    store: &dyn ObjectStore,
    key: &StateKey,
    lock_id: &str,
    principal: &str,
) -> StoreResult<()> {
    let owner = LockOwner {
        lock_id: lock_id.to_owned(),
        principal: principal.to_owned(),
    };
    let body = Bytes::from(serde_json::to_vec(&owner).expect("a plain struct serialises"));
    store
        .put(&owner_key(key), body, PutOptions::json(PutMode::Overwrite))
        .await
        .map(|_| ())
}

/// The owner record of `key`'s latest lock taken by a principal, if any (an unreadable one
/// counts as none: the write it would allow is then refused, never let through).
pub(super) async fn read(
    store: &dyn ObjectStore,
    key: &StateKey,
) -> StoreResult<Option<LockOwner>> {
    Ok(store
        .get_if_exists(&owner_key(key))
        .await?
        .and_then(|found| serde_json::from_slice(&found.body).ok()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use statelock_core::{LockInfo, Timestamp};

    use crate::service::{Fence, LockRefused, LockRequest, StateError};

    use super::*;

    use crate::service::test_service::memory_service as service;

    fn state(serial: u64) -> Bytes {
        Bytes::from(format!(
            r#"{{"version":4,"serial":{serial},"lineage":"L","outputs":{{"n":{{"value":{serial},"type":"number"}}}},"resources":[]}}"#
        ))
    }

    fn record(id: &str) -> LockInfo {
        LockInfo {
            id: id.to_owned(),
            operation: "OperationTypeApply".to_owned(),
            info: String::new(),
            who: "ci@runner".to_owned(),
            version: "1.15.5".to_owned(),
            created: Timestamp::now(),
            path: String::new(),
        }
    }

    fn request(owner: Option<&str>) -> LockRequest<'_> {
        LockRequest {
            wait: Duration::ZERO,
            may_take_over: false,
            owner,
        }
    }

    #[tokio::test]
    async fn only_the_principal_that_locked_writes_a_locked_state() {
        let svc = service();
        let key = StateKey::parse("team-a/app.tfstate").unwrap();
        svc.write(&key, state(1), Fence::Owner("bob"), None)
            .await
            .expect("an unlocked state is written by any principal");
        svc.lock(&key, record("lock-1"), request(Some("alice")))
            .await
            .unwrap();
        let refused = svc
            .write(&key, state(2), Fence::Owner("bob"), None)
            .await
            .unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, StateError::NotTheOwner { .. }),
            "{message}"
        );
        assert!(
            message.contains("principal alice")
                && message.contains("lock-1")
                && message.contains("bob"),
            "{message}"
        );
        assert!(svc.delete(&key, Fence::Owner("bob"), None).await.is_err());
        svc.write(&key, state(2), Fence::Owner("alice"), None)
            .await
            .unwrap();
        assert_eq!(svc.read(&key).await.unwrap(), Some(state(2)));

        // A later lock by someone without a principal: alice's old record does not match it.
        svc.unlock(&key, crate::service::Unlock::Current)
            .await
            .unwrap();
        svc.lock(&key, record("lock-2"), request(None))
            .await
            .unwrap();
        let refused = svc
            .write(&key, state(3), Fence::Owner("alice"), None)
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("not a principal of this server"),
            "{refused}"
        );
        assert_eq!(
            svc.read(&key).await.unwrap(),
            Some(state(2)),
            "nothing written"
        );
    }

    #[tokio::test]
    async fn a_lock_record_without_an_id_is_refused() {
        let svc = service();
        let key = StateKey::parse("a.tfstate").unwrap();
        let refused = svc.lock(&key, record(""), request(None)).await.unwrap_err();
        assert!(matches!(refused, LockRefused::EmptyId), "{refused}");
    }
}
