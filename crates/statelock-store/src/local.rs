//! Placeholder: the local-disk adapter is being written.
use crate::error::StoreError;
use crate::port::*;
use async_trait::async_trait;
use bytes::Bytes;

/// The embedded default store: a directory on the local disk.
#[derive(Debug)]
pub struct LocalStore;

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        "file://".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_delete: true,
            versions: false,
            content_hash_versions: false,
        }
    }
    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        let _ = key;
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "get",
        })
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        let _ = key;
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "head",
        })
    }
    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        let _ = (key, body, options);
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "put",
        })
    }
    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        let _ = (key, mode);
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "delete",
        })
    }
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        let _ = (prefix, continuation);
        Err(StoreError::NotImplemented {
            store: self.describe(),
            operation: "list",
        })
    }
}
