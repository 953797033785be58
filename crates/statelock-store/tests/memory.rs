//! The conformance suite against the in-memory store.

use statelock_store::MemoryStore;
use statelock_store::conformance::Profile;

statelock_store::conformance_tests!(
    async { __Arc::new(MemoryStore::with_page_size(7)) as __Arc<dyn __ObjectStore> },
    Profile::FULL
);
