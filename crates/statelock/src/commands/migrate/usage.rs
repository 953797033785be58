//! `statelock migrate dynamodb ... usage --since TIME`: does any client still write to the
//! lock table? Turns the migration's "only after all consumers have migrated" into a check.
//!
//! DynamoDB keeps no write times, so the evidence is indirect (see [`ABOUT`]): a lock item
//! created after TIME, or a digest item that equals the MD5 of a state object last modified
//! after TIME, i.e. the client that wrote that state also wrote its digest. Items statelock
//! writes carry `WrittenBy = "statelock"`; a Terraform or OpenTofu put replaces the whole item
//! and drops that marker, so statelock's own writes (dual-lock server, digest refresh) are
//! told apart and not counted.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;
use statelock_core::Timestamp;

use super::report::push_table;
use super::survey::{DigestStatus, Survey};
use crate::commands::EXIT_STILL_IN_USE;

pub const ABOUT: &str = "\
Report whether any client still writes DynamoDB lock items or digests, so that \"all
consumers have migrated\" is a fact before the table is deleted.

Method: DynamoDB records no write times, so the check reads the evidence the clients leave:
  - a lock item whose record was created at or after --since: a client on `dynamodb_table`
    (alone or with use_lockfile) holds a lock right now;
  - a digest item equal to the MD5 of its state object, where that object was last modified
    at or after --since: the client that wrote the state also wrote the digest, so it still
    has `dynamodb_table` configured. After a client drops `dynamodb_table`, its writes leave
    the digest stale and it is no longer counted.
Items statelock writes itself (dual-lock server, digest refresh) carry WrittenBy=statelock,
which a Terraform or OpenTofu write removes; they are reported apart and not counted.

Limits: only the newest write of each state and the locks held at this moment are visible. A
client on `dynamodb_table` that last ran before --since, or whose write was followed by a
lockfile-only client's write of the same state, is not seen; a `terraform plan` takes and
releases a lock without writing anything. Choose --since as the time of the last backend
change, run the check after a period that covers every pipeline's schedule, and for
certainty also look at the table's write metrics (CloudWatch ConsumedWriteCapacityUnits) or
CloudTrail data events. Exit code 0: nothing found; 5: some client still uses the table.";

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Count writes at or after this time: RFC 3339 (2026-01-31T12:00:00Z) or a duration ago
    /// (90m, 12h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Timestamp,
}

/// One sign of a client still using the table.
#[derive(Debug, Serialize)]
struct Use {
    state_key: String,
    kind: &'static str,
    /// When: the lock's `Created`, or the state object's modification time.
    at: String,
    /// The lock holder (`who`, Terraform version, operation), for lock items.
    holder: Option<String>,
}

#[derive(Serialize)]
struct UsageJson<'a> {
    since: String,
    in_use: bool,
    uses: &'a [Use],
    /// Items written by statelock itself, not counted.
    written_by_statelock: usize,
}

pub fn run(survey: &Survey, args: &UsageArgs, json: bool) -> anyhow::Result<ExitCode> {
    let since = args.since;
    let mut uses = Vec::new();
    let mut by_statelock = 0;
    for lock in &survey.locks {
        if lock.written_by_statelock {
            by_statelock += 1;
            continue;
        }
        // An unreadable record has no time; a held lock is in use whatever its age.
        let created = lock.holder.as_ref().map(|h| h.created);
        if created.is_none_or(|c| c.unix_secs() >= since.unix_secs()) {
            uses.push(Use {
                state_key: lock.store_key.clone(),
                kind: "lock",
                at: created.map_or_else(|| "?".to_owned(), |c| c.to_rfc3339()),
                holder: lock.holder.as_ref().map(|h| {
                    format!(
                        "{} (Terraform/OpenTofu {}, {})",
                        h.who, h.version, h.operation
                    )
                }),
            });
        }
    }
    for digest in &survey.digests {
        if digest.written_by_statelock {
            by_statelock += 1;
            continue;
        }
        let Some(modified) = digest.state_modified else {
            continue;
        };
        let modified = Timestamp::from_system_time(modified);
        if digest.status == DigestStatus::Matches && modified.unix_secs() >= since.unix_secs() {
            uses.push(Use {
                state_key: digest.store_key.clone(),
                kind: "digest",
                at: modified.to_rfc3339(),
                holder: None,
            });
        }
    }
    if json {
        let doc = UsageJson {
            since: since.to_rfc3339(),
            in_use: !uses.is_empty(),
            uses: &uses,
            written_by_statelock: by_statelock,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if uses.is_empty() {
        println!(
            "No client has written DynamoDB locks or digests to table {} for s3://{} since {} ({by_statelock} item(s) written by statelock not counted).",
            survey.table,
            survey.bucket,
            since.to_rfc3339()
        );
    } else {
        println!(
            "Table {} is still in use: {} sign(s) of clients writing DynamoDB locks or digests since {}:",
            survey.table,
            uses.len(),
            since.to_rfc3339()
        );
        let rows: Vec<Vec<String>> = uses
            .iter()
            .map(|u| {
                vec![
                    u.state_key.clone(),
                    u.kind.to_owned(),
                    u.at.clone(),
                    u.holder.clone().unwrap_or_else(|| {
                        "a client with dynamodb_table wrote this state and its digest".to_owned()
                    }),
                ]
            })
            .collect();
        let mut out = String::new();
        push_table(&mut out, &["STATE KEY", "ITEM", "AT", "WHO"], &rows);
        print!("{out}");
        println!("Do not delete the table yet: these clients would fail without it.");
    }
    Ok(if uses.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_STILL_IN_USE)
    })
}

/// RFC 3339, or a duration before now (`7d`, `12h`, `90m`).
fn parse_since(text: &str) -> Result<Timestamp, String> {
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    let ago = match text.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => Duration::from_secs(days.saturating_mul(86_400)),
        _ => statelock_core::parse_duration(text).map_err(|e| {
            format!("{e}; --since takes an RFC 3339 time (2026-01-31T12:00:00Z) or a duration ago (12h, 7d)")
        })?,
    };
    let at = SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{text:?} reaches before the epoch"))?;
    Ok(Timestamp::from_system_time(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations_ago() {
        assert_eq!(
            parse_since("2026-01-31T12:00:00Z").unwrap().to_rfc3339(),
            "2026-01-31T12:00:00Z"
        );
        let now = Timestamp::now().unix_secs();
        let week = parse_since("7d").unwrap().unix_secs();
        assert!((now - week - 7 * 86_400).abs() <= 2);
        let hours = parse_since("12h").unwrap().unix_secs();
        assert!((now - hours - 12 * 3600).abs() <= 2);
        assert!(parse_since("yesterday").is_err());
    }
}
