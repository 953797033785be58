//! `statelock locks` on what Terraform 1.15.5's `backend "s3"` with `use_lockfile = true`
//! leaves in a bucket, on moto (versioned) and SeaweedFS: an apply killed with SIGKILL at its
//! approval prompt leaves a stuck `.tflock`; `locks ls` shows its holder, Terraform version and
//! age; `locks unlock --id` removes it, and the next apply succeeds. Two fixtures no live
//! Terraform can write are put with boto3 (create-if-absent with a SHA-256 checksum, spec
//! §2.3): a lock created in 2020, for `--older-than`, and an object that is not a lock record.

use std::process::Output;

use crate::harness::statelock_on as statelock;
use crate::harness::{PendingApply, S3Locking, Workdir};

use statelock_test_support::{S3Server, Terraform, moto, seaweedfs, unique_name};

const LOCK: &str = r#"
bucket, key, body = sys.argv[1:4]
s3.put_object(Bucket=bucket, Key=key + ".tflock", Body=body.encode(), IfNoneMatch="*",
              ContentType="application/json", ChecksumAlgorithm="SHA256")
"#;

fn record(id: &str, who: &str, created: &str, path: &str) -> String {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.10.0","Created":"{created}","Path":"{path}"}}"#
    )
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn locks_lifecycle(server: &'static S3Server) {
    let bucket = unique_name("statelock-locks");
    server.create_bucket(&bucket, true);
    let key = "app/terraform.tfstate";
    let tf = Workdir::s3_backend(
        Terraform::V1_15_5,
        server,
        &bucket,
        key,
        &S3Locking::lockfile(),
    );
    tf.apply_ok(1);

    // A CI job cancelled mid-apply: SIGKILL while Terraform holds the lock at its prompt.
    let mut pending = PendingApply::start(&tf, 2);
    let stuck = pending.wait_for_lock_object(server, &bucket, key);
    pending.kill();
    assert!(
        server.object(&bucket, &format!("{key}.tflock")).is_some(),
        "SIGKILL leaves the lock behind"
    );
    let id = stuck["ID"].as_str().unwrap().to_owned();
    let blocked = tf.fails(&["apply", "-input=false", "-auto-approve", "-var", "n=3"]);
    assert!(
        blocked.contains("Error acquiring the state lock"),
        "{blocked}"
    );

    let old = record(
        "bbbbbbbb-0000-4000-8000-000000000002",
        "ci@runner",
        "2020-01-01T00:00:00Z",
        &format!("{bucket}/old/terraform.tfstate"),
    );
    server.boto3(LOCK, &[&bucket, "old/terraform.tfstate", &old]);

    let ls = statelock(server, &bucket, &["locks", "ls"]);
    assert_eq!(ls.status.code(), Some(0), "{}", err(&ls));
    let table = out(&ls);
    eprint!("locks ls[{}]:\n{table}", server.name);
    assert!(table.starts_with("STATE KEY"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no row for {key}:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], id, "{row}");
    assert_eq!(cells[2], stuck["Who"].as_str().unwrap(), "{row}");
    assert_eq!(&cells[3..5], ["OperationTypeApply", "1.15.5"], "{row}");
    assert!(
        cells[5].ends_with('s') && cells[5].len() <= 6,
        "a fresh age: {row}"
    );
    assert!(table.contains("ci@runner") && table.contains("OperationTypeApply"));

    let json: serde_json::Value = serde_json::from_str(&out(&statelock(
        server,
        &bucket,
        &["locks", "ls", "--json"],
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["lock"]["ID"], id.as_str());
    assert_eq!(json[0]["lock"]["Version"], "1.15.5");
    assert!(json[0]["age_seconds"].as_u64().unwrap() < 600, "{json}");

    let show = statelock(server, &bucket, &["locks", "show", "old/terraform.tfstate"]);
    assert!(
        out(&show).contains("Lock Info:\n  ID:        bbbbbbbb-0000-4000-8000-000000000002"),
        "{}",
        out(&show)
    );

    // A wrong ID removes nothing.
    let wrong = statelock(server, &bucket, &["locks", "unlock", key, "--id", "wrong"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        err(&wrong).contains("refused, nothing was removed"),
        "{}",
        err(&wrong)
    );
    assert_eq!(
        statelock(server, &bucket, &["locks", "ls"]).status.code(),
        Some(0)
    );

    // Bulk: only the old lock matches; no terminal and no --yes is refused.
    let dry = statelock(
        server,
        &bucket,
        &["locks", "unlock", "--older-than", "24h", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", err(&dry));
    assert!(out(&dry).contains("would remove 1 lock(s)") && out(&dry).contains("ci@runner"));
    let refused = statelock(server, &bucket, &["locks", "unlock", "--older-than", "24h"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(err(&refused).contains("pass --yes"), "{}", err(&refused));
    let yes = statelock(
        server,
        &bucket,
        &["locks", "unlock", "--older-than", "24h", "--yes"],
    );
    assert_eq!(yes.status.code(), Some(0), "{}", err(&yes));
    assert!(
        out(&yes).contains("removed old/terraform.tfstate.tflock"),
        "{}",
        out(&yes)
    );

    let one = statelock(server, &bucket, &["locks", "unlock", key, "--id", &id]);
    assert_eq!(one.status.code(), Some(0), "{}", err(&one));
    eprintln!("locks unlock[{}]: {}", server.name, out(&one).trim());
    // moto and SeaweedFS honour If-Match on DELETE: no fallback here (see `stores.rs`).
    assert!(out(&one).contains("conditional delete"), "{}", out(&one));
    assert_eq!(
        statelock(server, &bucket, &["locks", "ls"]).status.code(),
        Some(2)
    );
    // The stuck lock is gone: Terraform applies again, on the state the killed run left.
    tf.apply_ok(3);
    assert_eq!(tf.ok(&["output", "-raw", "n"]), "3");

    // An unreadable lock object needs --force-unreadable.
    server.boto3(LOCK, &[&bucket, "junk/terraform.tfstate", "not json"]);
    let ls = out(&statelock(server, &bucket, &["locks", "ls"]));
    assert!(ls.contains("UNREADABLE"), "{ls}");
    let plain = statelock(
        server,
        &bucket,
        &["locks", "unlock", "junk/terraform.tfstate", "--id", "x"],
    );
    assert_eq!(plain.status.code(), Some(2));
    assert!(
        err(&plain).contains("--force-unreadable"),
        "{}",
        err(&plain)
    );
    let forced = statelock(
        server,
        &bucket,
        &[
            "locks",
            "unlock",
            "junk/terraform.tfstate",
            "--force-unreadable",
        ],
    );
    assert_eq!(forced.status.code(), Some(0), "{}", err(&forced));
    assert!(
        out(&forced).contains("not json")
            && out(&forced).contains("removed unreadable lock object")
    );
    assert_eq!(
        statelock(server, &bucket, &["locks", "ls"]).status.code(),
        Some(2)
    );
}

#[test]
fn locks_on_moto() {
    locks_lifecycle(moto());
}

#[test]
fn locks_on_seaweedfs() {
    locks_lifecycle(seaweedfs());
}
