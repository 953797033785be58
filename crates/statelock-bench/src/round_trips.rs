//! Scenario 6: store requests per Terraform request, counted through the storage port, for both
//! fronts, in-process. The `http` front plays Terraform 1.0.3's `apply` (LOCK, GET, POST `?ID=`,
//! UNLOCK); the S3 front Terraform 1.15.5's `backend "s3"` with `use_lockfile` (PutObject of
//! the `.tflock`, HeadObject and GetObject of the state, PutObject of the state, GetObject and
//! DeleteObject of the `.tflock`), driven by the real `aws-sdk-s3` client over 127.0.0.1. Each
//! plays twice, on a new state and on the existing one, and each sequence runs twice:
//!
//! - over a counting `FaultyStore` around the local-disk store: the calls of each kind, and the
//!   flushes to disk (`fsync`) asked for;
//! - over a `FaultyStore` around the memory store that adds [`LATENCY`] to every call: the
//!   request's time over that latency is how many calls it made *one after another*, the
//!   sequential round trips that cost tens of milliseconds each on S3 (calls issued at once
//!   overlap and count once).
//!
//! Then [`apply_cost`]: whole applies on one store (local disk, or a bucket on moto) against the
//! floor, the same four requests made directly to the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use statelock_core::LockInfo;
use statelock_http::{AppState, HttpConfig, router};
use statelock_store::{
    DeleteMode, FaultyStore, LocalStore, MemoryStore, ObjectStore, Op, PutMode, PutOptions,
};
use tower::ServiceExt;

use crate::report::Table;
use crate::state_doc::StateDoc;
use crate::stats::{Samples, fmt_duration};

/// Added to every store call in the sequential pass: long against the in-memory work, so
/// the request time over it, rounded down, is the number of calls made one after another.
const LATENCY: Duration = Duration::from_millis(30);

const BUCKET: &str = "bench";

/// Which front a request went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    Http,
    S3,
}

impl Front {
    fn label(self) -> &'static str {
        match self {
            Front::Http => "http (Terraform 1.0.3)",
            Front::S3 => "S3 (Terraform 1.15.5)",
        }
    }
}

/// Store calls made by one Terraform request.
pub struct Count {
    pub front: Front,
    pub request: &'static str,
    pub first_apply: bool,
    pub calls: Vec<(Op, usize)>,
    /// Calls made one after another (see the module doc).
    pub sequential: usize,
    /// Flushes to disk the local store was asked for.
    pub fsyncs: u64,
}

impl Count {
    pub fn total(&self) -> usize {
        self.calls.iter().map(|(_, n)| n).sum()
    }
}

/// One request of a sequence: its name, and the status it must answer.
struct Step {
    name: &'static str,
    expected: u16,
}

/// Runs both fronts' sequences and counts each request's store calls.
pub fn measure(dir: &std::path::Path) -> anyhow::Result<Vec<Count>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut counts = Vec::new();
        for front in [Front::Http, Front::S3] {
            let local: Arc<dyn ObjectStore> =
                Arc::new(LocalStore::open(dir.join(format!("{front:?}")))?);
            let counted = Arc::new(FaultyStore::new(local));
            let timed = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
            timed.set_latency(LATENCY);
            let by_count = play(front, counted.clone(), |store| {
                let fsyncs = LocalStore::fsync_counts().0;
                store.reset_counts();
                move |store: &FaultyStore, _took: Duration| {
                    (store.call_counts(), LocalStore::fsync_counts().0 - fsyncs)
                }
            })
            .await?;
            let by_time = play(front, timed.clone(), |_| {
                |_: &FaultyStore, took: Duration| {
                    // Floor: the in-memory work only ever adds to the latencies.
                    (took.as_secs_f64() / LATENCY.as_secs_f64()).floor() as usize
                }
            })
            .await?;
            for ((step, first_apply, (calls, fsyncs)), (_, _, sequential)) in
                by_count.into_iter().zip(by_time)
            {
                counts.push(Count {
                    front,
                    request: step,
                    first_apply,
                    calls,
                    sequential,
                    fsyncs,
                });
            }
        }
        Ok(counts)
    })
}

/// Plays `front`'s two applies over `store`; `before` runs before each request and returns
/// what turns the store and the request's time into its figure.
async fn play<T, B, A>(
    front: Front,
    store: Arc<FaultyStore>,
    mut before: B,
) -> anyhow::Result<Vec<(&'static str, bool, T)>>
where
    B: FnMut(&FaultyStore) -> A,
    A: FnOnce(&FaultyStore, Duration) -> T,
{
    let mut config = HttpConfig::new(BUCKET);
    config.history_retention = statelock_state_retention();
    let app = AppState::new(store.clone(), config);
    let driver = Driver::new(front, app.clone()).await?;
    let mut doc = StateDoc::new(1024, "bench-roundtrips");
    let mut out = Vec::new();
    for (serial, first_apply) in [(0u64, true), (1, false)] {
        let info = LockInfo::new("OperationTypeApply", "bench-roundtrips", driver.version());
        doc.set_serial(serial);
        for step in driver.steps(first_apply) {
            // A prune started by the last write must not land in this request's figures.
            app.settled().await;
            let after = before(&store);
            let t = Instant::now();
            let status = driver.run(step.name, &info, doc.bytes()).await?;
            let took = t.elapsed();
            anyhow::ensure!(
                status == step.expected,
                "{:?} {}: expected {}, got {status}",
                front,
                step.name,
                step.expected
            );
            out.push((step.name, first_apply, after(&store, took)));
        }
    }
    Ok(out)
}

/// The server's default retention, so the figures are those of a default server.
fn statelock_state_retention() -> usize {
    HttpConfig::new(BUCKET).history_retention
}

const HTTP_PATH: &str = "/v1/states/roundtrips/terraform.tfstate";
const S3_KEY: &str = "roundtrips/terraform.tfstate";
const S3_LOCK: &str = "roundtrips/terraform.tfstate.tflock";

/// Sends one front's requests.
enum Driver {
    Http(Router),
    S3(Client),
}

impl Driver {
    async fn new(front: Front, app: AppState) -> anyhow::Result<Driver> {
        Ok(match front {
            Front::Http => Driver::Http(router(app)),
            Front::S3 => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                let service = statelock_http::s3::s3_service(app);
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        let service = service.clone();
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
                let config = aws_sdk_s3::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("us-east-1"))
                    .endpoint_url(format!("http://{addr}"))
                    .force_path_style(true)
                    .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
                    .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
                    .build();
                Driver::S3(Client::from_conf(config))
            }
        })
    }

    fn version(&self) -> &'static str {
        match self {
            Driver::Http(_) => "1.0.3",
            Driver::S3(_) => "1.15.5",
        }
    }

    fn steps(&self, first_apply: bool) -> Vec<Step> {
        let step = |name, expected| Step { name, expected };
        match self {
            Driver::Http(_) => vec![
                step("LOCK", 200),
                step("GET", if first_apply { 404 } else { 200 }),
                step("POST ?ID=", 200),
                step("UNLOCK", 200),
            ],
            Driver::S3(_) if first_apply => vec![
                step("PutObject .tflock", 200),
                step("HeadObject", 404),
                step("PutObject state", 200),
                step("GetObject .tflock", 200),
                step("DeleteObject .tflock", 204),
            ],
            Driver::S3(_) => vec![
                step("PutObject .tflock", 200),
                step("HeadObject", 200),
                step("GetObject state", 200),
                step("PutObject state", 200),
                step("GetObject .tflock", 200),
                step("DeleteObject .tflock", 204),
            ],
        }
    }

    async fn run(&self, step: &str, info: &LockInfo, state: &[u8]) -> anyhow::Result<u16> {
        match self {
            Driver::Http(app) => {
                let (method, uri, body) = match step {
                    "LOCK" => ("LOCK", HTTP_PATH.to_owned(), info.encode().into_bytes()),
                    "GET" => ("GET", HTTP_PATH.to_owned(), Vec::new()),
                    "POST ?ID=" => (
                        "POST",
                        format!("{HTTP_PATH}?ID={}", info.id),
                        state.to_vec(),
                    ),
                    _ => ("UNLOCK", HTTP_PATH.to_owned(), info.encode().into_bytes()),
                };
                let request = Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::from(body))?;
                Ok(app.clone().oneshot(request).await?.status().as_u16())
            }
            Driver::S3(client) => {
                let mut lock = info.clone();
                lock.path = format!("{BUCKET}/{S3_KEY}");
                let status = |r: Result<(), u16>| Ok(r.map_or_else(|s| s, |()| 200));
                match step {
                    "PutObject .tflock" => status(
                        client
                            .put_object()
                            .bucket(BUCKET)
                            .key(S3_LOCK)
                            .if_none_match("*")
                            .content_type("application/json")
                            .body(ByteStream::from(lock.encode().into_bytes()))
                            .send()
                            .await
                            .map(drop)
                            .map_err(code),
                    ),
                    "HeadObject" => status(
                        client
                            .head_object()
                            .bucket(BUCKET)
                            .key(S3_KEY)
                            .send()
                            .await
                            .map(drop)
                            .map_err(code),
                    ),
                    "GetObject state" | "GetObject .tflock" => {
                        let key = if step == "GetObject state" {
                            S3_KEY
                        } else {
                            S3_LOCK
                        };
                        match client
                            .get_object()
                            .bucket(BUCKET)
                            .key(key)
                            .range("bytes=0-5242879")
                            .send()
                            .await
                        {
                            Ok(out) => {
                                out.body.collect().await?;
                                // A ranged read of the whole object answers 206.
                                Ok(200)
                            }
                            Err(e) => Ok(code(e)),
                        }
                    }
                    "PutObject state" => status(
                        client
                            .put_object()
                            .bucket(BUCKET)
                            .key(S3_KEY)
                            .content_type("application/json")
                            .body(ByteStream::from(Bytes::copy_from_slice(state)))
                            .send()
                            .await
                            .map(drop)
                            .map_err(code),
                    ),
                    _ => Ok(
                        match client
                            .delete_object()
                            .bucket(BUCKET)
                            .key(S3_LOCK)
                            .send()
                            .await
                        {
                            Ok(_) => 204,
                            Err(e) => code(e),
                        },
                    ),
                }
            }
        }
    }
}

/// The HTTP status of a failed SDK call (0 when there was no answer).
fn code<E>(e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

/// Why a request needs more than its one store call, as the server is written today.
fn why(front: Front, request: &str, first_apply: bool) -> &'static str {
    match (front, request) {
        (Front::Http, "POST ?ID=") | (Front::S3, "PutObject state") if first_apply => {
            "round trip 1: the lock's get (fence) and the state's head (guard, the expected \
             version) at once; 2: the history version's put (one object, metadata attached; a \
             new state's history is listed alongside, so its ID sorts after any earlier \
             version); 3: the compare-and-swap put of the state, tagged"
        }
        (Front::Http, "POST ?ID=") | (Front::S3, "PutObject state") => {
            "round trip 1: the lock's get (fence) and the state's head (the guard reads serial, \
             lineage and digests from the state's tag; the swap's version) at once; 2: the \
             history version's put (one object, its metadata attached; no listing, the tag \
             names the last version); 3: the compare-and-swap put of the state, tagged"
        }
        (Front::Http, "UNLOCK") => {
            "get of the lock (the ID must match), then delete only if its version is unchanged, \
             so a lock taken over meanwhile is never removed"
        }
        (Front::S3, "DeleteObject .tflock") => {
            "get of the lock (whose record is released, named in the audit trail), then delete \
             only if its version is unchanged, so a lock taken over meanwhile is never removed"
        }
        _ => "",
    }
}

/// The round-trip table.
pub fn table(counts: &[Count]) -> Table {
    let mut table = Table::new(&[
        "Front",
        "Request",
        "State",
        "get",
        "head",
        "put",
        "delete",
        "list",
        "Total",
        "Sequential round trips",
        "fsyncs (local disk)",
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
            c.front.label().to_owned(),
            c.request.to_owned(),
            if c.first_apply { "new" } else { "existing" }.to_owned(),
            n(Op::Get),
            n(Op::Head),
            n(Op::Put),
            n(Op::Delete),
            n(Op::List),
            c.total().to_string(),
            c.sequential.to_string(),
            c.fsyncs.to_string(),
            "1".to_owned(),
            match why(c.front, c.request, c.first_apply) {
                _ if c.total() <= 1 => "-".to_owned(),
                "" => "-".to_owned(),
                why => why.to_owned(),
            },
        ]);
    }
    table
}

/// Whole applies on one store against the floor.
pub struct ApplyCost {
    pub store: String,
    pub applies: usize,
    /// Store requests per apply (mean).
    pub requests: f64,
    pub apply: Samples,
    /// The same four requests (create the lock, get the state, swap the state, delete the
    /// lock) made directly to the store.
    pub floor: Samples,
}

/// `applies` Terraform-shaped applies (LOCK, GET, POST `?ID=`, UNLOCK) on an existing state
/// through the `http` app in-process over `store`, each followed by the floor's four raw
/// calls, so drift hits both.
pub fn apply_cost(
    label: &str,
    store: Arc<dyn ObjectStore>,
    applies: usize,
) -> anyhow::Result<ApplyCost> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let counted = Arc::new(FaultyStore::new(store.clone()));
        let app = AppState::new(counted.clone(), HttpConfig::new(BUCKET));
        let driver = Driver::new(Front::Http, app.clone()).await?;
        let mut doc = StateDoc::new(1024, "bench-apply");
        let (mut apply, mut floor) = (Samples::default(), Samples::default());
        let mut requests = 0;
        let raw_state = "apply-floor/terraform.tfstate";
        let raw_lock = "apply-floor/terraform.tfstate.tflock";
        let mut raw_version = store
            .put(
                raw_state,
                Bytes::copy_from_slice(doc.bytes()),
                PutOptions::json(PutMode::Overwrite),
            )
            .await?
            .version;
        for serial in 0..=applies as u64 {
            doc.set_serial(serial);
            let info = LockInfo::new("OperationTypeApply", "bench-apply", "1.0.3");
            app.settled().await;
            counted.reset_counts();
            let t = Instant::now();
            for step in driver.steps(false) {
                let status = driver.run(step.name, &info, doc.bytes()).await?;
                let ok = status == step.expected || (serial == 0 && step.name == "GET");
                anyhow::ensure!(ok, "apply {serial}, {}: got {status}", step.name);
            }
            let took = t.elapsed();
            // The first apply creates the state; only the others are measured.
            if serial == 0 {
                continue;
            }
            apply.push(took);
            requests += counted.call_counts().iter().map(|(_, n)| n).sum::<usize>();
            let t = Instant::now();
            let lock = store
                .put(
                    raw_lock,
                    Bytes::from(info.encode()),
                    PutOptions::json(PutMode::Create),
                )
                .await?;
            store.get(raw_state).await?;
            raw_version = store
                .put(
                    raw_state,
                    Bytes::copy_from_slice(doc.bytes()),
                    PutOptions::json(PutMode::Update(raw_version)),
                )
                .await?
                .version;
            store
                .delete(raw_lock, DeleteMode::IfVersion(lock.version))
                .await?;
            floor.push(t.elapsed());
        }
        Ok(ApplyCost {
            store: label.to_owned(),
            applies,
            requests: requests as f64 / applies as f64,
            apply,
            floor,
        })
    })
}

/// The apply-cost table.
pub fn apply_table(costs: &[ApplyCost]) -> Table {
    let mut table = Table::new(&[
        "Store",
        "Applies",
        "Store requests per apply",
        "Floor",
        "Requests / floor",
        "Apply p50",
        "Floor p50 (4 raw calls)",
        "Time / floor (p50)",
    ]);
    for c in costs {
        table.row(vec![
            c.store.clone(),
            c.applies.to_string(),
            format!("{:.1}", c.requests),
            "4".to_owned(),
            format!("{:.2}×", c.requests / 4.0),
            fmt_duration(c.apply.p50()),
            fmt_duration(c.floor.p50()),
            format!(
                "{:.2}×",
                c.apply.p50().as_secs_f64() / c.floor.p50().as_secs_f64()
            ),
        ]);
    }
    table
}
