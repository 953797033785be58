//! The lock protocol on the in-memory store, with faults injected by `FaultyStore`.

async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
    std::sync::Arc::new(statelock_store::MemoryStore::new())
}

include!("common/protocol_cases.rs");
