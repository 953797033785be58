//! `/healthz` (the process answers) and `/readyz` (it can do its job: the store answers, and
//! its conditional writes passed the self-test, without which locks would exclude nothing).
//!
//! The self-test is the start-up probe (`statelock_store::probe_conditional_writes`). `serve`
//! runs it before listening on remote stores and reports the result with
//! [`AppState::store_checked`]; otherwise the first `/readyz` runs it, and while it has not
//! passed, again at most every [`PROBE_RETRY`], so a scraper cannot make the server write to
//! the store on every request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use statelock_store::{PROBE_PREFIX, StoreError};

use crate::app::AppState;

/// How long a failed self-test is remembered before `/readyz` tries again.
pub const PROBE_RETRY: Duration = Duration::from_secs(10);

/// Longest a store call of `/readyz` may take before the store counts as unreachable.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/readyz` remembers between calls.
#[derive(Debug, Default)]
pub struct Readiness {
    probe_passed: AtomicBool,
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl Readiness {
    pub fn mark_passed(&self) {
        self.probe_passed.store(true, Ordering::SeqCst);
    }
}

/// `GET /healthz`.
pub async fn live() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 `ready`, or 503 saying why not.
pub async fn ready(State(app): State<AppState>) -> Response {
    match check(&app).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn check(app: &AppState) -> Result<(), String> {
    let readiness = app.readiness();
    if !readiness.probe_passed.load(Ordering::SeqCst) {
        self_test(app, readiness).await?;
    }
    let scratch = format!("{PROBE_PREFIX}readyz");
    match tokio::time::timeout(STORE_TIMEOUT, app.store().head(&scratch)).await {
        Ok(Ok(_) | Err(StoreError::NotFound { .. })) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the store is unreachable: {}",
            statelock_store::error_chain(&e)
        )),
        Err(_) => Err(format!(
            "the store did not answer within {}s",
            STORE_TIMEOUT.as_secs()
        )),
    }
}

async fn self_test(app: &AppState, readiness: &Readiness) -> Result<(), String> {
    {
        let last = readiness
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((at, why)) = &*last
            && at.elapsed() < PROBE_RETRY
        {
            return Err(why.clone());
        }
    }
    let why = match statelock_store::probe_conditional_writes(app.store()).await {
        Ok(report) if report.serve_can_run() => {
            readiness.mark_passed();
            return Ok(());
        }
        Ok(report) => format!(
            "the store's conditional-write self-test failed ({}):\n{report}",
            report.serve_verdict()
        ),
        Err(e) => format!(
            "the store's conditional-write self-test could not run: {}",
            statelock_store::error_chain(&e)
        ),
    };
    *readiness
        .last_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), why.clone()));
    Err(why)
}
