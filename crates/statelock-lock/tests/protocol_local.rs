//! The lock protocol on the local-disk store (the server's default), with faults injected by
//! `FaultyStore`.

async fn backing() -> std::sync::Arc<dyn statelock_store::ObjectStore> {
    // Leaked so the directory outlives the store for the whole test.
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    std::sync::Arc::new(statelock_store::LocalStore::open(dir.path()).unwrap())
}

include!("common/protocol_cases.rs");
