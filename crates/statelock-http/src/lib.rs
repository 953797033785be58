//! The Terraform/OpenTofu `http` backend (spec §4), served over S3-native `.tflock` locks.
//!
//! One URL per state, `/v1/states/<key>`, serves `address`, `lock_address` and
//! `unlock_address`: GET, POST/PUT, DELETE, and the extension methods LOCK and UNLOCK.
//! Clients that cannot send extension methods use `/v1/locks/<key>` instead: PUT or POST
//! there locks, DELETE there unlocks, with the same bodies and answers.
//!
//! History and its JSON API live under `/v1/api/` (see `api`): `GET /v1/api/states`,
//! `GET /v1/api/states/<key>/versions`, `GET /v1/api/states/<key>/versions/<id>`,
//! `GET /v1/api/states/<key>/diff?from=<id>&to=<id|current>` and
//! `POST /v1/api/states/<key>/rollback?to=<id>[&force=true]`. Every accepted write is kept as a
//! version under `.statelock/history/<key>/`; keys under `.statelock/` are refused as states.
//!
//! Module map:
//! - `endpoint`: (method, path) → which state and which action, or a 400/404/405.
//! - `body`: reading request bodies under a size limit (413).
//! - `lock`: LOCK and UNLOCK, one `statelock_state::StateService` call each (waiting in line,
//!   taking over stuck locks and removing locks live there); `?wait=` is parsed here.
//! - `state`: GET, write and DELETE of the state object, one `statelock_state::StateService`
//!   call each (fencing, the stale-write guard and the history live there).
//! - `error`: every refusal, with its status code and body.
//! - `api`: the JSON history API.
//! - `auth`: principals, tokens and grants; which request needs which permission.
//! - `audit`: the audit trail of changes and refusals (file, stdout, store).
//! - `events`: the state service's events turned into metrics and audit lines.
//! - `metrics`, `health`: `/metrics` (Prometheus), `/healthz` and `/readyz`.
//! - `ui`: the web UI at `/ui/` (server-rendered pages over the same service calls, sessions,
//!   live updates).
//! - [`s3`]: the S3-compatible front (Terraform's `backend "s3"` with `use_lockfile`), a
//!   hyper service of its own over the same `AppState`, for a listener of its own.
//!
//! This crate knows HTTP and Terraform's JSON; it knows nothing about which store it runs on.

mod api;
mod app;
pub mod audit;
pub mod auth;
mod body;
mod endpoint;
mod error;
mod events;
mod health;
mod lock;
mod metrics;
mod routes;
pub mod s3;
mod state;
mod ui;

pub use app::{AppState, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_STATE_SIZE, HttpConfig};
pub use routes::router;
pub use statelock_state::{DEFAULT_LOCK_POLL_INTERVAL, LockPolicy, MAX_LOCK_WAIT, parse_lock_wait};
