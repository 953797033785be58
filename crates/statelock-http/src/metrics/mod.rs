//! `/metrics` in the Prometheus text format (0.0.4), through `prometheus-client`.
//!
//! | metric                                   | what                                           |
//! |------------------------------------------|------------------------------------------------|
//! | `statelock_requests_total{operation,status}` | answered requests                          |
//! | `statelock_request_duration_seconds{operation}` | their latency (histogram)               |
//! | `statelock_lock_wait_seconds`            | how long granted or refused LOCKs waited       |
//! | `statelock_locks_held`                   | locks taken and not yet released through this server |
//! | `statelock_lock_conflicts_total`         | LOCKs answered 423 (held by someone else)      |
//! | `statelock_lock_takeovers_total`         | idle locks taken over (`--lock-ttl`)           |
//! | `statelock_lock_release_fallbacks_total` | lock objects removed (UNLOCK, force-unlock, rollback) by read, compare and plain delete, on a store whose conditional delete is missing or ignored |
//! | `statelock_store_operations_total{op,outcome}` | store calls: `ok`, `not_found`, `conflict`, `error` |
//! | `statelock_store_operation_duration_seconds{op}` | their latency (histogram)              |
//! | `statelock_store_errors_total{op}`       | store calls that failed (outcome `error`)      |
//! | `statelock_state_size_bytes`             | sizes of accepted state writes (histogram)     |
//!
//! Labels never carry state keys or principals: their number is unbounded, and key names
//! can be sensitive; the audit trail has them. `operation` is the request kind (`read`,
//! `write`, `delete`, `lock`, `unlock`, `api`, `health`, `metrics`, `other`).

mod store;

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::endpoint::{Action, Endpoint};

pub use store::MeteredStore;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreOpLabels {
    op: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<OperationLabels>,
    lock_wait_seconds: Histogram,
    locks_held: Gauge,
    lock_conflicts: Counter,
    lock_takeovers: Counter,
    release_fallbacks: Counter,
    store_operations: Family<StoreLabels, Counter>,
    store_seconds: HistogramFamily<StoreOpLabels>,
    store_errors: Family<StoreOpLabels, Counter>,
    state_size_bytes: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// 1 ms to about 65 s: store calls and requests, including LOCKs that wait.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("statelock");
        let requests = Family::default();
        registry.register("requests", "Answered requests", requests.clone());
        let request_seconds = HistogramFamily::new_with_constructor(latency_buckets as fn() -> _);
        registry.register(
            "request_duration_seconds",
            "Request latency",
            request_seconds.clone(),
        );
        // A LOCK may wait up to an hour.
        let lock_wait_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 13));
        registry.register(
            "lock_wait_seconds",
            "Time a LOCK waited before it was granted or refused",
            lock_wait_seconds.clone(),
        );
        let locks_held = Gauge::default();
        registry.register(
            "locks_held",
            "Locks taken and not yet released through this server",
            locks_held.clone(),
        );
        let lock_conflicts = Counter::default();
        registry.register(
            "lock_conflicts",
            "LOCKs refused because someone else holds the lock",
            lock_conflicts.clone(),
        );
        let lock_takeovers = Counter::default();
        registry.register(
            "lock_takeovers",
            "Idle locks taken over (--lock-ttl)",
            lock_takeovers.clone(),
        );
        let release_fallbacks = Counter::default();
        registry.register(
            "lock_release_fallbacks",
            "Lock releases by read, compare and plain delete (no working conditional delete)",
            release_fallbacks.clone(),
        );
        let store_operations = Family::default();
        registry.register(
            "store_operations",
            "Store calls by operation and outcome",
            store_operations.clone(),
        );
        let store_seconds = HistogramFamily::new_with_constructor(latency_buckets as fn() -> _);
        registry.register(
            "store_operation_duration_seconds",
            "Store call latency",
            store_seconds.clone(),
        );
        let store_errors = Family::default();
        registry.register(
            "store_errors",
            "Store calls that failed",
            store_errors.clone(),
        );
        // 1 KiB to 64 MiB (the default size limit).
        let state_size_bytes = Histogram::new(exponential_buckets(1024.0, 4.0, 9));
        registry.register(
            "state_size_bytes",
            "Sizes of accepted state writes",
            state_size_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            lock_wait_seconds,
            locks_held,
            lock_conflicts,
            lock_takeovers,
            release_fallbacks,
            store_operations,
            store_seconds,
            store_errors,
            state_size_bytes,
        }
    }

    pub fn lock_waited(&self, waited: Duration) {
        self.lock_wait_seconds.observe(waited.as_secs_f64());
    }

    pub fn lock_taken(&self) {
        self.locks_held.inc();
    }

    pub fn lock_released(&self) {
        // Never below zero: a release through this server of a lock taken elsewhere.
        if self.locks_held.get() > 0 {
            self.locks_held.dec();
        }
    }

    pub fn lock_conflict(&self) {
        self.lock_conflicts.inc();
    }

    pub fn lock_takeover(&self) {
        self.lock_takeovers.inc();
    }

    /// Counts a lock object deleted by the read-compare-delete fallback.
    pub fn lock_deleted(&self, method: &statelock_lock::DeleteMethod) {
        if let statelock_lock::DeleteMethod::Plain { .. } = method {
            self.release_fallbacks.inc();
        }
    }

    pub fn state_written(&self, size: usize) {
        self.state_size_bytes.observe(size as f64);
    }

    fn store_call(&self, op: &'static str, outcome: &'static str, took: Duration) {
        self.store_operations
            .get_or_create(&StoreLabels { op, outcome })
            .inc();
        self.store_seconds
            .get_or_create(&StoreOpLabels { op })
            .observe(took.as_secs_f64());
        if outcome == "error" {
            self.store_errors.get_or_create(&StoreOpLabels { op }).inc();
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// `GET /metrics`.
pub async fn serve(State(app): State<AppState>) -> Response {
    let mut response = app.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    response
}

/// axum middleware counting and timing every request.
pub async fn count(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let operation = operation(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = app.metrics();
    let status = response.status();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            operation,
            status: status.as_u16(),
        })
        .inc();
    metrics
        .request_seconds
        .get_or_create(&OperationLabels { operation })
        .observe(started.elapsed().as_secs_f64());
    if operation == "lock" && status == StatusCode::LOCKED {
        metrics.lock_conflict();
    }
    response
}

fn operation(request: &Request) -> &'static str {
    let path = request.uri().path();
    match path {
        "/metrics" => return "metrics",
        "/healthz" | "/readyz" => return "health",
        _ if path.starts_with(crate::api::API_PREFIX) => return "api",
        _ => {}
    }
    match Endpoint::parse(request.method(), path).map(|e| e.action) {
        Ok(Action::ReadState) => "read",
        Ok(Action::WriteState) => "write",
        Ok(Action::DeleteState) => "delete",
        Ok(Action::Lock) => "lock",
        Ok(Action::Unlock) => "unlock",
        Err(_) => "other",
    }
}
