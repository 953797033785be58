//! Scenario 6: store requests per Terraform request, counted through the storage port. The HTTP
//! app runs in-process over a counting `FaultyStore` around a local-disk store, and plays
//! Terraform 1.0.3's `apply` sequence (LOCK, GET, POST `?ID=`, UNLOCK) twice: on a new state and
//! on an existing one.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use statelock_core::LockInfo;
use statelock_http::{AppState, HttpConfig, router};
use statelock_store::{FaultyStore, LocalStore, ObjectStore, Op};
use tower::ServiceExt;

use crate::report::Table;
use crate::state_doc::StateDoc;

/// Store calls made by one Terraform request.
pub struct Count {
    pub request: &'static str,
    pub first_apply: bool,
    pub calls: Vec<(Op, usize)>,
}

impl Count {
    pub fn total(&self) -> usize {
        self.calls.iter().map(|(_, n)| n).sum()
    }
}

/// Runs two applies and counts each request's store calls.
pub fn measure(dir: &std::path::Path) -> anyhow::Result<Vec<Count>> {
    let local: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir)?);
    let store = Arc::new(FaultyStore::new(local));
    let app = router(AppState::new(store.clone(), HttpConfig::new("bench")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let path = "/v1/states/roundtrips/terraform.tfstate";
    let mut doc = StateDoc::new(1024, "bench-roundtrips");
    let mut counts = Vec::new();
    for (apply, first_apply) in [(0u64, true), (1, false)] {
        let info = LockInfo::new("OperationTypeApply", "bench-roundtrips", "1.0.3");
        let lock = info.encode();
        doc.set_serial(apply);
        let write = format!("{path}?ID={}", info.id);
        let steps: [(&'static str, &str, String, Vec<u8>, u16); 4] = [
            (
                "LOCK",
                "LOCK",
                path.to_owned(),
                lock.clone().into_bytes(),
                200,
            ),
            (
                "GET",
                "GET",
                path.to_owned(),
                Vec::new(),
                if first_apply { 404 } else { 200 },
            ),
            ("POST ?ID=", "POST", write, doc.bytes().to_vec(), 200),
            ("UNLOCK", "UNLOCK", path.to_owned(), lock.into_bytes(), 200),
        ];
        for (name, method, uri, body, expected) in steps {
            store.reset_counts();
            let status = rt.block_on(call(&app, method, &uri, body))?;
            anyhow::ensure!(
                status == expected,
                "{name}: expected {expected}, got {status}"
            );
            counts.push(Count {
                request: name,
                first_apply,
                calls: store.call_counts(),
            });
        }
    }
    Ok(counts)
}

async fn call(app: &Router, method: &str, uri: &str, body: Vec<u8>) -> anyhow::Result<u16> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))?;
    let response = app.clone().oneshot(request).await?;
    Ok(response.status().as_u16())
}

/// Why a request needs more than its one store call, as the server is written today.
fn why(request: &str) -> &'static str {
    match request {
        "LOCK" => {
            "one create of `<key>.tflock` (If-None-Match); nothing else when the lock is free"
        }
        "GET" => "one get of the state",
        "POST ?ID=" => {
            "fence: get of the lock (the writer must hold it); stale-write guard: get of the \
             current state (serial, lineage, identical bytes); history: list of the state's \
             versions, then put of the version's metadata and body (stored before the state, so \
             no accepted write is missing from it); then the compare-and-swap put of the state"
        }
        "UNLOCK" => {
            "get of the lock (the ID must match), then delete only if its version is unchanged, \
             so a lock taken over meanwhile is never removed"
        }
        _ => "",
    }
}

/// The round-trip table.
pub fn table(counts: &[Count]) -> Table {
    let mut table = Table::new(&[
        "Request",
        "State",
        "get",
        "head",
        "put",
        "delete",
        "list",
        "Total",
        "Minimum",
        "Why the extra ones",
    ]);
    for c in counts {
        let n = |op: Op| {
            c.calls
                .iter()
                .find(|(o, _)| *o == op)
                .map_or(0, |(_, n)| *n)
                .to_string()
        };
        table.row(vec![
            c.request.to_owned(),
            if c.first_apply { "new" } else { "existing" }.to_owned(),
            n(Op::Get),
            n(Op::Head),
            n(Op::Put),
            n(Op::Delete),
            n(Op::List),
            c.total().to_string(),
            "1".to_owned(),
            if c.total() > 1 {
                why(c.request).to_owned()
            } else {
                "-".to_owned()
            },
        ]);
    }
    table
}
