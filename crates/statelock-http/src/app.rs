//! The server's configuration and the shared state every handler gets.

use std::sync::Arc;

use statelock_lock::LockClient;
use statelock_store::ObjectStore;

/// Default limit on a state body: generous for real states, small enough to bound memory.
pub const DEFAULT_MAX_STATE_SIZE: usize = 64 * 1024 * 1024;

/// Default number of versions kept per state.
pub const DEFAULT_HISTORY_RETENTION: usize = 100;

/// How the server behaves; independent of the store it runs on.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Name used as the bucket in each lock record's `Path` (`<bucket>/<key>`), so records
    /// match what Terraform's S3 backend writes for the same bucket.
    pub bucket: String,
    /// Largest state body accepted, in bytes; larger writes get 413.
    pub max_state_size: usize,
    /// Refuse writes that would replace a state with an unrelated or older one (spec §5.2).
    pub stale_write_guard: bool,
    /// Versions kept per state in the history; older ones are pruned after each write. 0 keeps
    /// every version.
    pub history_retention: usize,
}

impl HttpConfig {
    /// The defaults: 64 MiB limit, guard on, 100 versions of history.
    pub fn new(bucket: impl Into<String>) -> HttpConfig {
        HttpConfig {
            bucket: bucket.into(),
            max_state_size: DEFAULT_MAX_STATE_SIZE,
            stale_write_guard: true,
            history_retention: DEFAULT_HISTORY_RETENTION,
        }
    }
}

/// What handlers share: the store, the lock protocol over it, and the configuration.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    locks: LockClient,
    config: HttpConfig,
}

impl AppState {
    /// A server over `store`.
    pub fn new(store: Arc<dyn ObjectStore>, config: HttpConfig) -> AppState {
        let locks = LockClient::new(store.clone(), config.bucket.clone());
        AppState {
            inner: Arc::new(Inner {
                store,
                locks,
                config,
            }),
        }
    }

    pub(crate) fn store(&self) -> &dyn ObjectStore {
        &*self.inner.store
    }

    pub(crate) fn locks(&self) -> &LockClient {
        &self.inner.locks
    }

    pub(crate) fn config(&self) -> &HttpConfig {
        &self.inner.config
    }
}
