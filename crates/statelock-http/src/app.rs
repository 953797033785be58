//! The server's configuration and the shared state every handler gets.

use std::sync::Arc;
use std::time::Duration;

use statelock_lock::{LockClient, SecondaryLock};
use statelock_state::{LockPolicy, StateRules, StateService};
use statelock_store::ObjectStore;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::events::ServerEvents;
use crate::health::Readiness;
use crate::metrics::{MeteredStore, Metrics};

/// Default limit on a state body: generous for real states, small enough to bound memory.
pub const DEFAULT_MAX_STATE_SIZE: usize = 64 * 1024 * 1024;

/// Default for [`HttpConfig::body_timeout`]: a 64 MiB state at about 1 MiB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Lock waiting and stuck-lock takeover.
    pub locking: LockPolicy,
    /// Principals and their grants; `None` serves everyone (see `crate::auth`).
    pub auth: Option<Arc<Authenticator>>,
    /// The key the principals' S3 secrets derive from; without it a server with principals
    /// refuses every request on the S3 front.
    pub s3_secret_key: Option<Arc<statelock_auth::S3SecretKey>>,
    /// Where the audit trail goes; `None` keeps none.
    pub audit: Option<Arc<AuditLog>>,
    /// Longest a request body may take to arrive; slower ones get 408 and change nothing.
    pub body_timeout: Duration,
    /// Dual-lock mode: a second lock taken with every `.tflock` lock and told about every
    /// state write (a DynamoDB table during a migration).
    pub secondary_lock: Option<Arc<dyn SecondaryLock>>,
    /// Domains under which the S3 front reads `<bucket>.<domain>` hosts as virtual-hosted
    /// style requests for that bucket (`localhost` by default); other hosts are path style.
    pub s3_domains: Vec<String>,
    /// Served over TLS: the web UI's session cookies are then `Secure`, and the origin it
    /// expects in a form's `Origin` header is `https://`.
    pub tls: bool,
}

impl HttpConfig {
    /// The defaults: 64 MiB limit, guard on, 100 versions of history.
    pub fn new(bucket: impl Into<String>) -> HttpConfig {
        HttpConfig {
            bucket: bucket.into(),
            max_state_size: DEFAULT_MAX_STATE_SIZE,
            stale_write_guard: true,
            history_retention: statelock_state::history::DEFAULT_RETENTION,
            locking: LockPolicy::default(),
            auth: None,
            s3_secret_key: None,
            audit: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            secondary_lock: None,
            s3_domains: vec!["localhost".to_owned()],
            tls: false,
        }
    }
}

/// What handlers share: the store, the lock protocol over it, the state service, and the
/// configuration.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    states: StateService,
    config: HttpConfig,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    ui: crate::ui::UiShared,
}

impl AppState {
    /// A server over `store`.
    pub fn new(store: Arc<dyn ObjectStore>, config: HttpConfig) -> AppState {
        let metrics = Arc::new(Metrics::new());
        let ui = crate::ui::UiShared::new();
        let store: Arc<dyn ObjectStore> = Arc::new(MeteredStore::new(store, metrics.clone()));
        let locks = LockClient::new(store.clone(), config.bucket.clone())
            .with_secondary(config.secondary_lock.clone());
        let states = StateService::new(
            store.clone(),
            locks,
            StateRules {
                stale_write_guard: config.stale_write_guard,
                history_retention: config.history_retention,
                locking: config.locking.clone(),
            },
        )
        .with_events(Arc::new(ServerEvents {
            metrics: metrics.clone(),
            audit: config.audit.clone(),
            store: store.clone(),
            changes: ui.changes.clone(),
        }));
        AppState {
            inner: Arc::new(Inner {
                store,
                states,
                config,
                metrics,
                readiness: Readiness::default(),
                ui,
            }),
        }
    }

    pub(crate) fn store(&self) -> &dyn ObjectStore {
        &*self.inner.store
    }

    /// The state service every state read, write and delete goes through.
    pub(crate) fn states(&self) -> &StateService {
        &self.inner.states
    }

    pub(crate) fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// Returns once the background work this server started (history prunes) is done;
    /// `statelock serve` waits for it before it exits.
    pub async fn settled(&self) {
        self.inner.states.settled().await;
    }

    pub(crate) fn ui(&self) -> &crate::ui::UiShared {
        &self.inner.ui
    }

    /// Tells `/readyz` that the store passed its conditional-write self-test at start-up.
    pub fn store_checked(&self) {
        self.inner.readiness.mark_passed();
    }

    /// Answers every waiting LOCK and makes later ones fail at once; call when the server
    /// begins to shut down, so graceful shutdown is not held up by waiters.
    pub fn begin_shutdown(&self) {
        self.inner.states.begin_shutdown();
        // Open UI pages' event streams would hold graceful shutdown up as long as they last.
        self.inner.ui.changes.stop();
    }

    /// How many LOCK requests wait for `key`'s lock on this replica.
    pub fn lock_waiters(&self, key: &statelock_core::StateKey) -> usize {
        self.inner.states.lock_waiters(key)
    }
}
