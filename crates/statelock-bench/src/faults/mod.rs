//! `statelock-bench faults`: a randomized fault run with an independent checker, the evidence
//! for "no lost write, never two holders" (issue 17).
//!
//! Real processes on 127.0.0.1: 2–3 `statelock serve` replicas on one versioned SeaweedFS
//! bucket (reached through a TCP proxy that adds latency and loses replies), or on one local
//! directory for the single-host case; clients of three kinds (`clients`); faults on a seeded
//! schedule (`schedule`), one at a time; every operation recorded (`record`); at the end the
//! store is read back and judged by `check`, and a report is printed (`report`).
//!
//! The module map: `cluster` (replicas, store, proxy), `clients`, `schedule`, `record`,
//! `doc` (the state bodies), `check`, `report`, `proxy`.

mod check;
mod clients;
mod cluster;
mod doc;
mod proxy;
mod record;
mod report;
mod schedule;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

use clients::{Client, Ctx, Pending};
use cluster::Cluster;
use record::{ClientKind, Recorder};
use schedule::{FaultKind, Schedule};

/// Where the replicas keep their states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// One versioned SeaweedFS bucket, behind the fault proxy.
    Seaweedfs,
    /// One local directory shared by the replicas (single host; no store faults).
    Local,
}

/// `statelock-bench faults` options.
#[derive(Args, Debug, Clone)]
pub struct FaultArgs {
    /// How long clients run under faults (`90s`, `30m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Seed of the fault schedule and of the clients' choices (default: from the clock,
    /// printed so the run can be replayed).
    #[arg(long)]
    pub seed: Option<u64>,

    #[arg(long, value_enum, default_value = "seaweedfs")]
    pub store: StoreKind,

    /// `statelock serve` replicas.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,

    /// Clients on the `http` backend (fenced writes).
    #[arg(long, default_value_t = 6)]
    pub http_clients: usize,

    /// Clients using `.tflock` on the bucket or directory directly.
    #[arg(long, default_value_t = 2)]
    pub direct_clients: usize,

    /// Clients through the replicas' S3 fronts.
    #[arg(long, default_value_t = 2)]
    pub s3_front_clients: usize,

    /// State keys the clients share (each apply picks one).
    #[arg(long, default_value_t = 2)]
    pub keys: usize,

    /// The replicas' `--lock-ttl`.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub lock_ttl: Duration,

    /// How long a LOCK waits (`?wait=`, the S3 front's `--lock-wait`, direct clients' retries).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub lock_wait: Duration,

    /// Longest pause, outage or latency window of one fault; must stay below the TTL (see
    /// RELIABILITY.md: a store outage longer than the TTL is the one thing the TTL cannot
    /// tell from a stuck client).
    #[arg(long, default_value = "2500ms", value_parser = parse_duration)]
    pub max_outage: Duration,

    /// Quiet time between faults: a random value between these two.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub gap_min: Duration,
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    pub gap_max: Duration,

    /// Stalled clients sleep from TTL + 1 s to TTL + 3 s instead of from just under the TTL:
    /// their POST then always comes after the takeover. Without it, stalls straddle the TTL
    /// and probe the takeover racing a write (see RELIABILITY.md, "Bugs").
    #[arg(long)]
    pub stalls_past_ttl: bool,

    /// Only these fault kinds (comma-separated); default: all the store supports.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,

    /// Environment for the replicas, `NAME=VALUE` (e.g. a test build's
    /// `STATELOCK_TEST_BREAK=fence-off`, to prove the checker catches it).
    #[arg(long = "replica-env", value_name = "NAME=VALUE")]
    pub replica_env: Vec<String>,

    /// Where logs, the operation record and the store data go (default: a temporary
    /// directory, removed after a passing run).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,

    /// Also write the report (Markdown) here.
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// The `statelock` binary (default: the one next to this binary).
    #[arg(long, env = "STATELOCK_BIN")]
    pub statelock: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|e| format!("{text}: {e}"));
    }
    statelock_core::parse_duration(text)
}

/// Runs the fault run; `Ok(true)` when the checker passed.
pub fn run(args: FaultArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(17, |d| d.as_nanos() as u64)
    });
    anyhow::ensure!(
        args.max_outage < args.lock_ttl,
        "--max-outage must stay below --lock-ttl"
    );
    anyhow::ensure!(
        args.replicas >= 1 && args.keys >= 1,
        "need replicas and keys"
    );
    let binary = match &args.statelock {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("statelock"),
    };
    let (work, _temp) = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("statelock-faults-")
                .tempdir()?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    let env: Vec<(String, String)> = args
        .replica_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .context("--replica-env takes NAME=VALUE")
        })
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "faults: seed {seed}, {:?} store, {} replicas, {}+{}+{} clients, {:?} under faults, work dir {}",
        args.store,
        args.replicas,
        args.http_clients,
        args.direct_clients,
        args.s3_front_clients,
        args.duration,
        work.display()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut cluster = Cluster::start(&args, &binary, &work, env, runtime.handle())?;
    let keys: Vec<String> = (0..args.keys)
        .map(|i| format!("faults/k{i}.tfstate"))
        .collect();
    let rec = Recorder::create(&work.join("operations.jsonl"))?;
    for key in &keys {
        cluster.seed_state(key, &rec)?;
    }

    let clients: Vec<ClientKind> = std::iter::repeat_n(ClientKind::Http, args.http_clients)
        .chain(std::iter::repeat_n(ClientKind::Direct, args.direct_clients))
        .chain(std::iter::repeat_n(
            ClientKind::S3Front,
            args.s3_front_clients,
        ))
        .collect();
    let http_indexes: Vec<usize> = (0..args.http_clients).collect();
    let ctx = Arc::new(Ctx {
        rec,
        replicas: RwLock::new(cluster.endpoints()),
        stop: AtomicBool::new(false),
        keys: keys.clone(),
        lock_wait: args.lock_wait,
        ttl: args.lock_ttl,
        stalls_past_ttl: args.stalls_past_ttl,
        direct: cluster.direct_store(),
        bucket: cluster.bucket().to_owned(),
        front_bucket: cluster::FRONT_BUCKET.to_owned(),
        front_store: cluster.front_store_builder(),
        runtime: runtime.handle().clone(),
        pending: Mutex::new(vec![Pending::None; clients.len()]),
        kills: AtomicU64::new(0),
        stalls: AtomicU64::new(0),
    });
    let started = Instant::now();
    let started_ms = record::now_ms();
    let threads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let ctx = ctx.clone();
            let client = Client::new(i, *kind, seed);
            std::thread::spawn(move || client.run(&ctx))
        })
        .collect();

    // Faults, one at a time, until the time is up.
    let mut kinds: Vec<FaultKind> = if args.faults.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    if args.store == StoreKind::Local {
        kinds.retain(|k| !k.needs_store_process());
    }
    if args.http_clients == 0 {
        kinds.retain(|k| *k != FaultKind::ClientStall);
    }
    let mut schedule = Schedule::new(seed, kinds, args.max_outage, (args.gap_min, args.gap_max));
    let mut injected: std::collections::BTreeMap<FaultKind, u64> = Default::default();
    while started.elapsed() < args.duration {
        let fault = schedule.next_fault();
        std::thread::sleep(
            fault
                .gap
                .min(args.duration.saturating_sub(started.elapsed())),
        );
        if started.elapsed() >= args.duration {
            break;
        }
        let done = match fault.kind {
            FaultKind::ClientKill => {
                let i = (fault.target % clients.len() as u64) as usize;
                ctx.pending.lock().expect("pending")[i] = Pending::Kill;
                true
            }
            FaultKind::ClientStall => {
                let i = http_indexes[(fault.target % http_indexes.len() as u64) as usize];
                ctx.pending.lock().expect("pending")[i] = Pending::Stall;
                true
            }
            _ => cluster.inject(&fault, &ctx)?,
        };
        if done {
            *injected.entry(fault.kind).or_default() += 1;
        }
    }
    let under_faults = started.elapsed();
    eprintln!("faults: time is up after {under_faults:.0?}; stopping the clients");
    ctx.stop.store(true, Ordering::Relaxed);
    cluster.heal(&ctx)?;
    for thread in threads {
        let _ = thread.join();
    }
    eprintln!("faults: clients stopped; reading the store back");
    let observed = cluster.observe(&keys, args.lock_ttl)?;
    let ops = ctx.rec.ops();
    let verdict = check::check(&ops, &observed, args.lock_ttl);
    let carried = report::Carried {
        kills: ctx.kills.load(Ordering::Relaxed),
        stalls: ctx.stalls.load(Ordering::Relaxed),
        lost_replies: cluster.lost_replies(),
    };
    let text = report::render(&report::Run {
        args: &args,
        seed,
        under_faults,
        ops: &ops,
        injected: &injected,
        carried: &carried,
        verdict: &verdict,
        work: &work,
        started_ms,
    });
    println!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text)?;
    }
    drop(cluster);
    if !verdict.passed()
        && let Some(temp) = _temp
    {
        // Keep the evidence of a failing run.
        let kept = temp.keep();
        eprintln!("faults: the work directory is kept at {}", kept.display());
    }
    Ok(verdict.passed())
}
