//! Listing a store's states with their lock holders, from one listing plus one read per
//! locked state, for every front (`GET /v1/api/states`, `statelock state ls`). A lock whose
//! state is not written yet (a first apply holds it) is an entry of its own, and a lock that
//! cannot be read is reported on its entry, never failing the listing.

use std::collections::{BTreeMap, BTreeSet};

use statelock_core::{LOCK_SUFFIX, LockInfo, StateKey};
use statelock_lock::LockState;
use statelock_store::{ObjectMeta, ObjectStoreExt, StoreResult};

use crate::history::check_server_key;
use crate::service::StateService;

/// One state, or one lock of a state not written yet.
#[derive(Debug)]
pub struct StateEntry {
    pub key: StateKey,
    /// The state object; `None` when only its lock exists.
    pub object: Option<ObjectMeta>,
    /// `None` when unlocked.
    pub lock: Option<LockEntry>,
}

/// What a state's lock object holds, as far as it could be read.
#[derive(Debug)]
pub enum LockEntry {
    Held(LockInfo),
    /// The object is not a lock record.
    Unreadable(String),
    /// The object could not be read from the store.
    Failed(String),
}

impl StateService {
    /// The newest version the server recorded for `key` (`None` when none): one listing
    /// and one read, for pages that list many states (the web UI's last writer).
    pub async fn latest_version(
        &self,
        key: &StateKey,
    ) -> StoreResult<Option<crate::history::VersionMeta>> {
        crate::history::latest(&*self.store, key).await
    }

    /// Every state under `prefix` and every lock of a state not written yet, in key order;
    /// statelock's own objects and keys no state may have are left out.
    pub async fn list_states(&self, prefix: &str) -> StoreResult<Vec<StateEntry>> {
        let objects = self.store.list_all(prefix).await?;
        let mut keys: BTreeMap<StateKey, Option<ObjectMeta>> = BTreeMap::new();
        let mut locked = BTreeSet::new();
        for object in objects {
            let (state, is_lock) = match object.key.strip_suffix(LOCK_SUFFIX) {
                Some(state) => (state, true),
                None => (object.key.as_str(), false),
            };
            let Ok(key) = StateKey::parse(state) else {
                continue;
            };
            // History, audit and probe objects live under `.statelock/`.
            if check_server_key(&key).is_err() {
                continue;
            }
            if is_lock {
                locked.insert(key.clone());
                keys.entry(key).or_insert(None);
            } else {
                keys.insert(key, Some(object));
            }
        }
        let mut entries = Vec::with_capacity(keys.len());
        for (key, object) in keys {
            let lock = if locked.contains(&key) {
                match self.locks.inspect(&key).await {
                    Ok(Some(LockState::Held(held))) => Some(LockEntry::Held(held.info)),
                    Ok(Some(LockState::Unreadable { reason, .. })) => {
                        Some(LockEntry::Unreadable(reason))
                    }
                    // Released since the listing.
                    Ok(None) => None,
                    Err(e) => Some(LockEntry::Failed(e.to_string())),
                }
            } else {
                None
            };
            // A lock released since the listing leaves nothing of a state never written.
            if object.is_some() || lock.is_some() {
                entries.push(StateEntry { key, object, lock });
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use statelock_lock::LockClient;
    use statelock_store::{Fault, FaultyStore, MemoryStore, ObjectStore, Op, PutMode, PutOptions};

    use super::*;
    use crate::StateRules;

    #[tokio::test]
    async fn locks_without_state_are_listed_and_a_failed_lock_read_stays_on_its_entry() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let lock = LockInfo::new("OperationTypeApply", "alice@laptop", "1.10.0").encode();
        for (key, body) in [
            ("a.tfstate", "{}"),
            ("a.tfstate.tflock", lock.as_str()),
            ("b.tfstate", "{}"),
            ("b.tfstate.tflock", "garbage"),
            ("c.tfstate", "{}"),
            ("c.tfstate.tflock", lock.as_str()),
            ("new.tfstate.tflock", lock.as_str()),
            (".statelock/history/a.tfstate/x.tfstate", "{}"),
        ] {
            let options = PutOptions::new(PutMode::Overwrite);
            store
                .put(key, Bytes::from(body.to_owned()), options)
                .await
                .unwrap();
        }
        store.inject_for_key(Op::Get, "c.tfstate.tflock", Fault::Error);
        let locks = LockClient::new(store.clone(), "b");
        let service = StateService::new(store.clone(), locks, StateRules::default());
        let entries = service.list_states("").await.unwrap();
        let seen: Vec<(&str, bool, &str)> = entries
            .iter()
            .map(|e| {
                let lock = match &e.lock {
                    Some(LockEntry::Held(info)) => info.who.as_str(),
                    Some(LockEntry::Unreadable(_)) => "unreadable",
                    Some(LockEntry::Failed(_)) => "failed",
                    None => "-",
                };
                (e.key.as_str(), e.object.is_some(), lock)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a.tfstate", true, "alice@laptop"),
                ("b.tfstate", true, "unreadable"),
                ("c.tfstate", true, "failed"),
                ("new.tfstate", false, "alice@laptop"),
            ]
        );
    }

    #[tokio::test]
    async fn the_latest_version_is_the_newest_write_with_its_writer() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let locks = LockClient::new(store.clone(), "b");
        let service = StateService::new(store.clone(), locks, StateRules::default());
        let key = StateKey::parse("a.tfstate").unwrap();
        assert!(service.latest_version(&key).await.unwrap().is_none());
        for serial in [1, 2] {
            let body = format!(r#"{{"version":4,"serial":{serial},"lineage":"L"}}"#);
            service
                .write(&key, Bytes::from(body), crate::Fence::LockId(None), None)
                .await
                .unwrap();
        }
        let latest = service.latest_version(&key).await.unwrap().unwrap();
        assert_eq!(latest.serial, Some(2));
        let all = service.server_history(&key).await.unwrap();
        assert_eq!(latest, all[0], "the same as the listing's newest");
    }
}
