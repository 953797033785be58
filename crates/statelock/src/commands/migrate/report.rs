//! How the survey, the changes and the next steps are printed: tables for people, one JSON
//! document with `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use super::apply::Outcome;
use super::survey::Survey;
use crate::commands::locks::view::age_text;

/// The plan as tables: held locks, digests, orphans, states without a digest.
pub fn survey_text(s: &Survey) -> String {
    let mut out = String::new();
    let place = match &s.prefix {
        Some(p) => format!("s3://{}/{p}", s.bucket),
        None => format!("s3://{}", s.bucket),
    };
    let _ = writeln!(out, "DynamoDB table {} against {place}\n", s.table);

    let _ = writeln!(out, "Locks held in DynamoDB: {}", s.locks.len());
    let rows: Vec<Vec<String>> = s
        .locks
        .iter()
        .map(|l| match &l.holder {
            Some(h) => vec![
                l.store_key.clone(),
                h.id.clone(),
                h.who.clone(),
                h.operation.clone(),
                h.version.clone(),
                age_text(l.age_secs.map(Duration::from_secs)),
            ],
            None => vec![
                l.store_key.clone(),
                format!("UNREADABLE ({})", l.unreadable.as_deref().unwrap_or("?")),
                "-".into(),
                "-".into(),
                "-".into(),
                "?".into(),
            ],
        })
        .collect();
    push_table(
        &mut out,
        &["STATE KEY", "LOCK ID", "WHO", "OPERATION", "VERSION", "AGE"],
        &rows,
    );

    let _ = writeln!(out, "\nDigest items: {}", s.digests.len());
    let rows: Vec<Vec<String>> = s
        .digests
        .iter()
        .map(|d| {
            vec![
                d.store_key.clone(),
                d.digest.clone(),
                match d.status {
                    super::survey::DigestStatus::Matches => "matches".to_owned(),
                    super::survey::DigestStatus::Stale => {
                        format!("STALE (state is {})", d.state_md5)
                    }
                    super::survey::DigestStatus::Invalid => "INVALID".to_owned(),
                },
            ]
        })
        .collect();
    push_table(&mut out, &["STATE KEY", "DIGEST", "STATUS"], &rows);

    let _ = writeln!(out, "\nOrphaned items: {}", s.orphans.len());
    let rows: Vec<Vec<String>> = s
        .orphans
        .iter()
        .map(|o| {
            vec![
                o.lock_id.clone(),
                o.kind.to_owned(),
                o.reason.text().to_owned(),
            ]
        })
        .collect();
    push_table(&mut out, &["LOCKID", "KIND", "WHY"], &rows);

    let _ = writeln!(
        out,
        "\nStates without a digest: {}",
        s.undigested_states.len()
    );
    for key in &s.undigested_states {
        let _ = writeln!(out, "  {key}");
    }
    out
}

/// The changes `--apply` made.
pub fn outcomes_text(outcomes: &[Outcome]) -> String {
    let mut out = format!("Changes: {}\n", outcomes.len());
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.item.clone(),
                o.action.clone(),
                if o.ok { "done".into() } else { "FAILED".into() },
                o.detail.clone(),
            ]
        })
        .collect();
    push_table(&mut out, &["LOCKID", "ACTION", "RESULT", "DETAIL"], &rows);
    out
}

/// The backend change, with the both-locks transition step, for a table and bucket.
pub fn backend_change(table: &str) -> String {
    format!(
        r#"Backend change, in every configuration that uses table {table}:

  Step 1, transition (Terraform >= 1.11, OpenTofu >= 1.10): keep the table, add the lockfile.
    backend "s3" {{
      # bucket, key, region... unchanged
      dynamodb_table = "{table}"
      use_lockfile   = true
    }}
  Such clients take the .tflock lock first, then the DynamoDB lock, so they exclude both
  clients not yet changed and clients already on the lockfile. Older clients (Terraform
  < 1.11, OpenTofu < 1.10) cannot take both: upgrade them, or point them at
  `statelock serve --store s3://BUCKET --dynamodb-table {table}`, which does.
  Run `terraform init -reconfigure` after the change.

  Step 2, once no client runs without step 1: drop the table from the backend.
    backend "s3" {{
      # bucket, key, region... unchanged
      use_lockfile = true
    }}
  Run `terraform init -reconfigure`, then `terraform plan`: it must succeed without DynamoDB.
"#
    )
}

/// What must be true before the table is deleted, in order.
pub fn retire_checklist(table: &str, store: &str) -> String {
    format!(
        r#"Checklist for retiring table {table}:
  [ ] Every configuration runs step 1 (both locks) or step 2 (lockfile only).
  [ ] The usage check reports no client writing DynamoDB locks or digests:
        statelock migrate dynamodb --table {table} --store {store} usage --since <time of the last step-1 rollout>
  [ ] This plan shows no lock held in DynamoDB (or they were moved with --move-held-locks).
  [ ] Every configuration runs step 2; `terraform plan` succeeds in each.
  [ ] Run the usage check once more over a period covering every pipeline's schedule.
  [ ] Remove DynamoDB from IAM policies (`statelock iam-policy` without --dynamodb-table).
  [ ] Back up, then delete the table:
        aws dynamodb create-backup --table-name {table} --backup-name {table}-before-delete
        aws dynamodb delete-table --table-name {table}
"#
    )
}

/// A left-aligned table, header first; `(none)` when there are no rows.
pub fn push_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut text = String::from(" ");
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            text.push(' ');
            if i + 1 == cells.len() {
                text.push_str(c);
            } else {
                let _ = write!(text, "{c:<w$}", w = *w);
                text.push(' ');
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
