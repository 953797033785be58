//! Scenario 3: what the server adds over the raw store call, per operation, measured in the
//! same run on the same disk: LOCK+UNLOCK against a create and a conditional delete of the
//! `.tflock` object, GET against a store get, POST against a compare-and-swap put.

use std::time::Instant;

use bytes::Bytes;
use statelock_core::LockInfo;
use statelock_store::{DeleteMode, ObjectStore, PutMode, PutOptions};

use crate::client::Client;
use crate::report::Table;
use crate::server::Server;
use crate::state_doc::StateDoc;
use crate::stats::{Samples, fmt_duration, fmt_mib};

/// Latencies of one operation, through the server and on the raw store.
pub struct Pair {
    pub operation: String,
    pub size: Option<usize>,
    pub server: Samples,
    pub raw: Samples,
}

/// Measures LOCK+UNLOCK, then GET and POST at each of `sizes` (bytes, with the iterations
/// for that size).
pub fn measure(
    server: &Server,
    raw: &dyn ObjectStore,
    lock_iterations: usize,
    sizes: &[(usize, usize)],
) -> anyhow::Result<Vec<Pair>> {
    let rt = runtime()?;
    let mut pairs = vec![lock_unlock(server, raw, &rt, lock_iterations)?];
    for &(size, iterations) in sizes {
        pairs.extend(get_and_post(server, raw, &rt, size, iterations)?);
    }
    Ok(pairs)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// LOCK+UNLOCK only, e.g. on the memory store, where no disk sync hides the server's own cost.
pub fn measure_lock(
    server: &Server,
    raw: &dyn ObjectStore,
    iterations: usize,
) -> anyhow::Result<Pair> {
    lock_unlock(server, raw, &runtime()?, iterations)
}

fn lock_unlock(
    server: &Server,
    raw: &dyn ObjectStore,
    rt: &tokio::runtime::Runtime,
    iterations: usize,
) -> anyhow::Result<Pair> {
    let mut client = Client::new(&server.addr, "overhead/lock.tfstate", "bench-overhead")?;
    let record = Bytes::from(LockInfo::new("OperationTypeApply", "bench-raw", "1.0.3").encode());
    let (mut through, mut direct) = (Samples::default(), Samples::default());
    for _ in 0..iterations {
        let t = Instant::now();
        client.lock_ok("")?;
        client.unlock()?;
        through.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(async {
            let key = "overhead/lock.tfstate.tflock";
            let meta = raw
                .put(key, record.clone(), PutOptions::json(PutMode::Create))
                .await?;
            raw.delete(key, DeleteMode::IfVersion(meta.version)).await
        })?;
        direct.push(t.elapsed());
    }
    Ok(Pair {
        operation: "LOCK+UNLOCK".to_owned(),
        size: None,
        server: through,
        raw: direct,
    })
}

/// GET and POST of a `size`-byte state; the POSTs run under one held lock with rising serials,
/// as Terraform writes, and the raw puts are compare-and-swaps on the version read.
fn get_and_post(
    server: &Server,
    raw: &dyn ObjectStore,
    rt: &tokio::runtime::Runtime,
    size: usize,
    iterations: usize,
) -> anyhow::Result<[Pair; 2]> {
    let key = format!("overhead/{size}.tfstate");
    let mut client = Client::new(&server.addr, &key, "bench-overhead")?;
    let mut doc = StateDoc::new(size, "bench-overhead");
    client.lock_ok("")?;
    client.write(doc.bytes())?;
    let mut version = rt
        .block_on(raw.put(
            &key,
            Bytes::copy_from_slice(doc.bytes()),
            PutOptions::json(PutMode::Overwrite),
        ))?
        .version;
    let (mut post, mut put) = (Samples::default(), Samples::default());
    let (mut get, mut raw_get) = (Samples::default(), Samples::default());
    for serial in 1..=iterations as u64 {
        doc.set_serial(serial);
        let t = Instant::now();
        client.write(doc.bytes())?;
        post.push(t.elapsed());
        // The copy into `Bytes` is the caller's business, not the store's: done before timing.
        let body = Bytes::copy_from_slice(doc.bytes());
        let t = Instant::now();
        version = rt
            .block_on(raw.put(&key, body, PutOptions::json(PutMode::Update(version))))?
            .version;
        put.push(t.elapsed());
        let t = Instant::now();
        let read = client.get()?;
        get.push(t.elapsed());
        anyhow::ensure!(read.len() == size, "GET returned {} bytes", read.len());
        drop(read);
        let t = Instant::now();
        let read = rt.block_on(raw.get(&key))?;
        raw_get.push(t.elapsed());
        drop(read);
    }
    client.unlock()?;
    Ok([
        Pair {
            operation: "GET".to_owned(),
            size: Some(size),
            server: get,
            raw: raw_get,
        },
        Pair {
            operation: "POST".to_owned(),
            size: Some(size),
            server: post,
            raw: put,
        },
    ])
}

/// The overhead table.
pub fn table(pairs: &[(&str, Pair)]) -> Table {
    let mut table = Table::new(&[
        "Store",
        "Operation",
        "State size",
        "Samples",
        "Server p50",
        "Server p99",
        "Raw store p50",
        "Raw store p99",
        "Overhead p50",
        "Server / raw (p50)",
    ]);
    for (store, p) in pairs {
        table.row(vec![
            (*store).to_owned(),
            p.operation.clone(),
            p.size.map_or("-".to_owned(), size_label),
            p.server.len().to_string(),
            fmt_duration(p.server.p50()),
            fmt_duration(p.server.p99()),
            fmt_duration(p.raw.p50()),
            fmt_duration(p.raw.p99()),
            format!("{:+.3} ms", overhead_ms(p)),
            crate::stats::ratio(p.server.p50(), p.raw.p50()),
        ]);
    }
    table
}

/// Server p50 minus raw p50, in milliseconds; negative when the noise favoured the server.
pub fn overhead_ms(p: &Pair) -> f64 {
    (p.server.p50().as_secs_f64() - p.raw.p50().as_secs_f64()) * 1000.0
}

/// `1 KiB`, `1 MiB`, `100 MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 * 1024 {
        fmt_mib(size as u64).replace(".0 ", " ")
    } else {
        format!("{} KiB", size / 1024)
    }
}
