//! A service over a fresh memory store with the default rules, for the unit tests of the
//! service's modules.

use std::sync::Arc;

use statelock_lock::LockClient;
use statelock_store::{MemoryStore, ObjectStore};

use super::{StateRules, StateService};

pub(crate) fn memory_service() -> StateService {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    StateService::new(
        store.clone(),
        LockClient::new(store, "b"),
        StateRules::default(),
    )
}
