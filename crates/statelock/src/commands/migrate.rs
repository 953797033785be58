//! `statelock migrate dynamodb`: move a bucket from DynamoDB locking (`dynamodb_table`) to
//! S3-native `.tflock` locks, with the checks the usual migration steps leave to luck: a lock
//! still held in the table at cut-over, stale `-md5` digests, and clients still using the
//! table when it is about to be deleted.

mod apply;
mod report;
mod survey;
mod usage;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use statelock_dynamodb::{DynamoConfig, LockTable};

use crate::commands::store_args::StoreArgs;
use crate::commands::{nothing_or_refused, runtime};
use crate::store_url::StoreUrl;

pub use apply::DigestAction;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Plan (and with --apply, carry out) the move from a DynamoDB lock table to .tflock locks.
    #[command(long_about = ABOUT, after_help = AFTER_HELP)]
    Dynamodb(DynamodbArgs),
}

const ABOUT: &str = "\
Plan, and with --apply carry out, the move from DynamoDB locking (`dynamodb_table`) to
S3-native locking (`use_lockfile = true`) for the states of one bucket.

By default nothing is changed. The plan lists:
  - locks held in the table, with the holder's record and age;
  - digest items (`<bucket>/<key>-md5`) and whether each matches the MD5 of the state object
    now: clients still on `dynamodb_table` retry a stale digest for 10 s and then refuse the
    state;
  - orphaned items: digests of states that no longer exist, items of other buckets or outside
    the store's prefix (those are never touched), unrecognised items;
  - states without a digest.

With --apply it refuses while a lock is held in the table (exit 2), unless --move-held-locks:
each held record is then written verbatim as `<key>.tflock` with If-None-Match: * and the
DynamoDB item is deleted only if unchanged (if its holder released it meanwhile, the
.tflock is removed again). Move a lock only when its holder is gone (a stuck lock) or will
finish with `terraform force-unlock <ID>` on the new configuration: a running client on
`dynamodb_table` cannot release the moved lock itself. --stale-digests refreshes or deletes
stale digests; --delete-orphaned-digests deletes digests of states that no longer exist.

Every run prints the backend change (with the both-locks transition step for Terraform
>= 1.11 and OpenTofu >= 1.10) and the checklist for retiring the table. The `usage`
subcommand checks the checklist's \"all consumers have migrated\".

Credentials and region come from the standard AWS environment (AWS_REGION, AWS_PROFILE...);
--dynamodb-endpoint points at DynamoDB-compatible servers.";

const AFTER_HELP: &str = "\
Examples:
  statelock migrate dynamodb --table tf-locks --store s3://tf-state
  statelock migrate dynamodb --table tf-locks --store s3://tf-state --apply --stale-digests refresh
  statelock migrate dynamodb --table tf-locks --store s3://tf-state --apply --move-held-locks
  statelock migrate dynamodb --table tf-locks --store s3://tf-state usage --since 7d

Exit codes:
  0  planned, or applied without failures; `usage`: no client still uses the table
  1  error, or a change failed (the report says which)
  2  --apply refused: a lock is held in DynamoDB and --move-held-locks was not given
  5  `usage`: some client still writes DynamoDB locks or digests";

#[derive(Debug, Args)]
pub struct DynamodbArgs {
    /// The DynamoDB lock table (`dynamodb_table` in the backend configuration).
    #[arg(long, env = "STATELOCK_DYNAMODB_TABLE")]
    pub table: String,

    /// Endpoint of a DynamoDB-compatible server; AWS if unset.
    #[arg(long, env = "STATELOCK_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// Make the changes; without it nothing is changed.
    #[arg(long)]
    pub apply: bool,

    /// With --apply: move locks held in DynamoDB to .tflock objects instead of refusing.
    #[arg(long, requires = "apply")]
    pub move_held_locks: bool,

    /// With --apply: what to do with digests that do not match their state.
    #[arg(long, value_enum, default_value = "keep", requires = "apply")]
    pub stale_digests: DigestAction,

    /// With --apply: delete digests of states that no longer exist.
    #[arg(long, requires = "apply")]
    pub delete_orphaned_digests: bool,

    /// One JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(subcommand)]
    pub check: Option<DynamodbCheck>,
}

#[derive(Debug, Subcommand)]
pub enum DynamodbCheck {
    /// Report clients that still write DynamoDB lock items or digests.
    #[command(long_about = usage::ABOUT)]
    Usage(usage::UsageArgs),
}

/// The plan's JSON document.
#[derive(Serialize)]
struct PlanJson<'a> {
    #[serde(flatten)]
    survey: &'a survey::Survey,
    applied: bool,
    refused: Option<String>,
    changes: &'a [apply::Outcome],
}

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let MigrateCommand::Dynamodb(args) = args.command;
    runtime()?.block_on(dynamodb(args))
}

async fn dynamodb(args: DynamodbArgs) -> anyhow::Result<ExitCode> {
    let StoreUrl::S3 { bucket, prefix } = args.store.url()? else {
        anyhow::bail!("--store must be s3://BUCKET[/PREFIX]: DynamoDB lock items name S3 buckets");
    };
    let bucket = args.store.bucket_name.clone().unwrap_or(bucket);
    let store = if args.apply {
        args.store.open_for_changes().await?
    } else {
        args.store.open().await?
    };
    let table = LockTable::connect(
        &DynamoConfig::new(&args.table)
            .endpoint(args.dynamodb_endpoint.clone())
            .region(args.store.s3.s3_region.clone()),
    )
    .await;
    eprintln!(
        "statelock: scanning {} and reading the states it names...",
        table.describe()
    );
    let survey = survey::Survey::take(&table, &store, &bucket, prefix.as_deref())
        .await
        .with_context(|| format!("cannot survey {}", table.describe()))?;
    if let Some(DynamodbCheck::Usage(usage_args)) = &args.check {
        return usage::run(&survey, usage_args, args.json);
    }

    let mut outcomes = Vec::new();
    let mut refused = None;
    if args.apply {
        if !survey.locks.is_empty() && !args.move_held_locks {
            refused = Some(format!(
                "refusing to apply: {} lock(s) held in DynamoDB ({}); wait for them to be released, or pass --move-held-locks",
                survey.locks.len(),
                survey
                    .locks
                    .iter()
                    .map(|l| match &l.holder {
                        Some(h) => format!(
                            "{} by {} since {}",
                            l.store_key,
                            h.who,
                            h.created.to_rfc3339()
                        ),
                        None => format!("{} (unreadable)", l.store_key),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        } else {
            for lock in &survey.locks {
                outcomes.push(apply::move_lock(&table, &store, lock).await);
            }
            for digest in survey.stale_digests() {
                outcomes.extend(
                    apply::fix_digest(&table, &store, &survey, digest, args.stale_digests).await,
                );
            }
            if args.delete_orphaned_digests {
                for orphan in &survey.orphans {
                    outcomes.extend(
                        apply::delete_orphan(&table, &orphan.lock_id, &orphan.reason).await,
                    );
                }
            }
        }
    }

    if args.json {
        let doc = PlanJson {
            survey: &survey,
            applied: args.apply && refused.is_none(),
            refused: refused.clone(),
            changes: &outcomes,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report::survey_text(&survey));
        if args.apply && refused.is_none() {
            println!();
            print!("{}", report::outcomes_text(&outcomes));
        } else if !args.apply {
            println!("\nNothing was changed (plan only; pass --apply to make changes).");
        }
        println!();
        print!("{}", report::backend_change(&args.table));
        println!();
        print!(
            "{}",
            report::retire_checklist(&args.table, &args.store.store)
        );
    }
    if let Some(reason) = refused {
        eprintln!("statelock: {reason}");
        return Ok(nothing_or_refused());
    }
    if outcomes.iter().any(|o| !o.ok) {
        anyhow::bail!("some changes failed; see the report above");
    }
    Ok(ExitCode::SUCCESS)
}
