//! `statelock probe`: does this store give real mutual exclusion? Runs the library's full
//! probe ([`statelock_store::probe_store`], the one implementation `serve`'s start-up check
//! also builds on), prints a verdict table and one verdict line, and sets the exit code.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use statelock_store::{Need, ProbeCheck, ProbeOptions, ProbeReport, probe_store};

use crate::commands::store_args::StoreArgs;
use crate::commands::{EXIT_SERVE_UNSAFE, EXIT_UNSAFE, runtime};

pub const PROBE_ABOUT: &str = "\
Check whether a store gives real mutual exclusion, for two uses: Terraform's and OpenTofu's own
`use_lockfile` locking on the bucket, and `statelock serve` (which also needs compare-and-swap).

On scratch keys under .statelock/probe/ (removed afterwards) it checks: If-None-Match: *
create (accepted, then refused); If-Match with a stale ETag and on a missing key (refused),
and with the current ETag (accepted); conditional delete with a stale ETag (refused, or else
lock releases fall back to read-compare-delete); many creators racing for one key over several
rounds (exactly one winner each); a compare-and-swap race (no lost increment); the
delete-marker rule (a deleted lock can be created again); and acceptance of the checksum
headers Terraform and OpenTofu send (x-amz-checksum-sha256, Content-MD5). Each failed check
says what the store did and what follows; quirks statelock works around are listed.";

pub const PROBE_EXIT_CODES: &str = "\
Exit codes:
  0  safe for lockfile locking, and statelock serve can run
  1  error (the store could not be used at all)
  3  unsafe for lockfile locking (so statelock serve cannot run either)
  4  safe for lockfile locking, but statelock serve cannot run (compare-and-swap fails)";

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Creators racing for one key in each round.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..=500))]
    pub racers: u16,

    /// Rounds of the creators' race.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,

    /// The report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = args.store.open().await?;
        let options = ProbeOptions {
            racers: args.racers.into(),
            rounds: args.rounds.into(),
            ..ProbeOptions::default()
        };
        let report = probe_store(&store, &options, &|line: &str| eprintln!("{line}"))
            .await
            .context("the probe could not use the store")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&to_json(&report))?);
        } else {
            print!("{}", table(&report));
            println!("{}", report.lockfile_verdict());
            println!("{}", report.serve_verdict());
        }
        Ok(if !report.lockfile_is_safe() {
            ExitCode::from(EXIT_UNSAFE)
        } else if !report.serve_can_run() {
            ExitCode::from(EXIT_SERVE_UNSAFE)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn mark(check: &ProbeCheck) -> &'static str {
    match (check.passed, check.essential()) {
        (true, _) => "PASS",
        (false, true) => "FAIL",
        (false, false) => "WARN",
    }
}

/// Who relies on a check, in the table's last column and the JSON.
fn needed_by(check: &ProbeCheck) -> &'static str {
    match check.needed_by {
        Need::Lockfile => "lockfile+serve",
        Need::Serve => "serve",
        Need::Neither => "-",
    }
}

fn table(report: &ProbeReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = format!("probe of {}\n", report.store);
    for c in &report.checks {
        out.push_str(&format!(
            "{}  {:<14}  {:<width$}  {}\n",
            mark(c),
            needed_by(c),
            c.name,
            c.detail
        ));
    }
    for q in &report.quirks {
        out.push_str(&format!("handled: {q}\n"));
    }
    out
}

fn to_json(report: &ProbeReport) -> serde_json::Value {
    json!({
        "store": report.store,
        "lockfile_safe": report.lockfile_is_safe(),
        "serve_can_run": report.serve_can_run(),
        "lockfile_verdict": report.lockfile_verdict(),
        "serve_verdict": report.serve_verdict(),
        "checks": report.checks.iter().map(|c| json!({
            "name": c.name,
            "result": mark(c),
            "needed_by": needed_by(c),
            "detail": c.detail,
        })).collect::<Vec<_>>(),
        "quirks": report.quirks.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
