//! Micro-benchmarks on `std::time` (`cargo bench -p statelock-bench`): the lock record codec
//! and the local-disk store's create and compare-and-swap, the operations every LOCK and state
//! write is built from. Prints median and p99 per operation; no benchmark framework needed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use statelock_core::LockInfo;
use statelock_store::{DeleteMode, LocalStore, ObjectStore, PutMode, PutOptions};

/// Runs `f` `iterations` times after a short warm-up and prints its median and p99.
fn bench(name: &str, iterations: usize, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{name:<40} median {:>10.2?}  p99 {:>10.2?}  ({iterations} iterations)",
        at(0.5),
        at(0.99)
    );
}

fn main() {
    // `cargo test --benches` passes `--bench`-less arguments; a quick pass keeps it short.
    let quick =
        std::env::args().any(|a| a == "--quick") || !std::env::args().any(|a| a == "--bench");
    let n = if quick { 50 } else { 20_000 };
    // Every local-store write is fsynced: milliseconds each, so fewer iterations.
    let io = if quick { 20 } else { 300 };

    let info = LockInfo::new("OperationTypeApply", "ci@runner-42", "1.0.3");
    let encoded = info.encode();
    bench("lock record: encode", n, || {
        black_box(black_box(&info).encode());
    });
    bench("lock record: decode", n, || {
        black_box(LockInfo::decode(black_box(encoded.as_bytes())).unwrap());
    });

    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::open(dir.path()).expect("open the local store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let record = Bytes::from(encoded);
    bench("local store: create + conditional delete", io, || {
        rt.block_on(async {
            let meta = store
                .put(
                    "bench.tflock",
                    record.clone(),
                    PutOptions::json(PutMode::Create),
                )
                .await
                .unwrap();
            store
                .delete("bench.tflock", DeleteMode::IfVersion(meta.version))
                .await
                .unwrap();
        });
    });
    let state = Bytes::from(vec![b'x'; 1024]);
    let mut version = rt
        .block_on(store.put(
            "bench.tfstate",
            state.clone(),
            PutOptions::json(PutMode::Overwrite),
        ))
        .unwrap()
        .version;
    bench("local store: compare-and-swap put, 1 KiB", io, || {
        version = rt
            .block_on(store.put(
                "bench.tfstate",
                state.clone(),
                PutOptions::json(PutMode::Update(version.clone())),
            ))
            .unwrap()
            .version;
    });
    bench("local store: get, 1 KiB", io, || {
        black_box(rt.block_on(store.get("bench.tfstate")).unwrap());
    });
}
