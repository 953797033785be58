//! Runs the scenarios in order, turns their outcomes into sections, targets and headline
//! ratios, and writes the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use statelock_store::{LocalStore, MemoryStore};
use statelock_test_support::{S3Server, unique_name};

use crate::handoff::{self, Arm};
use crate::report::{self, Report, Section, Table, Target};
use crate::server::{Server, Store};
use crate::stats::{Samples, fine_ratio, fmt_duration, fmt_mib, fmt_ms, ratio};
use crate::{Args, Scenario};
use crate::{large, overhead, round_trips, s3_front, terraform, throughput};

const MIB: usize = 1024 * 1024;

/// What to run, after `--quick` is applied.
struct Settings {
    binary: PathBuf,
    clients: Vec<usize>,
    poll_max: usize,
    repetitions: usize,
    moto: bool,
    terraform_runs: usize,
    /// Sequential applies per arm in scenario 7's single-apply part; 0 skips scenario 7.
    s3_front_applies: usize,
    lock_iterations: usize,
    sizes: Vec<(usize, usize)>,
    throughput_levels: Vec<usize>,
    throughput_time: Duration,
    large_size: usize,
    large_rounds: usize,
    /// `--only`: empty means every scenario.
    only: Vec<Scenario>,
}

impl Settings {
    fn from_args(args: &Args) -> anyhow::Result<Settings> {
        let binary = match &args.statelock {
            Some(path) => path.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("this binary has no directory")?
                .join("statelock"),
        };
        anyhow::ensure!(
            binary.is_file(),
            "no statelock binary at {} (build it with `cargo build --release -p statelock`, or pass --statelock)",
            binary.display()
        );
        let large = args.large_mib * MIB;
        Ok(if args.quick {
            Settings {
                binary,
                clients: vec![1, 2],
                poll_max: 2,
                repetitions: 1,
                moto: false,
                terraform_runs: 0,
                // Like scenario 2, it needs moto and Terraform, which --quick never starts.
                s3_front_applies: 0,
                lock_iterations: 20,
                sizes: vec![(1024, 20), (64 * 1024, 5), (MIB, 2)],
                throughput_levels: vec![1, 4],
                throughput_time: Duration::from_millis(300),
                large_size: 2 * MIB,
                large_rounds: 2,
                only: args.only.clone(),
            }
        } else {
            Settings {
                binary,
                clients: args.clients.clone(),
                poll_max: args.poll_max_clients,
                repetitions: args.repetitions.max(1),
                moto: !args.no_moto,
                terraform_runs: args.terraform_runs,
                s3_front_applies: s3_front::SINGLE_APPLIES,
                lock_iterations: 300,
                sizes: vec![(1024, 200), (MIB, 30), (large, 5)],
                throughput_levels: vec![1, 16, 64],
                throughput_time: Duration::from_secs_f64(args.throughput_seconds),
                large_size: large,
                large_rounds: 3,
                only: args.only.clone(),
            }
        })
    }

    fn wanted(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }
}

/// Runs everything `args` asks for and writes the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let work = tempfile::Builder::new()
        .prefix("statelock-bench-")
        .tempdir()?;
    let load_before = report::load_average();
    let needs_moto = [Scenario::Handoff, Scenario::Terraform, Scenario::S3Front]
        .into_iter()
        .any(|s| settings.wanted(s));
    let moto = (settings.moto && needs_moto).then(|| {
        progress("starting moto");
        statelock_test_support::moto()
    });
    let mut out = Outcomes::default();
    let mut sections = Vec::new();
    let root = work.path();
    if settings.wanted(Scenario::Handoff) {
        sections.push(handoff_section(&settings, root, moto, &mut out)?);
    }
    if settings.wanted(Scenario::Terraform) {
        sections.push(terraform_section(&settings, root, moto, &mut out)?);
    }
    if settings.wanted(Scenario::Overhead) {
        sections.push(overhead_section(&settings, root, &mut out)?);
    }
    if settings.wanted(Scenario::Throughput) {
        sections.push(throughput_section(&settings, root, &mut out)?);
    }
    if settings.wanted(Scenario::Large) {
        sections.push(large_section(&settings, root, &mut out)?);
    }
    if settings.wanted(Scenario::RoundTrips) {
        progress("round trips");
        let mut trips = Section::new("6. Store round trips per Terraform request");
        trips.text(
            "The HTTP app in-process over a counting wrapper (`FaultyStore`) around the \
             local-disk store; Terraform 1.0.3's `apply` sequence on a new state, then on the \
             existing one. The minimum is one store request each. The extra ones buy fencing, \
             the stale-write guard, crash-safe history and safe release; \
             `--no-stale-write-guard` drops the guard's read.",
        );
        let counts = round_trips::measure(&root.join("round-trips"))?;
        trips.table(round_trips::table(&counts));
        sections.push(trips);
    }
    if settings.wanted(Scenario::S3Front) {
        sections.push(s3_front_section(&settings, root, moto, &mut out)?);
    }
    let report = Report {
        command: args.record_command.clone().unwrap_or_else(command_line),
        machine: report::machine(),
        date: date_utc(),
        load_note: format!(
            "1-minute load average {load_before} at the start and {} at the end \
             (other builds and tests shared the machine if it exceeds the CPU count); figures \
             are noisy, the ratios within this run are what to compare",
            report::load_average()
        ),
        targets: out
            .targets(&settings)
            .into_iter()
            .filter(|(scenario, _)| settings.wanted(*scenario))
            .map(|(_, target)| target)
            .collect(),
        headlines: out.headlines(),
        sections,
    };
    std::fs::write(&args.output, report.render())
        .with_context(|| format!("write {}", args.output.display()))?;
    progress(&format!("wrote {}", args.output.display()));
    Ok(())
}

/// Figures the targets and the closing note quote.
#[derive(Default)]
struct Outcomes {
    /// (store, N, total waiting with the queue, with polling, total time queue, polling).
    handoff: Vec<(String, usize, Duration, Duration, Duration, Duration)>,
    terraform: Vec<(String, Duration, usize)>,
    /// LOCK+UNLOCK: overhead in ms (signed), server p50, raw p50.
    lock_overhead: Option<(f64, Duration, Duration)>,
    throughput: Vec<(usize, f64, Duration)>,
    large: Option<(usize, f64)>,
    /// Scenario 7, one apply at a time: median through the S3 front, median directly.
    s3_single: Option<(Duration, Duration)>,
    /// Scenario 7, concurrent applies: (wall time, failures) through the front, then directly.
    s3_concurrent: Option<((Duration, usize), (Duration, usize))>,
}

impl Outcomes {
    /// Every target, with the scenario that measures it.
    fn targets(&self, settings: &Settings) -> Vec<(Scenario, Target)> {
        let mut targets = Vec::new();
        let handoff8 = self
            .handoff
            .iter()
            .find(|(store, n, ..)| store == "local disk" && *n == 8);
        targets.push((
            Scenario::Handoff,
            Target {
                what: "Hand-off at N = 8 (local disk): total waiting, polling / lock queue".into(),
                goal: "≥ 10×".into(),
                measured: handoff8.map_or("-".into(), |(_, _, q, p, ..)| {
                    format!(
                        "{} ({} vs {})",
                        ratio(*p, *q),
                        fmt_duration(*p),
                        fmt_duration(*q)
                    )
                }),
                met: handoff8.map(|(_, _, q, p, ..)| p.as_secs_f64() >= 10.0 * q.as_secs_f64()),
                if_missed: "Polling's waiting depends on where its retries fall relative to the \
                        releases and varies several-fold between runs (section 1); \
                        `--repetitions` averages over more runs.",
            },
        ));
        targets.push((
            Scenario::Overhead,
            Target {
                what: "LOCK+UNLOCK server overhead over the raw store call, p50 (local disk)"
                    .into(),
                goal: "< 0.5 ms".into(),
                measured: self.lock_overhead.map_or("-".into(), |(o, s, r)| {
                    format!("{o:+.3} ms (server {} ms, raw {} ms)", fmt_ms(s), fmt_ms(r))
                }),
                met: self.lock_overhead.map(|(o, ..)| o < 0.5),
                if_missed: "Section 3 compares it with the memory store, where no disk sync \
                        hides the server's own cost.",
            },
        ));
        let at64 = self.throughput.iter().find(|(c, ..)| *c == 64);
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        targets.push((
            Scenario::Throughput,
            Target {
                what: format!("64 concurrent clients, small states: request p99 ({cpus} cores)"),
                goal: "< 50 ms on 2 cores".into(),
                measured: at64.map_or("-".into(), |(_, _, p99)| fmt_duration(*p99)),
                met: at64.map(|(_, _, p99)| *p99 < Duration::from_millis(50)),
                if_missed: "Each POST makes three fsynced puts (history metadata, history body, \
                        state) and each LOCK and UNLOCK one more, so with 64 clients the tail \
                        is the disk's sync queue: section 4 shows POST's own p99 and the \
                        server's CPU share, and other work shared the cores (load line above).",
            },
        ));
        targets.push((
            Scenario::Large,
            Target {
                what: format!(
                    "{} state round trip: server peak RSS / state size",
                    overhead::size_label(settings.large_size)
                ),
                goal: "< 2.5×".into(),
                measured: self.large.map_or("-".into(), |(size, r)| {
                    format!("{r:.2}× of {}", fmt_mib(size as u64))
                }),
                met: self.large.map(|(_, r)| r < 2.5),
                if_missed: "A POST holds the request body and, for the stale-write guard, the \
                        stored state it replaces (the serial, lineage and identical-bytes \
                        checks read the old document) at the same time: two full copies \
                        before any buffer. The read alone stays lower (section 5).",
            },
        ));
        targets.push((
            Scenario::S3Front,
            Target {
                what: "Terraform 1.15.5, one apply: through the S3 front / directly on moto \
                       (median)"
                    .into(),
                goal: "≤ 1.25×".into(),
                measured: self.s3_single.map_or("-".into(), |(f, d)| {
                    format!(
                        "{} ({} vs {})",
                        fine_ratio(f, d),
                        fmt_duration(f),
                        fmt_duration(d)
                    )
                }),
                met: self
                    .s3_single
                    .map(|(f, d)| f.as_secs_f64() <= 1.25 * d.as_secs_f64()),
                if_missed: "Each request through the front is two hops (Terraform → front → \
                            moto), and the state service adds its own store calls per request \
                            (the lock record, the stale-write guard's read, the history \
                            version: section 6); on moto each costs milliseconds, and the \
                            server shares the 2 cores with Terraform and moto.",
            },
        ));
        targets.push((
            Scenario::S3Front,
            Target {
                what: format!(
                    "{} concurrent Terraform 1.15.5 applies, `use_lockfile`: directly on moto \
                     with `-lock-timeout=5m` / through the S3 front's queue (wall time)",
                    settings.terraform_runs
                ),
                goal: "≥ 10×".into(),
                measured: self.s3_concurrent.map_or("-".into(), |((f, _), (d, _))| {
                    format!(
                        "{} ({} vs {})",
                        ratio(d, f),
                        fmt_duration(d),
                        fmt_duration(f)
                    )
                }),
                met: self
                    .s3_concurrent
                    .map(|((f, _), (d, _))| d.as_secs_f64() >= 10.0 * f.as_secs_f64()),
                if_missed: "Terraform's retry back-off (1 s doubling to 16 s) puts each \
                            run's attempts at 0, 1, 3, 7, 15, 31 s…, so the direct arm's wall \
                            time is the attempt at which the last run wins the lock: a \
                            little over 7 s when every run is in by the 7 s attempt, over 31 s \
                            when one misses the 15 s one. Through the front the runs take turns with no \
                            gap, so its wall time is the runs' times under the lock one after \
                            another (under 1 s for this outputs-only apply); a lucky direct \
                            run therefore lands near 8×, an unlucky one far above 10×. The \
                            per-repetition rows in section 7 show which happened; \
                            `--repetitions` averages over more.",
            },
        ));
        targets
    }

    fn headlines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (store, n, q, p, tq, tp) in &self.handoff {
            lines.push(format!(
                "Hand-off, {store}, N = {n}: the lock queue waits {} in total against {} for \
                 Terraform-style polling ({} less), and finishes in {} against {} ({}).",
                fmt_duration(*q),
                fmt_duration(*p),
                ratio(*p, *q),
                fmt_duration(*tq),
                fmt_duration(*tp),
                ratio(*tp, *tq)
            ));
        }
        if let [ours @ .., (base, wb, fb)] = self.terraform.as_slice() {
            for (a, wa, fa) in ours {
                lines.push(format!(
                    "Terraform 1.0.3, concurrent applies: {a} took {} ({fa} failed); {base} \
                     took {} ({fb} failed), {} as long.",
                    fmt_duration(*wa),
                    fmt_duration(*wb),
                    ratio(*wb, *wa)
                ));
            }
        }
        if let Some((o, s, r)) = self.lock_overhead {
            lines.push(format!(
                "LOCK+UNLOCK through the server costs {} ms p50 against {} ms for the raw \
                 store calls: {o:+.3} ms of overhead ({}).",
                fmt_ms(s),
                fmt_ms(r),
                ratio(s, r)
            ));
        }
        for (clients, rps, p99) in &self.throughput {
            lines.push(format!(
                "Throughput with {clients} concurrent client(s) on small states: {rps:.0} requests/s, p99 {}.",
                fmt_duration(*p99)
            ));
        }
        if let Some((size, r)) = self.large {
            lines.push(format!(
                "A {} state's write and read peak at {r:.2}× its size in server RSS.",
                fmt_mib(size as u64)
            ));
        }
        if let (Some((f, d)), Some(((cf, cff), (cd, cdf)))) = (self.s3_single, self.s3_concurrent) {
            lines.push(format!(
                "Terraform 1.15.5 `backend \"s3\"` + `use_lockfile` through the S3 front: one \
                 apply takes {} (median) against {} directly on moto ({}); concurrent applies \
                 finish in {} through the front's queue ({cff} failed) against {} directly with \
                 `-lock-timeout=5m` ({cdf} failed), {} as long.",
                fmt_duration(f),
                fmt_duration(d),
                fine_ratio(f, d),
                fmt_duration(cf),
                fmt_duration(cd),
                ratio(cd, cf)
            ));
        }
        lines
    }
}

fn handoff_section(
    settings: &Settings,
    work: &Path,
    moto: Option<&'static S3Server>,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    let mut section = Section::new("1. Lock hand-off under contention");
    section.text(format!(
        "One holder has the lock of a state; N clients arrive 10 ms apart (that is their \
         first-come order), then the holder releases it. Each client then does LOCK → GET → \
         POST → UNLOCK. *Lock queue*: one LOCK with `?wait=10m`, answered when the server hands \
         the lock over. *Polling*: LOCK without waiting (423 at once) and Terraform's \
         `-lock-timeout` loop, sleeping 1 s, 2 s, 4 s, 8 s, then 16 s between attempts. Times \
         run from the release. *Total waiting* is the sum over clients of the time to acquire; \
         *inversions* counts pairs of clients served in the opposite order of their arrival (0 = \
         first come, first served). The polling arm runs up to N = {} (`--poll-max-clients`): \
         at N = 64 its sleeps alone take about 64 × 16 s ≈ 17 minutes. Each (store, N, arm) \
         ran {} time(s) (`--repetitions`); times are means per run, percentiles pool every \
         client of every run, inversions are summed. Polling's waiting depends on where the \
         pollers' retries happen to fall relative to the releases, so it varies several-fold \
         from run to run at the same N; the queue's waiting is the clients' critical sections \
         (GET, then a POST with three fsynced puts) one after another.",
        settings.poll_max, settings.repetitions
    ));
    let mut table = Table::new(&[
        "Store",
        "N",
        "Clients wait by",
        "Total time",
        "Acquire p50",
        "Acquire p99",
        "Longest wait",
        "Total waiting",
        "FCFS (inversions)",
    ]);
    let dir = work.join("handoff-local");
    let mut stores = vec![Store::Dir(&dir)];
    let bucket = unique_name("statelock-bench");
    if let Some(server) = moto {
        server.create_bucket(&bucket, true);
        stores.push(Store::S3 {
            server,
            bucket: &bucket,
        });
    }
    for store in stores {
        let server = Server::start(&settings.binary, store, &[], work)?;
        for &n in &settings.clients {
            let mut measured = Vec::new();
            for arm in [Arm::Queue, Arm::Poll] {
                let label = store.label();
                if arm == Arm::Poll && n > settings.poll_max {
                    table.row(vec![
                        label,
                        n.to_string(),
                        arm.label().into(),
                        format!(
                            "not run (≈ {} of sleeps)",
                            fmt_duration(Duration::from_secs(16 * n as u64))
                        ),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                    continue;
                }
                progress(&format!("hand-off: {label}, N = {n}, {}", arm.label()));
                let reps = settings.repetitions;
                let (mut acquire, mut total, mut inversions) =
                    (Samples::default(), Duration::ZERO, 0);
                for rep in 0..reps {
                    let key = format!("handoff/{}/n{n}-{arm:?}-{rep}.tfstate", std::process::id());
                    let o = handoff::run(&server, &key, n, arm).with_context(|| {
                        format!("hand-off on {label}; server log:\n{}", server.log())
                    })?;
                    acquire.extend(o.acquire);
                    total += o.total;
                    inversions += o.inversions;
                }
                // Means per run, so figures do not grow with --repetitions.
                let o = handoff::Outcome {
                    total: total / reps as u32,
                    acquire,
                    inversions,
                };
                let waiting = o.acquire.total() / reps as u32;
                table.row(vec![
                    label,
                    n.to_string(),
                    arm.label().into(),
                    fmt_duration(o.total),
                    fmt_duration(o.acquire.p50()),
                    fmt_duration(o.acquire.p99()),
                    fmt_duration(o.acquire.max()),
                    fmt_duration(waiting),
                    if o.inversions == 0 {
                        "yes (0)".to_owned()
                    } else {
                        format!("no ({})", o.inversions)
                    },
                ]);
                measured.push((waiting, o.total));
            }
            if let [(q, tq), (p, tp)] = measured[..] {
                out.handoff.push((store.label(), n, q, p, tq, tp));
            }
        }
    }
    section.table(table);
    let mut ratios = Table::new(&[
        "Store",
        "N",
        "Total waiting: polling / queue",
        "Total time: polling / queue",
    ]);
    for (store, n, q, p, tq, tp) in &out.handoff {
        ratios.row(vec![
            store.clone(),
            n.to_string(),
            ratio(*p, *q),
            ratio(*tp, *tq),
        ]);
    }
    section.table(ratios);
    Ok(section)
}

fn terraform_section(
    settings: &Settings,
    work: &Path,
    moto: Option<&'static S3Server>,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    let mut section = Section::new("2. Concurrent Terraform 1.0.3 applies on one state");
    let (Some(moto), runs @ 1..) = (moto, settings.terraform_runs) else {
        section.text("Not run in this setting (it needs moto and Terraform; `--quick` and `--no-moto` skip it).");
        return Ok(section);
    };
    section.text(format!(
        "{runs} `terraform apply` processes (outputs-only configuration, so no provider) start at \
         the same moment on one state; `init` ran before the clock started. *statelock*: \
         `backend \"http\"` with `lock_address = …?wait=5m` (Terraform 1.0.3's http backend \
         never retries, the server waits for it). *S3 + DynamoDB*: `backend \"s3\"` with a \
         `dynamodb_table` on moto and `-lock-timeout=5m`, the setup the background article calls \
         the safe choice for busy CI; Terraform polls the table with its 1 s → 16 s back-off."
    ));
    let mut table = Table::new(&[
        "Setup",
        "Runs",
        "Wall time (all done)",
        "Slowest run",
        "Failures",
    ]);
    let local_dir = work.join("terraform-local");
    let bucket = unique_name("statelock-bench-tf");
    moto.create_bucket(&bucket, true);
    let arms: Vec<(String, Option<Store>)> = vec![
        (
            "statelock `?wait=5m`, local disk".into(),
            Some(Store::Dir(&local_dir)),
        ),
        (
            "statelock `?wait=5m`, S3 store on moto".into(),
            Some(Store::S3 {
                server: moto,
                bucket: &bucket,
            }),
        ),
        (
            "`backend \"s3\"` + DynamoDB on moto, `-lock-timeout=5m`".into(),
            None,
        ),
    ];
    let (mut lost_race, mut double_holder) = (false, false);
    for (i, (label, store)) in arms.into_iter().enumerate() {
        progress(&format!("terraform: {runs} applies, {label}"));
        let root = work.join(format!("terraform-{i}"));
        let o = match store {
            Some(store) => {
                let server = Server::start(&settings.binary, store, &[], work)?;
                let url = format!(
                    "http://{}{}",
                    server.addr,
                    Server::path("bench/terraform.tfstate")
                );
                terraform::run(&root, &terraform::Backend::Statelock { url: &url }, runs)?
            }
            None => {
                let table = unique_name("tflocks");
                terraform::create_lock_table(moto, &table)?;
                let backend = terraform::Backend::S3Dynamo {
                    server: moto,
                    bucket: &bucket,
                    table: &table,
                };
                terraform::run(&root, &backend, runs)?
            }
        };
        table.row(vec![
            label.clone(),
            o.runs.to_string(),
            fmt_duration(o.wall),
            fmt_duration(o.slowest),
            if o.failures.is_empty() {
                "0".to_owned()
            } else {
                format!(
                    "{}: {}",
                    o.failures.len(),
                    terraform::summarize(&o.failures)
                )
            },
        ]);
        lost_race |= o
            .failures
            .iter()
            .any(|(_, m)| m.contains("unexpected end of JSON input"));
        double_holder |= o
            .failures
            .iter()
            .any(|(_, m)| m.contains("does not match existing lock"));
        out.terraform.push((label, o.wall, o.failures.len()));
    }
    section.table(table);
    if double_holder {
        section.text(
            "\"Error releasing the state lock … does not match existing lock\" means that when \
             a run released its lock, the table held another run's lock: two runs held it at \
             once. The conditional PutItem (`attribute_not_exists(LockID)`) should make that \
             impossible on DynamoDB, so this points at moto's DynamoDB not applying conditional \
             writes atomically under concurrent requests. It is counted as measured.",
        );
    }
    if lost_race {
        section.text(
            "\"ConditionalCheckFailedException … unexpected end of JSON input\" is a race in \
             Terraform 1.0.3's S3 backend, not a timeout: its conditional PutItem fails because \
             another run holds the lock, that run releases it, and the GetItem that should read \
             the holder finds no item. The lock error then carries no holder, and Terraform's \
             retry loop only retries errors that name a holder (spec §1.3), so the run fails at \
             once despite `-lock-timeout=5m` (hashicorp/terraform#32690, still open).",
        );
    }
    Ok(section)
}

fn overhead_section(
    settings: &Settings,
    work: &Path,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    progress("server overhead");
    let mut section = Section::new("3. Server overhead per operation");
    section.text(
        "The same operation through `statelock serve` (HTTP/1.1 keep-alive from this process) \
         and as the raw local-disk store call(s) it stands for (`LocalStore` in this process, on \
         the same disk), interleaved in one loop. LOCK+UNLOCK is compared with a create of the \
         `.tflock` object plus a conditional delete; GET with a store get; POST (under a held \
         lock, serial + 1 each time) with one compare-and-swap put. The server's POST also \
         reads the lock and the current state and writes the history version (section 6), so \
         its overhead includes those store calls. The server runs with `--max-state-size 256MiB \
         --history-retention 2`, so that 100 MiB states fit and the history stays small.",
    );
    let dir = work.join("overhead-server");
    let server = Server::start(
        &settings.binary,
        Store::Dir(&dir),
        &["--max-state-size", "256MiB", "--history-retention", "2"],
        work,
    )?;
    let raw = LocalStore::open(work.join("overhead-raw"))?;
    let pairs = overhead::measure(&server, &raw, settings.lock_iterations, &settings.sizes)?;
    if let Some(lock) = pairs.first() {
        out.lock_overhead = Some((
            overhead::overhead_ms(lock),
            lock.server.p50(),
            lock.raw.p50(),
        ));
    }
    drop(server);
    progress("server overhead: memory store");
    let memory = Server::start(&settings.binary, Store::Memory, &[], work)?;
    let in_memory = overhead::measure_lock(&memory, &MemoryStore::new(), settings.lock_iterations)?;
    let mut rows: Vec<(&str, overhead::Pair)> =
        pairs.into_iter().map(|p| ("local disk", p)).collect();
    rows.push(("memory", in_memory));
    section.table(overhead::table(&rows));
    section.text(
        "On the local disk every create, replace and delete is fsynced (file and directory), \
         and sync latency on this machine is milliseconds and uneven, so it dominates both \
         columns and its noise can exceed the server's own cost (a negative overhead means the \
         noise favoured the server). The memory row (`statelock serve --store memory://` against \
         a `MemoryStore` in this process) has no disk, so its overhead is the server's own: \
         HTTP, routing, the lock record's encoding and the UNLOCK's read of the lock.",
    );
    Ok(section)
}

fn throughput_section(
    settings: &Settings,
    work: &Path,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    let mut section = Section::new("4. Throughput on small states (local disk)");
    section.text(format!(
        "C clients, each on its own 1 KiB state, repeat LOCK, GET, POST, UNLOCK for {:.1} s over \
         keep-alive connections. Latency is per request. Server CPU is the `statelock serve` \
         process's user + system time over the run (from `/proc/<pid>/stat`; 100% = one core); \
         peak RSS is its `VmHWM`, reset before each level. Each POST fsyncs the history version \
         and the state, so the local disk's sync latency bounds the rate.",
        settings.throughput_time.as_secs_f64()
    ));
    let dir = work.join("throughput");
    let server = Server::start(&settings.binary, Store::Dir(&dir), &[], work)?;
    let mut table = Table::new(&[
        "Clients",
        "Requests/s",
        "Applies/s (4 requests)",
        "Request p50",
        "Request p99",
        "POST p99",
        "Server CPU",
        "Server peak RSS",
    ]);
    for &clients in &settings.throughput_levels {
        progress(&format!("throughput: {clients} client(s)"));
        let o = throughput::run(&server, clients, settings.throughput_time)?;
        table.row(vec![
            o.clients.to_string(),
            format!("{:.0}", o.requests_per_second()),
            format!("{:.0}", o.applies_per_second()),
            fmt_duration(o.requests.p50()),
            fmt_duration(o.requests.p99()),
            fmt_duration(o.posts.p99()),
            format!(
                "{} ({:.0}% of a core)",
                fmt_duration(o.cpu),
                o.cpu_share() * 100.0
            ),
            fmt_mib(o.peak_rss),
        ]);
        out.throughput
            .push((clients, o.requests_per_second(), o.requests.p99()));
    }
    section.table(table);
    Ok(section)
}

fn large_section(settings: &Settings, work: &Path, out: &mut Outcomes) -> anyhow::Result<Section> {
    progress("large states");
    let size = settings.large_size;
    let mut section = Section::new("5. Large states");
    section.text(format!(
        "A fresh server (`--max-state-size 256MiB --history-retention 2`, local disk) takes a \
         {} state {} times: POST under a held lock, then GET. MB/s = 10⁶ bytes per second at the \
         median time; peak RSS is `VmHWM`, reset before each transfer.",
        overhead::size_label(size),
        settings.large_rounds
    ));
    let dir = work.join("large");
    let server = Server::start(
        &settings.binary,
        Store::Dir(&dir),
        &["--max-state-size", "256MiB", "--history-retention", "2"],
        work,
    )?;
    let o = large::run(&server, size, settings.large_rounds)?;
    let mut table = Table::new(&[
        "Direction",
        "Median time",
        "MB/s",
        "Server peak RSS",
        "Peak / state size",
        "(Peak − idle) / state size",
    ]);
    for (label, samples, peak) in [
        ("write (POST)", &o.write, o.write_peak_rss),
        ("read (GET)", &o.read, o.read_peak_rss),
    ] {
        table.row(vec![
            label.into(),
            fmt_duration(samples.p50()),
            format!("{:.0}", o.mb_per_second(samples)),
            fmt_mib(peak),
            format!("{:.2}×", peak as f64 / size as f64),
            format!(
                "{:.2}×",
                peak.saturating_sub(o.idle_rss) as f64 / size as f64
            ),
        ]);
    }
    section.table(table);
    section.text(format!(
        "Idle server RSS before the first transfer: {}.",
        fmt_mib(o.idle_rss)
    ));
    out.large = Some((size, o.peak_ratio()));
    Ok(section)
}

fn s3_front_section(
    settings: &Settings,
    work: &Path,
    moto: Option<&'static S3Server>,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    let mut section = Section::new("7. Terraform 1.15.5 through the S3 front");
    let (Some(moto), applies @ 1.., runs @ 1..) =
        (moto, settings.s3_front_applies, settings.terraform_runs)
    else {
        section.text(
            "Not run in this setting (it needs moto and Terraform 1.15.5; `--quick`, \
             `--no-moto` and `--terraform-runs 0` skip it).",
        );
        return Ok(section);
    };
    section.text(format!(
        "Terraform 1.15.5's own `backend \"s3\"` with `use_lockfile = true`, the same block \
         both ways (`use_path_style`, `skip_requesting_account_id`, the `skip_*_validation` \
         flags) but for `endpoints.s3`: *through the S3 front* points it at `statelock serve \
         --store s3://<bucket> --s3-listen 127.0.0.1:0`, whose store is a versioned bucket on \
         moto; *directly on moto* points it at that same bucket, so the front's cost is the \
         only difference. Outputs-only configuration (no provider); `init` ran before the \
         clock started. **One apply**: {applies} sequential `apply -var n=…` per arm (each \
         writes a new state), the arms alternating apply by apply so that drift on the shared \
         machine hits both. **Concurrent applies**: {runs} `apply` processes start at the same \
         moment on one state, after one untimed apply created it; through the front with \
         `serve --lock-wait 5m` and no `-lock-timeout` (the server queues the `.tflock` \
         PutObject until the lock is free), directly on moto with `-lock-timeout=5m` \
         (Terraform retries a held `.tflock` with its 1 s → 16 s back-off). *Serial growth* is \
         the state's serial after the runs minus before, read from the bucket: it equals the \
         runs that landed."
    ));
    let bucket = unique_name("statelock-bench-s3front");
    moto.create_bucket(&bucket, true);

    progress(&format!(
        "S3 front: {applies} sequential applies per arm, through the front and directly on moto"
    ));
    let single = s3_front::single(&settings.binary, moto, &bucket, work, applies)?;
    let mut table = Table::new(&[
        "Setup",
        "Applies",
        "Median per apply",
        "Min per apply",
        "Max per apply",
        "Median / direct",
    ]);
    for (label, samples) in [
        ("through the S3 front (store on moto)", &single.front),
        ("directly on moto", &single.direct),
    ] {
        table.row(vec![
            label.into(),
            samples.len().to_string(),
            fmt_duration(samples.p50()),
            fmt_duration(samples.min()),
            fmt_duration(samples.max()),
            fine_ratio(samples.p50(), single.direct.p50()),
        ]);
    }
    section.table(table);
    out.s3_single = Some((single.front.p50(), single.direct.p50()));

    let reps = settings.repetitions;
    let mut concurrent = Vec::new();
    for rep in 0..reps {
        progress(&format!(
            "S3 front: {runs} concurrent applies, through the front and directly on moto \
             (repetition {} of {reps})",
            rep + 1
        ));
        concurrent.push(s3_front::concurrent(
            &settings.binary,
            moto,
            &bucket,
            work,
            runs,
            rep,
        )?);
    }
    let mut table = Table::new(&[
        "Setup",
        "Repetition",
        "Runs",
        "Wall time (all done)",
        "Slowest run",
        "Failures",
        "Serial growth",
    ]);
    // Grouped by setup, so that each arm's spread over the repetitions reads down a column.
    let front_rows = concurrent.iter().map(|c| {
        (
            "through the S3 front, `serve --lock-wait 5m`",
            &c.front,
            c.front_serials,
        )
    });
    let direct_rows = concurrent.iter().map(|c| {
        (
            "directly on moto, `-lock-timeout=5m`",
            &c.direct,
            c.direct_serials,
        )
    });
    for (i, (label, o, serials)) in front_rows.chain(direct_rows).enumerate() {
        table.row(vec![
            label.into(),
            format!("{} of {reps}", i % reps + 1),
            o.runs.to_string(),
            fmt_duration(o.wall),
            fmt_duration(o.slowest),
            if o.failures.is_empty() {
                "0".to_owned()
            } else {
                format!(
                    "{}: {}",
                    o.failures.len(),
                    terraform::summarize(&o.failures)
                )
            },
            serials.map_or("-".into(), |n| n.to_string()),
        ]);
    }
    section.table(table);
    if concurrent.iter().any(|c| {
        c.direct
            .failures
            .iter()
            .any(|(_, m)| m.contains("PreconditionFailed") && m.contains("NoSuchKey"))
    }) {
        section.text(
            "\"PutObject … 412 … PreconditionFailed\" followed by \"unable to retrieve file … \
             NoSuchKey\" is a race in Terraform 1.15.5's lockfile lock, not a timeout: its \
             create-if-absent of `<key>.tflock` is refused because another run holds the lock, \
             that run releases it, and the read-back that should name the holder finds no \
             object. With no holder the error is not a lock conflict to Terraform's retry loop, \
             so the run fails at once despite `-lock-timeout=5m` (docs/terraform-versions.md). \
             A failed run stops early, so it shortens the direct arm's wall time; the serial \
             growth shows how many runs landed. Through the front the `.tflock` PutObject \
             waits in the server's queue instead of being refused, so the client never \
             reaches that read-back.",
        );
    }
    // Means per repetition, as in section 1, so figures do not grow with --repetitions.
    let mean = |wall: fn(&s3_front::Concurrent) -> Duration| {
        concurrent.iter().map(wall).sum::<Duration>() / reps as u32
    };
    let (front_wall, direct_wall) = (mean(|c| c.front.wall), mean(|c| c.direct.wall));
    let failed = |fails: fn(&s3_front::Concurrent) -> usize| concurrent.iter().map(fails).sum();
    section.text(format!(
        "Ratios: one apply through the front takes {} of the direct median (target ≤ 1.25×); \
         the {runs} concurrent applies take {} directly and {} through the front, means over \
         {reps} repetition(s): {} as long directly (target ≥ 10×).",
        fine_ratio(single.front.p50(), single.direct.p50()),
        fmt_duration(direct_wall),
        fmt_duration(front_wall),
        ratio(direct_wall, front_wall)
    ));
    out.s3_concurrent = Some((
        (front_wall, failed(|c| c.front.failures.len())),
        (direct_wall, failed(|c| c.direct.failures.len())),
    ));
    Ok(section)
}

fn progress(what: &str) {
    eprintln!("statelock-bench: {what}");
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Now, in UTC to the second, RFC 3339.
fn date_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    statelock_core::Timestamp::from_unix(secs as i64, 0).to_rfc3339()
}
