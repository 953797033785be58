//! `statelock probe`: does this store give real mutual exclusion? Runs the library's full
//! probe ([`statelock_store::probe_store`], the one implementation `serve`'s start-up check
//! also builds on), prints a verdict table and one verdict line, and sets the exit code.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use statelock_store::{ProbeOptions, ProbeReport, probe_store};

use crate::commands::store_args::StoreArgs;
use crate::commands::{EXIT_UNSAFE, runtime};

pub const PROBE_ABOUT: &str = "\
Check that a store gives real mutual exclusion for lockfile locking.

On scratch keys under .statelock/probe/ (removed afterwards) it checks: If-None-Match: *
create (accepted, then refused); If-Match with a stale ETag and on a missing key (refused);
conditional delete with a stale ETag (refused); many creators racing for one key over several
rounds (exactly one winner each); a compare-and-swap race (no lost increment); the
delete-marker rule (a deleted lock can be created again); and acceptance of the checksum
headers Terraform and OpenTofu send (x-amz-checksum-sha256, Content-MD5).";

pub const PROBE_EXIT_CODES: &str = "\
Exit codes:
  0  safe for Terraform/OpenTofu lockfile locking
  1  error (the store could not be used at all)
  3  unsafe: an essential check failed";

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
            println!("{}", report.verdict());
        }
        Ok(if report.locking_is_safe() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_UNSAFE)
        })
    })
}

fn mark(passed: bool, essential: bool) -> &'static str {
    match (passed, essential) {
        (true, _) => "PASS",
        (false, true) => "FAIL",
        (false, false) => "WARN",
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
            "{}  {:<width$}  {}\n",
            mark(c.passed, c.essential),
            c.name,
            c.detail
        ));
    }
    out
}

fn to_json(report: &ProbeReport) -> serde_json::Value {
    json!({
        "store": report.store,
        "safe": report.locking_is_safe(),
        "verdict": report.verdict(),
        "checks": report.checks.iter().map(|c| json!({
            "name": c.name,
            "result": mark(c.passed, c.essential),
            "essential": c.essential,
            "detail": c.detail,
        })).collect::<Vec<_>>(),
    })
}
