//! `state history KEY`: the state's versions from S3 object versions and the server's history
//! prefix, newest first, with the source and ID of each.

use std::process::ExitCode;

use clap::Args;

use super::KeyArgs;
use crate::commands::locks::state_key;
use crate::commands::nothing_or_refused;
use crate::commands::table;
use statelock_state::versions::{self, Entry};

pub const ABOUT: &str = "\
List a state's versions, newest first, from both sources: the S3 object versions of the key
(source s3-version; needs bucket versioning) and the versions `statelock serve` recorded under
.statelock/history/<key>/ (source server-history). Serial and lineage are read from each S3
version's body. Pass an ID to `state show`, `state diff` or `state rollback --to`.";

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: KeyArgs,

    /// One JSON object (`key`, `versions`) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Show only the newest N versions (each S3 version shown costs one read); 0 shows all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub async fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let key = state_key(&args.target.key)?;
    let store = args.target.store.open().await?;
    let found = versions::history(&*store, &key, args.limit).await?;
    let mut s3_ids = found
        .entries
        .iter()
        .filter(|e| e.source == versions::Source::S3Version)
        .map(|e| e.id.as_str())
        .peekable();
    if s3_ids.peek().is_some() && s3_ids.all(|id| id == "null") {
        eprintln!(
            "note: the only object version is \"null\": bucket versioning looks off, so older \
             states are not kept (see `statelock doctor`)"
        );
    }
    if found.entries.len() < found.total {
        eprintln!(
            "showing the newest {} of {} versions; --limit 0 shows all",
            found.entries.len(),
            found.total
        );
    }
    if args.json {
        let doc = serde_json::json!({
            "key": key.as_str(),
            "store": store.describe(),
            "object_versions": found.no_object_versions.is_none(),
            "total": found.total,
            "versions": found.entries,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if !found.entries.is_empty() {
        print!("{}", render(&found.entries));
    }
    if found.entries.is_empty() {
        let why = match &found.no_object_versions {
            Some(_) => format!("{} keeps no object versions", store.describe()),
            None => "the store has no object versions of it".to_owned(),
        };
        eprintln!(
            "state {key} has no history: {why}, and there is no server history under {}",
            statelock_state::history::state_prefix(&key)
        );
        return Ok(nothing_or_refused());
    }
    Ok(ExitCode::SUCCESS)
}

fn render(entries: &[Entry]) -> String {
    let cells: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let note = if e.is_delete_marker {
                "delete marker".to_owned()
            } else if e.is_current {
                "current".to_owned()
            } else {
                match (&e.kind, &e.who) {
                    (Some(kind), Some(who)) => format!("{kind} by {who}"),
                    _ => String::new(),
                }
            };
            vec![
                e.id.clone(),
                e.source.name().to_owned(),
                e.time.clone().unwrap_or_else(|| "?".into()),
                e.serial.map_or_else(|| "-".into(), |s| s.to_string()),
                e.lineage
                    .as_deref()
                    .map_or_else(|| "-".into(), |l| l.chars().take(8).collect()),
                e.size.to_string(),
                note,
            ]
        })
        .collect();
    table::render(
        &["ID", "SOURCE", "TIME", "SERIAL", "LINEAGE", "SIZE", "NOTE"],
        &cells,
    )
}
