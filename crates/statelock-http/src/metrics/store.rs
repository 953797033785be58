//! A store decorator that counts and times every call for the metrics.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use statelock_store::{
    Capabilities, DeleteMode, GetResult, ListPage, ObjectMeta, ObjectStore, ObjectVersion,
    Observation, PutOptions, Quirk, StoreError, StoreResult,
};

use super::Metrics;

/// Wraps the server's store; everything the server does to the store goes through it.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: Arc<Metrics>) -> MeteredStore {
        MeteredStore { inner, metrics }
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            // Answers the protocol relies on, not failures.
            Err(StoreError::NotFound { .. }) => "not_found",
            Err(StoreError::AlreadyExists { .. } | StoreError::Precondition { .. }) => "conflict",
            Err(_) => "error",
        };
        self.metrics.store_call(op, outcome, started.elapsed());
        result
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn observed(&self, observation: Observation) {
        self.inner.observed(observation);
    }

    fn quirks(&self) -> Vec<Quirk> {
        self.inner.quirks()
    }

    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.timed("get", self.inner.get(key)).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.timed("head", self.inner.head(key)).await
    }

    async fn get_stream(&self, key: &str) -> StoreResult<statelock_store::GetStream> {
        // Timed to the first byte: the rest flows at the client's pace.
        self.timed("get", self.inner.get_stream(key)).await
    }

    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        self.timed("put", self.inner.put(key, body, options)).await
    }

    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        self.timed("delete", self.inner.delete(key, mode)).await
    }

    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.timed("list", self.inner.list(prefix, continuation))
            .await
    }

    async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
        self.timed("list_versions", self.inner.list_versions(key))
            .await
    }

    async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
        self.timed("get_version", self.inner.get_version(key, version_id))
            .await
    }
}
