//! `statelock-bench`: runs the end-to-end benchmarks against the release `statelock serve`
//! binary and writes `BENCHMARKS.md`. The documented way to run it is `bash scripts/bench.sh`,
//! which builds in release mode first; micro-benchmarks are `cargo bench -p statelock-bench`.

mod client;
mod faults;
mod handoff;
mod http;
mod large;
mod overhead;
mod report;
mod round_trips;
mod run;
mod s3_front;
mod server;
mod state_doc;
mod stats;
mod svg;
mod terraform;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// A scenario, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 1. Lock hand-off under contention.
    Handoff,
    /// 2. Concurrent Terraform 1.0.3 applies.
    Terraform,
    /// 3. Server overhead per operation.
    Overhead,
    /// 4. Throughput on small states.
    Throughput,
    /// 5. Large states.
    Large,
    /// 6. Store round trips per Terraform request.
    RoundTrips,
    /// 7. Terraform 1.15.5 through the S3 front.
    S3Front,
}

const ABOUT: &str = "\
Benchmarks statelock against the setups users pick today, side by side in one run, and writes
the tables to BENCHMARKS.md with the command, the machine and the date.

Scenarios:
  1. Lock hand-off under contention: N clients wait for a held lock, either in the server's lock
     queue (?wait=) or polling as Terraform's -lock-timeout does (1 s doubling to 16 s); on the
     local-disk store and on moto.
  2. 8 concurrent Terraform 1.0.3 applies: statelock with ?wait= versus backend \"s3\" with a
     DynamoDB lock table on moto and -lock-timeout=5m.
  3. Server overhead per operation versus the raw store call (LOCK+UNLOCK, GET, POST).
  4. Throughput at 1, 16 and 64 clients, with the server's CPU time and peak RSS.
  5. Large states: 100 MiB write and read, MB/s and peak RSS.
  6. Store round trips per Terraform request, counted through the storage port, for the http
     and S3 fronts (calls, sequential round trips, fsyncs), and whole applies on the local disk
     and on moto against the floor of four raw store requests.
  7. Terraform 1.15.5's backend \"s3\" with use_lockfile through statelock's S3 front versus
     directly on the same moto bucket: one apply at a time, then 8 concurrent applies (the
     front's lock queue against -lock-timeout=5m).

The server under test is a separate `statelock serve` process (the binary next to this one
unless --statelock says otherwise), so its CPU time and memory are its own. moto and Terraform
(1.0.3 and 1.15.5) come from .tools/ (bash scripts/setup-test-tools.sh), or $STATELOCK_TOOLS.

The full run takes about 15 minutes, mostly the polling clients' sleeps. --quick runs every
scenario that needs no moto or Terraform on a tiny setting, in seconds; CI uses it.";

const EXAMPLES: &str = "\
Examples:
  bash scripts/bench.sh                                   # the documented full run
  statelock-bench --quick --output /tmp/bench.md          # seconds; what CI runs
  statelock-bench --clients 1,8 --poll-max-clients 8 --no-moto --output /tmp/b.md
  statelock-bench --only s3-front --output /tmp/s3-front.md # scenario 7 alone, ~2 minutes
  statelock-bench faults --duration 30m --seed 17        # the fault run (RELIABILITY.md)";

/// Command-line options.
#[derive(Parser, Debug)]
#[command(name = "statelock-bench", version, about = "Benchmarks statelock and writes BENCHMARKS.md", long_about = ABOUT, after_help = EXAMPLES)]
pub struct Args {
    /// `faults`: the randomized fault run with its checker instead of the benchmarks.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md", value_name = "FILE")]
    pub output: PathBuf,

    /// Tiny settings for CI: local disk only, no moto, no Terraform, small sizes.
    #[arg(long)]
    pub quick: bool,

    /// Run only these scenarios (comma-separated); the report holds just their sections and
    /// targets. Default: all of them.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SCENARIO")]
    pub only: Vec<Scenario>,

    /// The `statelock` binary to benchmark (default: the one next to this binary).
    #[arg(long, env = "STATELOCK_BIN", value_name = "PATH")]
    pub statelock: Option<PathBuf>,

    /// Numbers of contending clients in the hand-off scenario.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,64")]
    pub clients: Vec<usize>,

    /// Largest N for the polling arm: at N = 64 its sleeps alone take about 17 minutes.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub poll_max_clients: usize,

    /// Runs of each hand-off measurement and of scenario 7's concurrent applies; the
    /// targets use means per run.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub repetitions: usize,

    /// Skip everything that needs moto (hand-off on S3, the DynamoDB arm, the S3 front).
    #[arg(long)]
    pub no_moto: bool,

    /// Concurrent `terraform apply` runs per arm (scenarios 2 and 7); 0 skips both.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub terraform_runs: usize,

    /// Size of the large state, in MiB.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    pub large_mib: usize,

    /// Seconds each throughput level runs.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub throughput_seconds: f64,

    /// The command to record in the report (default: this process's command line).
    #[arg(long, env = "STATELOCK_BENCH_COMMAND", value_name = "TEXT")]
    pub record_command: Option<String>,
}

/// Subcommands besides the benchmarks.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// A randomized fault run over real replicas, store and clients, judged by an
    /// independent checker (exit status 1 when it finds a violation); see RELIABILITY.md.
    Faults(faults::FaultArgs),
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(Command::Faults(fault_args)) = args.command.take() {
        return match faults::run(fault_args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("statelock-bench faults: the checker found violations (see the report)");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("statelock-bench faults: error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match run::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statelock-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
