//! `statelock migrate dynamodb` against a lock table and bucket that Terraform 1.0.3 filled
//! through `backend "s3"` with `dynamodb_table`, on moto (S3 and DynamoDB on one port).
//!
//! - the plan lists exactly what the table holds (locks, matching and stale digests,
//!   orphans, states without a digest) and changes nothing;
//! - `--apply` refuses while a lock is held and `--move-held-locks` moves it byte for byte;
//! - a stale digest makes Terraform 1.0.3 refuse the state, and `--stale-digests refresh`
//!   fixes that; orphaned digests are deleted only on request, other buckets' never;
//! - `state rollback --dynamodb-table` sets the rolled-back state's digest, so Terraform 1.0.3
//!   with `dynamodb_table` reads it; without the flag the digest is left stale and the
//!   command says so; an unreachable table fails before anything is written.

use std::time::{Duration, Instant};

use crate::harness::dynamo::Setup;
use crate::harness::{statelock_on, text};
use statelock_test_support::{Terraform, moto};

/// A lock record as Terraform 1.0.3 writes it for `lock_id`.
fn record(id: &str, who: &str, lock_id: &str) -> String {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.0.3","Created":"2026-01-02T03:04:05.123456789Z","Path":"{lock_id}"}}"#
    )
}

fn plan_json(setup: &Setup, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = setup.migrate(&args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn md5_of(setup: &Setup, key: &str) -> String {
    statelock_dynamodb::md5_hex(setup.object(key).unwrap().as_bytes())
}

/// Terraform writes a.tfstate and b.tfstate (with digests); b is then overwritten by a
/// client that does not update digests; c exists without a digest; there are a digest of a
/// deleted state and an item of another bucket.
fn filled(setup: &Setup) {
    setup.terraform(Terraform::V1_0_3, "a.tfstate").ok(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var",
        "n=1",
    ]);
    setup.terraform(Terraform::V1_0_3, "b.tfstate").ok(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var",
        "n=2",
    ]);
    let b = setup.object("b.tfstate").unwrap();
    // Same state, other bytes: valid for Terraform, but no longer what the digest says.
    setup.put_object("b.tfstate", &format!("{b}\n"));
    setup.put_object("c.tfstate", "{}");
    let bucket = &setup.bucket;
    setup.put_item(&[
        ("LockID", &format!("{bucket}/gone.tfstate-md5")),
        ("Digest", "0123456789abcdef0123456789abcdef"),
    ]);
    setup.put_item(&[
        ("LockID", "some-other-bucket/x.tfstate-md5"),
        ("Digest", "0123456789abcdef0123456789abcdef"),
    ]);
}

#[test]
fn the_plan_lists_what_the_table_holds_and_changes_nothing() {
    let setup = Setup::new(moto());
    filled(&setup);
    let bucket = setup.bucket.clone();
    let held = record(
        "5d109c26-30ce-86f3-fc6f-336cd8db7a28",
        "bob@laptop",
        &format!("{bucket}/a.tfstate"),
    );
    setup.put_item(&[("LockID", &format!("{bucket}/a.tfstate")), ("Info", &held)]);
    let before = setup.items();

    let plan = plan_json(&setup, &[]);
    println!("plan: {plan:#}");
    let locks = plan["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["store_key"], "a.tfstate");
    assert_eq!(locks[0]["holder"]["Who"], "bob@laptop");
    assert_eq!(locks[0]["raw_info"], held.as_str());
    let digests: Vec<(String, String)> = plan["digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["store_key"].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        digests,
        [
            ("a.tfstate".to_owned(), "matches".to_owned()),
            ("b.tfstate".to_owned(), "stale".to_owned())
        ]
    );
    assert_eq!(
        plan["digests"][1]["state_md5"],
        md5_of(&setup, "b.tfstate").as_str()
    );
    let orphans: Vec<(String, String)> = plan["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["lock_id"].as_str().unwrap().to_owned(),
                o["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        orphans,
        [
            (
                "some-other-bucket/x.tfstate-md5".to_owned(),
                "other-bucket".to_owned()
            ),
            (format!("{bucket}/gone.tfstate-md5"), "no-state".to_owned()),
        ]
    );
    assert_eq!(plan["undigested_states"], serde_json::json!(["c.tfstate"]));

    let table = setup.migrate(&[]);
    assert!(table.status.success(), "{}", text(&table));
    let stdout = String::from_utf8_lossy(&table.stdout);
    println!("{stdout}");
    for needle in [
        "Locks held in DynamoDB: 1",
        "bob@laptop",
        "STALE (state is",
        "digest of a state that does not exist",
        "item of another bucket (left alone)",
        "States without a digest: 1",
        "Nothing was changed",
        "use_lockfile   = true",
        "aws dynamodb delete-table",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert_eq!(setup.items(), before, "a plan must change nothing");
    assert_eq!(setup.object("a.tfstate.tflock"), None);
}

#[test]
fn apply_refuses_while_a_lock_is_held_and_moves_it_intact_on_request() {
    let setup = Setup::new(moto());
    let w = setup.terraform(Terraform::V1_0_3, "app.tfstate");
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=1"]);
    let lock_id = format!("{}/app.tfstate", setup.bucket);
    let held = record(
        "0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f",
        "alice@ci-runner-7",
        &lock_id,
    );
    setup.put_item(&[("LockID", &lock_id), ("Info", &held)]);

    let refused = setup.migrate(&["--apply"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to apply") && stderr.contains("alice@ci-runner-7"),
        "{stderr}"
    );
    assert!(
        setup.item(&lock_id).is_some(),
        "the refused apply removed the lock"
    );
    assert_eq!(setup.object("app.tfstate.tflock"), None);

    // Terraform on `dynamodb_table` sees the lock, naming its holder.
    let blocked = w.fails(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-lock-timeout=0s",
        "-var",
        "n=2",
    ]);
    assert!(blocked.contains("alice@ci-runner-7"), "{blocked}");

    let moved = setup.migrate(&["--apply", "--move-held-locks"]);
    assert!(moved.status.success(), "{}", text(&moved));
    println!("{}", String::from_utf8_lossy(&moved.stdout));
    assert_eq!(
        setup.object("app.tfstate.tflock").as_deref(),
        Some(held.as_str())
    );
    assert_eq!(setup.item(&lock_id), None);
    // The digest item is untouched.
    assert!(setup.item(&format!("{lock_id}-md5")).is_some());
}

#[test]
fn a_stale_digest_blocks_terraform_until_it_is_refreshed() {
    let setup = Setup::new(moto());
    filled(&setup);
    let w = setup.terraform_dir(Terraform::V1_0_3, "b.tfstate");
    let start = Instant::now();
    let refused = w.fails(&["init", "-input=false"]);
    println!(
        "terraform init on a stale digest failed after {:.1?}",
        start.elapsed()
    );
    assert!(
        refused.contains("does not have the expected content"),
        "{refused}"
    );
    assert!(start.elapsed() >= Duration::from_secs(8));

    let applied = setup.migrate(&[
        "--apply",
        "--stale-digests",
        "refresh",
        "--delete-orphaned-digests",
    ]);
    assert!(applied.status.success(), "{}", text(&applied));
    let stdout = String::from_utf8_lossy(&applied.stdout);
    println!("{stdout}");
    assert!(
        stdout.contains("refresh digest") && stdout.contains("delete orphaned digest"),
        "{stdout}"
    );
    let digest = setup
        .item(&format!("{}/b.tfstate-md5", setup.bucket))
        .unwrap();
    assert_eq!(digest["Digest"], md5_of(&setup, "b.tfstate").as_str());
    assert_eq!(
        setup.item(&format!("{}/gone.tfstate-md5", setup.bucket)),
        None
    );
    assert!(
        setup.item("some-other-bucket/x.tfstate-md5").is_some(),
        "another bucket's item must be left alone"
    );

    let start = Instant::now();
    w.ok(&["init", "-input=false"]);
    let out = w.ok(&["plan", "-input=false", "-lock=false"]);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "Terraform still waited for the digest"
    );
    assert!(!out.contains("expected content"), "{out}");

    let plan = plan_json(&setup, &[]);
    assert!(
        plan["digests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "matches"),
        "{plan:#}"
    );
}

#[test]
fn stale_digests_can_be_deleted_and_other_stores_are_refused() {
    let setup = Setup::new(moto());
    filled(&setup);
    let deleted = setup.migrate(&["--apply", "--stale-digests", "delete"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(setup.item(&format!("{}/b.tfstate-md5", setup.bucket)), None);
    assert!(
        setup
            .item(&format!("{}/a.tfstate-md5", setup.bucket))
            .is_some()
    );
    // Without --delete-orphaned-digests the orphan stays.
    assert!(
        setup
            .item(&format!("{}/gone.tfstate-md5", setup.bucket))
            .is_some()
    );

    let out = crate::harness::statelock_command()
        .args([
            "migrate",
            "dynamodb",
            "--table",
            "t",
            "--store",
            "file:///tmp/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--store must be s3://"),
        "{}",
        text(&out)
    );
}

/// `statelock state rollback` of `key` to `version` on the setup's bucket, with `extra` flags.
fn rollback(setup: &Setup, key: &str, version: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["state", "rollback", key, "--to", version, "--yes", "--json"];
    args.extend_from_slice(extra);
    statelock_on(setup.server, &setup.bucket, &args)
}

#[test]
fn rollback_keeps_the_digest_for_terraform_with_dynamodb_table() {
    let setup = Setup::new(moto());
    let key = "app.tfstate";
    let w = setup.terraform(Terraform::V1_0_3, key);
    for n in 1..=2 {
        w.ok(&[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            &format!("n={n}"),
        ]);
    }
    let history = statelock_on(
        setup.server,
        &setup.bucket,
        &["state", "history", key, "--json"],
    );
    assert!(history.status.success(), "{}", text(&history));
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let versions = history["versions"].as_array().unwrap();
    let id = |i: usize| versions[i]["id"].as_str().unwrap().to_owned();
    let (first, second) = (id(versions.len() - 1), id(versions.len() - 2));
    let digest_id = format!("{}/{key}-md5", setup.bucket);
    let endpoint = format!("--dynamodb-endpoint={}", setup.server.endpoint);
    let table = ["--dynamodb-table", setup.table.as_str(), endpoint.as_str()];

    // A table that does not exist: refused before the lock or the state is touched.
    let before = setup.object(key).unwrap();
    let missing = rollback(
        &setup,
        key,
        &first,
        &["--dynamodb-table", "no-such-table", &endpoint],
    );
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("no-such-table"),
        "{}",
        text(&missing)
    );
    assert_eq!(setup.object(key).unwrap(), before);
    assert_eq!(setup.object(&format!("{key}.tflock")), None);

    let done = rollback(&setup, key, &first, &table);
    assert!(done.status.success(), "{}", text(&done));
    let done: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done["dynamodb_digest"], "updated", "{done:#}");
    assert_eq!(done["dynamodb_digest_key"], digest_id.as_str());
    assert_eq!(
        setup.item(&digest_id).unwrap()["Digest"],
        md5_of(&setup, key).as_str()
    );
    // Terraform 1.0.3 on `dynamodb_table` reads the rolled-back state at once, with no
    // digest retry, and carries on from it.
    let start = Instant::now();
    assert_eq!(w.ok(&["output", "-raw", "n"]), "1");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "Terraform waited for the digest"
    );
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=3"]);

    // Without the flag the digest is not touched, and the command says so.
    let stale = rollback(&setup, key, &second, &[]);
    assert!(stale.status.success(), "{}", text(&stale));
    let report: serde_json::Value = serde_json::from_slice(&stale.stdout).unwrap();
    assert_eq!(report["dynamodb_digest"], "not-updated", "{report:#}");
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("aws dynamodb put-item"),
        "{}",
        text(&stale)
    );
    assert_ne!(
        setup.item(&digest_id).unwrap()["Digest"],
        md5_of(&setup, key).as_str()
    );
}
