//! Runs the scenarios in order, turns their outcomes into sections, targets and headline
//! ratios, and writes the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use statelock_store::{LocalStore, MemoryStore, S3Config, S3Store};
use statelock_test_support::{S3Server, unique_name};

use crate::handoff::{self, Arm};
use crate::report::{self, Report, Section, Table, Target};
use crate::server::{Server, Store};
use crate::stats::{Samples, fine_ratio, fmt_duration, fmt_mib, fmt_ms, ratio};
use crate::{Args, Scenario};
use crate::{large, overhead, round_trips, s3_front, svg, terraform, throughput};

const MIB: usize = 1024 * 1024;

/// Flushes a POST `?ID=` on an existing state waited for on the local disk in the release
/// before this harness counted them (4bd710f): the metadata and body puts of the history
/// version, 6 each (the staged file, the 4 directories of
/// `.statelock/history/roundtrips/terraform.tfstate/` and the one published into), and the
/// state's put, 3 (the file, `objects/`, `roundtrips/`), with the same key as section 6.
const PREVIOUS_POST_FSYNCS: u64 = 15;

/// What a state write still guarantees with three round trips, and the tests that prove it,
/// for the closing note.
const GUARANTEES: &[&str] = &[
    "Guarantee, fencing (only the lock holder writes; the fence's read of the lock now shares \
     a round trip with the state's HEAD): `statelock-http` `api::writes_are_fenced_by_the_lock_holder`, \
     `statelock-state` `service::tests::a_write_is_fenced_guarded_recorded_and_swapped`, e2e \
     `terraform::concurrent_applies_1_0_3` and `_1_15_5`.",
    "Guarantee, the stale-write guard (no older or unrelated state over a newer one; judged \
     from the state's tag, a full read for untagged states): `statelock-http` \
     `api::guard_refuses_foreign_lineage_and_stale_serials_with_409`, `statelock-state` \
     `guard::tests::the_header_alone_gives_the_same_verdicts`, \
     `service::tests::a_write_over_a_tagged_state_reads_only_metadata_and_lists_nothing`, \
     `service::tests::a_state_written_by_another_tool_is_read_in_full_and_guarded_the_same`; \
     metadata is written atomically with its body on every adapter: conformance \
     `user_metadata` (memory, local disk, moto, SeaweedFS).",
    "Guarantee, a version is stored before the state it records (one history object now): \
     `statelock-http` `history::a_lost_reply_on_the_state_put_keeps_the_accepted_version`, \
     `history::a_failed_state_put_after_the_history_write_keeps_history_consistent`, \
     `history::a_failed_history_write_refuses_the_write_and_leaves_the_state` (both layouts), \
     e2e `replicas_and_crashes::sigkill_during_a_50_mib_write_on_local_disk_leaves_old_or_new` \
     and `_on_seaweedfs_`.",
    "Guarantee, compare-and-swap on the version read (the HEAD's version now): \
     `statelock-state` `service::tests::an_expected_state_is_checked_on_the_version_replaced`, \
     conformance `compare_and_swap` and `cas_increments` on every adapter, e2e \
     `replicas_and_crashes::two_replicas_on_one_seaweedfs_bucket_act_as_one_server`.",
    "Guarantee, history in write order despite clock skew without a listing: `statelock-state` \
     `service::tests::a_version_ordered_after_a_later_clock_is_recorded_again_after_it`; \
     retention off the write path: `service::tests::retention_prunes_in_the_background_every_few_writes`, \
     `statelock-http` `history::retention_prunes_the_oldest_versions`; earlier releases' \
     two-object versions still read and pruned: \
     `service::tests::versions_in_the_two_object_layout_of_earlier_releases_are_read_and_pruned`.",
    "Guarantee, a release never removes a lock taken over meanwhile (the S3 front's single \
     read): `statelock-state` `service::tests::releasing_the_lock_read_never_removes_one_taken_over_since`, \
     conformance `conditional_delete`; durable local writes with shared flushes: `statelock-store` \
     `local::group_sync::tests::concurrent_flushes_of_one_directory_share_fsyncs_and_all_return`, \
     `local::durable::tests::a_directory_is_flushed_into_its_parent_once_per_instance`, \
     `local_cross_process` (churn, races, compare-and-swap across processes).",
];

/// Writes `chart` as `<name>.svg` into the charts folder and returns the Markdown that embeds it.
fn chart(settings: &Settings, name: &str, chart: &svg::Chart) -> anyhow::Result<String> {
    std::fs::create_dir_all(&settings.charts)
        .with_context(|| format!("create {}", settings.charts.display()))?;
    let file = format!("{name}.svg");
    std::fs::write(settings.charts.join(&file), chart.render())
        .with_context(|| format!("write {file}"))?;
    Ok(format!(
        "![{}]({}/{file})",
        chart.title, settings.charts_link
    ))
}

fn round_trips_section(
    settings: &Settings,
    work: &Path,
    moto: Option<&'static S3Server>,
    out: &mut Outcomes,
) -> anyhow::Result<Section> {
    progress("round trips");
    let mut section = Section::new("6. Store round trips per Terraform request");
    section.text(
        "Both fronts in-process over the storage port, each request's store calls counted: the \
         `http` front playing Terraform 1.0.3's `apply` (LOCK, GET, POST `?ID=`, UNLOCK), the \
         S3 front Terraform 1.15.5's `backend \"s3\"` with `use_lockfile` through the real \
         `aws-sdk-s3` client (its wire sequence: `.tflock` PutObject, HeadObject and a ranged \
         GetObject of the state, PutObject of the state, GetObject and DeleteObject of the \
         `.tflock`), on a new state and then on the existing one, with the server's defaults. \
         The calls of each kind and the flushes to disk (`fsync`, file and directory, asked \
         for) come from a counting wrapper around the local-disk store; *sequential round \
         trips* from the same sequence over the memory store with 30 ms added to every call, \
         the request's time divided by 30 ms, rounded down: calls made at once overlap and count \
         once, so \
         this is what a request costs on S3, where each round trip takes tens of \
         milliseconds. The minimum is one store request each.",
    );
    let counts = round_trips::measure(&work.join("round-trips"))?;
    section.table(round_trips::table(&counts));
    section.text(format!(
        "A state without statelock's tag (written by Terraform directly, or by a release \
         before tags) costs its first write one more round trip, a full read for the guard, \
         and one listing alongside the version's put; from then on it is tagged. The history \
         is pruned in the background every few writes (every {} with the default retention \
         of {}), so no request waits for it. On the local disk, concurrent flushes of one \
         directory share one `fsync` (group commit), which the single client here cannot \
         show; section 4's clients can.",
        statelock_http_prune_every(),
        statelock_http_retention()
    ));
    progress("round trips: whole applies against the floor");
    let mut costs = vec![round_trips::apply_cost(
        "local disk",
        Arc::new(LocalStore::open(work.join("apply-cost"))?),
        settings.cost_applies,
    )?];
    if let Some(server) = moto {
        let bucket = unique_name("statelock-bench-apply");
        server.create_bucket(&bucket, true);
        let store = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(S3Store::connect(
                S3Config::new(&bucket)
                    .endpoint(server.endpoint.clone())
                    .path_style(true)
                    .region(statelock_test_support::REGION)
                    .static_credentials(
                        statelock_test_support::ACCESS_KEY,
                        statelock_test_support::SECRET_KEY,
                    ),
            ))?;
        costs.push(round_trips::apply_cost(
            "moto (S3)",
            Arc::new(store),
            settings.cost_applies,
        )?);
    }
    section.text(format!(
        "Whole applies: {} Terraform-shaped applies (LOCK, GET, POST `?ID=`, UNLOCK) on an \
         existing 1 KiB state through the `http` app in-process on each store, each followed \
         by the floor: the same four requests made directly to the store (create the \
         `.tflock`, get the state, compare-and-swap the state, delete the `.tflock` if \
         unchanged), interleaved so that drift hits both.",
        settings.cost_applies
    ));
    section.table(round_trips::apply_table(&costs));
    out.round_trips = counts;
    Ok(section)
}

fn statelock_http_retention() -> usize {
    statelock_http::HttpConfig::new("x").history_retention
}

fn statelock_http_prune_every() -> u32 {
    statelock_state::history::prune_every(statelock_http_retention())
}

fn handoff_chart(settings: &Settings, out: &Outcomes, store: &str) -> anyhow::Result<String> {
    let series = [Arm::Queue, Arm::Poll]
        .into_iter()
        .map(|arm| svg::Series {
            name: arm.label().replace(" (`?wait=`)", "").to_owned(),
            points: out
                .handoff_points
                .iter()
                .filter(|(s, _, a, _)| s == store && *a == arm)
                .map(|(_, n, _, w)| (*n as f64, w.as_secs_f64() * 1000.0))
                .collect(),
        })
        .collect();
    let name = format!("handoff-{}", store.replace([' ', '(', ')'], "-"));
    chart(
        settings,
        name.trim_end_matches('-'),
        &svg::Chart {
            title: format!("Hand-off, {store}: total waiting against N"),
            x_label: "N (clients waiting for the lock)".into(),
            y_label: "total waiting, ms".into(),
            log_y: true,
            series,
        },
    )
}

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
    /// Where the SVG charts go, and that folder as the report links it.
    charts: PathBuf,
    charts_link: String,
    /// Applies per store in scenario 6's apply-cost rows.
    cost_applies: usize,
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
        let charts_link = "benchmarks".to_owned();
        let charts = args
            .output
            .parent()
            .unwrap_or(Path::new("."))
            .join(&charts_link);
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
                charts,
                charts_link,
                cost_applies: 5,
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
                charts,
                charts_link,
                cost_applies: 30,
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
        sections.push(round_trips_section(&settings, root, moto, &mut out)?);
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
    /// (clients, requests/s, p50, p90, p99).
    throughput: Vec<(usize, f64, Duration, Duration, Duration)>,
    /// (size, write peak / size, read peak / size).
    large: Option<(usize, f64, f64)>,
    round_trips: Vec<round_trips::Count>,
    /// Hand-off total waiting per (store, N, arm) for the charts, polling or not.
    handoff_points: Vec<(String, usize, Arm, Duration)>,
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
                measured: at64.map_or("-".into(), |(.., p99)| fmt_duration(*p99)),
                met: at64.map(|(.., p99)| *p99 < Duration::from_millis(50)),
                if_missed: "The local disk's sync latency and the other work on the 2 cores \
                        make the tail (load line above); section 4 shows POST's own p99 and \
                        the server's CPU share, section 6 the flushes each request waits for.",
            },
        ));
        targets.push((
            Scenario::Throughput,
            Target {
                what: "64 concurrent clients, small states: requests/s (local disk)".into(),
                goal: "≥ 2267 (the 2026-11-27 figure)".into(),
                measured: at64.map_or("-".into(), |(_, rps, ..)| format!("{rps:.0}")),
                met: at64.map(|(_, rps, ..)| *rps >= 2267.0),
                if_missed: "Requests per second on a shared 2-core machine move with the \
                        other builds (load line above); compare with the 1- and 16-client \
                        rows of the same run.",
            },
        ));
        let size = overhead::size_label(settings.large_size);
        for (what, goal, limit, pick) in [
            ("write (POST)", "< 1.3×", 1.3, 0usize),
            ("read (GET)", "< 1.1×", 1.1, 1),
        ] {
            let ratio = self
                .large
                .map(|(s, w, r)| (s, if pick == 0 { w } else { r }));
            targets.push((
                Scenario::Large,
                Target {
                    what: format!("{size} state {what}: server peak RSS / state size"),
                    goal: goal.into(),
                    measured: ratio.map_or("-".into(), |(size, r)| {
                        format!("{r:.2}× of {}", fmt_mib(size as u64))
                    }),
                    met: ratio.map(|(_, r)| r < limit),
                    if_missed: "Peak RSS includes the idle server (section 5 gives it apart) \
                            and the allocator's slack; a state without a tag (written by \
                            another tool) is read in full by the guard, a second copy.",
                },
            ));
        }
        for (front, request, goal) in [
            (round_trips::Front::Http, "POST ?ID=", 3usize),
            (round_trips::Front::S3, "PutObject state", 3),
        ] {
            let found = self
                .round_trips
                .iter()
                .find(|c| c.front == front && c.request == request && !c.first_apply);
            targets.push((
                Scenario::RoundTrips,
                Target {
                    what: format!(
                        "{request} on an existing state through the {} front: sequential \
                         store round trips",
                        if front == round_trips::Front::Http {
                            "http"
                        } else {
                            "S3"
                        }
                    ),
                    goal: format!("≤ {goal}"),
                    measured: found.map_or("-".into(), |c| {
                        format!("{} ({} store requests)", c.sequential, c.total())
                    }),
                    met: found.map(|c| c.sequential <= goal),
                    if_missed: "Section 6 lists each request's calls and why.",
                },
            ));
        }
        let post = self.round_trips.iter().find(|c| {
            c.front == round_trips::Front::Http && c.request == "POST ?ID=" && !c.first_apply
        });
        targets.push((
            Scenario::RoundTrips,
            Target {
                what: "POST ?ID= on an existing state, local disk: flushes (fsync) it waits for"
                    .into(),
                goal: format!("< {PREVIOUS_POST_FSYNCS} (the release before)"),
                measured: post.map_or("-".into(), |c| c.fsyncs.to_string()),
                met: post.map(|c| c.fsyncs < PREVIOUS_POST_FSYNCS),
                if_missed: "Section 6 counts each request's flushes.",
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
                            when one misses the 15 s one (a run that lost Terraform's \
                            lockfile race is rerun and starts its back-off over). Through the \
                            front the runs take turns with no gap, so its wall time is the \
                            runs' times under the lock one after another (under 1 s for this \
                            outputs-only apply); a lucky direct run therefore lands near 8×, an \
                            unlucky one far above 10×. The per-repetition rows in section 7 \
                            show which happened; `--repetitions` averages over more.",
            },
        ));
        targets
    }

    fn headlines(&self) -> Vec<String> {
        let mut lines: Vec<String> = GUARANTEES.iter().map(|g| (*g).to_owned()).collect();
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
                    "Terraform 1.0.3, concurrent applies: {a} took {} ({fa} failed attempt(s), rerun); {base} \
                     took {} ({fb} failed attempt(s), rerun), {} as long.",
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
        for (clients, rps, _, _, p99) in &self.throughput {
            lines.push(format!(
                "Throughput with {clients} concurrent client(s) on small states: {rps:.0} requests/s, p99 {}.",
                fmt_duration(*p99)
            ));
        }
        if let Some((size, w, r)) = self.large {
            lines.push(format!(
                "A {} state's write peaks at {w:.2}× its size in server RSS, its read at {r:.2}×.",
                fmt_mib(size as u64)
            ));
        }
        if let (Some((f, d)), Some(((cf, cff), (cd, cdf)))) = (self.s3_single, self.s3_concurrent) {
            lines.push(format!(
                "Terraform 1.15.5 `backend \"s3\"` + `use_lockfile` through the S3 front: one \
                 apply takes {} (median) against {} directly on moto ({}); concurrent applies \
                 finish in {} through the front's queue ({cff} failed attempt(s), rerun) against {} directly with \
                 `-lock-timeout=5m` ({cdf} failed attempt(s), rerun), {} as long.",
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
         (GET, then a POST with two fsynced puts) one after another.",
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
    let labels: Vec<String> = stores.iter().map(|s| s.label()).collect();
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
                out.handoff_points.push((store.label(), n, arm, waiting));
            }
            if let [(q, tq), (p, tp)] = measured[..] {
                out.handoff.push((store.label(), n, q, p, tq, tp));
            }
        }
    }
    section.table(table);
    for label in &labels {
        section.text(handoff_chart(settings, out, label)?);
    }
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
         the safe choice for busy CI; Terraform polls the table with its 1 s → 16 s back-off. \
         A run that fails is started again, as a CI pipeline's retry would (up to {} attempts), \
         so the wall time is the time until every run has landed.",
        terraform::ATTEMPTS
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
            o.failures_cell(),
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
         reads the lock and the current state's metadata and writes the history version \
         (section 6), so its overhead includes those store calls. The server runs with `--max-state-size 256MiB \
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
         and the state (concurrent flushes of one directory shared), so the local disk's sync \
         latency bounds the rate.",
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
        out.throughput.push((
            clients,
            o.requests_per_second(),
            o.requests.p50(),
            o.requests.percentile(90.0),
            o.requests.p99(),
        ));
    }
    section.table(table);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let series = [("p50", 0usize), ("p90", 1), ("p99", 2)]
        .into_iter()
        .map(|(name, i)| svg::Series {
            name: format!("request {name}"),
            points: out
                .throughput
                .iter()
                .map(|(c, _, p50, p90, p99)| (*c as f64, ms([*p50, *p90, *p99][i])))
                .collect(),
        })
        .collect();
    section.text(chart(
        settings,
        "latency-vs-clients",
        &svg::Chart {
            title: "Request latency percentiles against clients (local disk)".into(),
            x_label: "concurrent clients".into(),
            y_label: "latency, ms".into(),
            log_y: false,
            series,
        },
    )?);
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
    out.large = Some((
        size,
        o.write_peak_rss as f64 / size as f64,
        o.read_peak_rss as f64 / size as f64,
    ));
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
         runs that landed. A run that fails is started again, as a CI pipeline's retry would \
         (up to {} attempts), so the wall time is the time until every run has landed.",
        terraform::ATTEMPTS
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
            o.failures_cell(),
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
             The failed run is started again, and its wait starts over with Terraform's \
             back-off; the serial growth shows how many runs landed. Through the front the `.tflock` PutObject \
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
