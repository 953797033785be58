//! `statelock locks` against locks written straight into a bucket by boto3 following
//! Terraform ≥1.10's lockfile sequence (spec §2.3: create-if-absent with a SHA-256 checksum),
//! on moto (versioned) and SeaweedFS.

use std::process::Output;

use crate::harness::statelock_on as statelock;

use statelock_test_support::{S3Server, moto, seaweedfs, unique_name};

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
    let fresh = record(
        "aaaaaaaa-0000-4000-8000-000000000001",
        "alice@laptop",
        &chrono_now(),
        &format!("{bucket}/app/terraform.tfstate"),
    );
    let old = record(
        "bbbbbbbb-0000-4000-8000-000000000002",
        "ci@runner",
        "2020-01-01T00:00:00Z",
        &format!("{bucket}/old/terraform.tfstate"),
    );
    server.boto3(LOCK, &[&bucket, "app/terraform.tfstate", &fresh]);
    server.boto3(LOCK, &[&bucket, "old/terraform.tfstate", &old]);

    let ls = statelock(server, &bucket, &["locks", "ls"]);
    assert_eq!(ls.status.code(), Some(0), "{}", err(&ls));
    let table = out(&ls);
    eprint!("locks ls[{}]:\n{table}", server.name);
    assert!(table.starts_with("STATE KEY"), "{table}");
    assert!(
        table.contains("app/terraform.tfstate  aaaaaaaa-0000-4000-8000-000000000001  alice@laptop")
    );
    assert!(table.contains("ci@runner") && table.contains("OperationTypeApply"));

    let json: serde_json::Value = serde_json::from_str(&out(&statelock(
        server,
        &bucket,
        &["locks", "ls", "--json"],
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["lock"]["Who"], "alice@laptop");

    let show = statelock(server, &bucket, &["locks", "show", "old/terraform.tfstate"]);
    assert!(
        out(&show).contains("Lock Info:\n  ID:        bbbbbbbb-0000-4000-8000-000000000002"),
        "{}",
        out(&show)
    );

    // A wrong ID removes nothing.
    let wrong = statelock(
        server,
        &bucket,
        &["locks", "unlock", "app/terraform.tfstate", "--id", "wrong"],
    );
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

    let one = statelock(
        server,
        &bucket,
        &[
            "locks",
            "unlock",
            "app/terraform.tfstate",
            "--id",
            "aaaaaaaa-0000-4000-8000-000000000001",
        ],
    );
    assert_eq!(one.status.code(), Some(0), "{}", err(&one));
    eprintln!("locks unlock[{}]: {}", server.name, out(&one).trim());
    assert!(out(&one).contains("conditional delete") || out(&one).contains("plain delete"));
    assert_eq!(
        statelock(server, &bucket, &["locks", "ls"]).status.code(),
        Some(2)
    );

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

/// Now as RFC 3339, from the system clock (no date crate needed for one timestamp).
fn chrono_now() -> String {
    statelock_core::Timestamp::now().to_rfc3339()
}

#[test]
fn locks_on_moto() {
    locks_lifecycle(moto());
}

#[test]
fn locks_on_seaweedfs() {
    locks_lifecycle(seaweedfs());
}
