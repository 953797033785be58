//! `statelock state ls | history | show | diff | rollback` on a versioned moto bucket.
//!
//! Index:
//! - `terraform_applies_then_rollback_*`: Terraform with its own `backend "s3"` (1.0.3
//!   unlocked, 1.15.5 with `use_lockfile`) applies three times; history lists the S3 versions
//!   with their serials, show and diff read old ones, rollback brings the first output back for
//!   `terraform output`, `terraform plan` reads it without complaint, and a further apply
//!   carries on from the new serial. Dry runs and a rollback without `--yes` (no terminal)
//!   write nothing and never lock; a sensitive output's value never appears in any output.
//! - `rollback_refuses_a_held_lock_and_another_lineage`: while Terraform 1.15.5 holds the
//!   `.tflock` lock at its approval prompt, rollback names the holder and writes nothing; a
//!   version of another lineage is refused without `--force`, before any lock is taken; the
//!   lock a rollback takes is left in the bucket's version history and is released.
//! - `history_merges_the_server_history`: `statelock serve` on the same bucket records its own
//!   history; `state history` lists both sources, and show, diff and rollback take either ID;
//!   the CLI's rollback is recorded in the server history as well.
//! - `a_delete_marker_is_named_not_missing`: a version ID that is a delete marker (the state was
//!   deleted then) is refused with exit 2 saying so.
//! - `rollback_refuses_a_store_that_ignores_conditional_writes`: on s3rver, which ignores
//!   If-None-Match / If-Match, rollback refuses before locking unless `--allow-unsafe-store`.
//!
//! Needs `bash scripts/setup-test-tools.sh` (or `STATELOCK_TOOLS` pointing at its output).

use std::process::Output;

use crate::harness::{
    PendingApply, S3Locking, SECRET_PREFIX, Server, StoreSpec, Workdir, statelock_on, text,
};
use serde_json::Value;
use statelock_test_support::{S3Server, Terraform, moto, s3rver, unique_name};

fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    no_secret(&o);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// No statelock output shows a sensitive value, on either stream.
fn no_secret(o: &Output) {
    assert!(!text(o).contains(SECRET_PREFIX), "{}", text(o));
}

fn ok_json(o: Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn refused(o: Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    no_secret(&o);
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The versions `state history --json` lists, newest first.
fn history(server: &S3Server, bucket: &str, key: &str) -> Vec<Value> {
    let listing = ok_json(statelock_on(
        server,
        bucket,
        &["state", "history", key, "--json"],
    ));
    listing["versions"].as_array().unwrap().clone()
}

/// `state show --json` of one version (`current` for the state as it is).
fn show(server: &S3Server, bucket: &str, key: &str, id: &str) -> Value {
    ok_json(statelock_on(
        server,
        bucket,
        &["state", "show", key, id, "--json"],
    ))
}

fn output_n(shown: &Value) -> Value {
    let outputs = shown["state"]["outputs"].as_array().unwrap();
    outputs.iter().find(|o| o["name"] == "n").unwrap()["value"].clone()
}

/// Puts `body` at `key` with boto3; returns the new S3 version ID (empty when unversioned).
fn put(server: &S3Server, bucket: &str, key: &str, body: &str) -> String {
    server
        .boto3(
            r#"
bucket, key, body = sys.argv[1:4]
print(s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json").get("VersionId", ""))
"#,
            &[bucket, key, body],
        )
        .trim()
        .to_owned()
}

fn state_doc(lineage: &str, serial: u64, n: &str) -> String {
    format!(
        r#"{{"version":4,"terraform_version":"1.0.3","serial":{serial},"lineage":"{lineage}","outputs":{{"n":{{"value":"{n}","type":"string"}}}},"resources":[]}}"#
    )
}

#[test]
fn terraform_applies_then_rollback_1_0_3() {
    terraform_applies_then_rollback(Terraform::V1_0_3, S3Locking::default());
}

#[test]
fn terraform_applies_then_rollback_1_15_5() {
    terraform_applies_then_rollback(Terraform::V1_15_5, S3Locking::lockfile());
}

fn terraform_applies_then_rollback(tf: Terraform, locking: S3Locking) {
    let server = moto();
    let bucket = unique_name("statelock-state");
    server.create_bucket(&bucket, true);
    let key = "team-a/app.tfstate";
    let w = Workdir::s3_backend(tf, server, &bucket, key, &locking);
    for n in 1..=3 {
        w.apply_ok(n);
    }
    // Terraform's own lock objects (1.15.5 leaves a version and a delete marker per run).
    let terraform_locks = lock_history(server, &bucket, key);

    let ls = ok(statelock_on(server, &bucket, &["state", "ls"]));
    eprint!("state ls:\n{ls}");
    assert!(ls.starts_with("STATE KEY") && ls.contains(key), "{ls}");

    let versions = history(server, &bucket, key);
    eprintln!("{} versions after 3 applies", versions.len());
    assert!(versions.len() >= 3, "{versions:?}");
    assert!(versions.iter().all(|v| v["source"] == "s3-version"));
    assert_eq!(versions[0]["is_current"], true);
    let serials: Vec<u64> = versions
        .iter()
        .map(|v| v["serial"].as_u64().unwrap())
        .collect();
    assert!(serials.windows(2).all(|p| p[0] > p[1]), "{serials:?}");
    let newest = ok_json(statelock_on(
        server,
        &bucket,
        &["state", "history", key, "--limit", "2", "--json"],
    ));
    assert_eq!(newest["versions"].as_array().unwrap().len(), 2);
    assert_eq!(newest["total"], versions.len());
    assert_eq!(newest["versions"][1]["serial"], serials[1]);
    let table = ok(statelock_on(server, &bucket, &["state", "history", key]));
    eprint!("state history:\n{table}");
    assert!(
        table.starts_with("ID") && table.contains("s3-version"),
        "{table}"
    );

    let first = versions.last().unwrap()["id"].as_str().unwrap().to_owned();
    let old = show(server, &bucket, key, &first);
    assert_eq!(output_n(&old), "1", "{old}");
    assert_eq!(old["state"]["terraform_version"], tf.version());
    assert_eq!(old["source"], "s3-version");

    let diff = ok_json(statelock_on(
        server,
        &bucket,
        &["state", "diff", key, &first, "--json"],
    ));
    assert_eq!(
        diff["outputs"]["changed"],
        serde_json::json!([
            {"name": "n", "from": "1", "to": "3"},
            {"name": "secret", "sensitive": true}
        ]),
        "{diff}"
    );
    let diff_text = ok(statelock_on(
        server,
        &bucket,
        &["state", "diff", key, &first],
    ));
    assert!(diff_text.contains(r#"~ n: "1" -> "3""#), "{diff_text}");

    let before = serials[0];
    let dry = ok(statelock_on(
        server,
        &bucket,
        &["state", "rollback", key, "--to", &first, "--dry-run"],
    ));
    assert!(dry.contains(&format!("serial {}", before + 1)), "{dry}");
    let dry_json = ok_json(statelock_on(
        server,
        &bucket,
        &[
            "state",
            "rollback",
            key,
            "--to",
            &first,
            "--dry-run",
            "--json",
        ],
    ));
    assert_eq!(
        (
            dry_json["dry_run"].as_bool(),
            dry_json["new_serial"].as_u64()
        ),
        (Some(true), Some(before + 1))
    );
    assert_eq!(history(server, &bucket, key).len(), versions.len());
    // Without --yes and without a terminal to ask on: refused, before any lock is taken.
    let unconfirmed = refused(statelock_on(
        server,
        &bucket,
        &["state", "rollback", key, "--to", &first],
    ));
    assert!(unconfirmed.contains("pass --yes"), "{unconfirmed}");
    assert_eq!(history(server, &bucket, key).len(), versions.len());
    assert_eq!(
        lock_history(server, &bucket, key),
        terraform_locks,
        "dry runs and unconfirmed rollbacks never lock"
    );

    let rolled = ok_json(statelock_on(
        server,
        &bucket,
        &["state", "rollback", key, "--to", &first, "--yes", "--json"],
    ));
    eprintln!("rollback: {rolled}");
    assert_eq!(rolled["old_serial"], before);
    assert_eq!(rolled["new_serial"], before + 1);
    assert_eq!(rolled["dynamodb_digest_key"], format!("{bucket}/{key}-md5"));
    let now = show(server, &bucket, key, "current");
    assert_eq!(output_n(&now), "1");
    assert_eq!(now["md5"], rolled["md5"]);
    assert_eq!(now["state"]["lineage"], old["state"]["lineage"]);

    // Terraform reads the rolled-back state: its output, a plan with nothing to change, and
    // an apply that carries on from its serial.
    assert_eq!(w.ok(&["output", "-raw", "n"]), "1");
    let plan = w.run(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=1"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    w.apply_ok(4);
    let after = show(server, &bucket, key, "current");
    assert_eq!(after["state"]["serial"], before + 2);
    assert_eq!(output_n(&after), "4");
    let secret = show(server, &bucket, key, "current")["state"]["outputs"].to_string();
    assert!(secret.contains(r#""sensitive":true"#), "{secret}");
}

const LOCK_HISTORY: &str = r#"
bucket, key = sys.argv[1:3]
out = s3.list_object_versions(Bucket=bucket, Prefix=key)
bodies = [s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read().decode()
          for v in out.get("Versions", []) if v["Key"] == key]
markers = [m for m in out.get("DeleteMarkers", []) if m["Key"] == key]
print(json.dumps({"bodies": bodies, "delete_markers": len(markers)}))
"#;

/// The versions of `key`'s lock object: their bodies and how many delete markers.
fn lock_history(server: &S3Server, bucket: &str, key: &str) -> Value {
    serde_json::from_str(&server.boto3(LOCK_HISTORY, &[bucket, &format!("{key}.tflock")])).unwrap()
}

#[test]
fn rollback_refuses_a_held_lock_and_another_lineage() {
    let server = moto();
    let bucket = unique_name("statelock-state");
    server.create_bucket(&bucket, true);
    let key = "locked/app.tfstate";
    let v1 = put(server, &bucket, key, &state_doc("L1", 1, "one"));
    put(server, &bucket, key, &state_doc("L1", 2, "two"));
    // Terraform 1.15.5 holds the lock at its approval prompt.
    let tf = Workdir::s3_backend(
        Terraform::V1_15_5,
        server,
        &bucket,
        key,
        &S3Locking::lockfile(),
    );
    let mut pending = PendingApply::start(&tf, 3);
    let lock_key = format!("{key}.tflock");
    let holder = pending.wait_for_lock_object(server, &bucket, key);

    let err = refused(statelock_on(
        server,
        &bucket,
        &["state", "rollback", key, "--to", &v1, "--yes"],
    ));
    eprintln!("rollback against a held lock:\n{err}");
    assert!(
        err.contains(holder["Who"].as_str().unwrap())
            && err.contains(holder["ID"].as_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(history(server, &bucket, key).len(), 2);
    assert_eq!(output_n(&show(server, &bucket, key, "current")), "two");
    // Declined at the prompt: Terraform releases its lock and writes nothing.
    pending.answer("no");
    assert_eq!(server.object(&bucket, &lock_key), None);
    put(server, &bucket, key, &state_doc("L2", 1, "other"));
    let err = refused(statelock_on(
        server,
        &bucket,
        &["state", "rollback", key, "--to", &v1, "--yes"],
    ));
    assert!(
        err.contains(r#"lineage "L1""#) && err.contains("--force"),
        "{err}"
    );
    assert_eq!(history(server, &bucket, key).len(), 3);

    let forced = ok_json(statelock_on(
        server,
        &bucket,
        &[
            "state", "rollback", key, "--to", &v1, "--yes", "--force", "--json",
        ],
    ));
    assert_eq!(
        (forced["new_serial"].as_u64(), forced["lineage"].as_str()),
        (Some(2), Some("L2"))
    );
    let now = show(server, &bucket, key, "current");
    assert_eq!(output_n(&now), "one");
    assert_eq!(now["state"]["lineage"], "L2");

    // Only the rollback that got as far as writing took the lock (the refusals came before
    // it), as a record of its own, and released it (a delete marker, as is Terraform's
    // released lock); nothing is left behind.
    let locks = lock_history(server, &bucket, key);
    let ours = locks["bodies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            b.as_str()
                .unwrap()
                .contains(r#""Operation":"statelock state rollback""#)
        })
        .count();
    assert_eq!(ours, 1, "{locks}");
    assert_eq!(locks["delete_markers"], 2, "{locks}");
    let left = statelock_on(server, &bucket, &["locks", "ls", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "[]",
        "{}",
        text(&left)
    );
}

#[test]
fn history_merges_the_server_history() {
    let server = moto();
    let spec = StoreSpec::fresh_bucket(server);
    let StoreSpec::S3 { bucket, .. } = &spec else {
        unreachable!("fresh_bucket gives an S3 store")
    };
    let serve = Server::start_on(&spec, &[]);
    let key = "served/app.tfstate";
    for (serial, n) in [(1, "a"), (2, "b")] {
        let (status, body) = serve.request("POST", key, &state_doc("L1", serial, n));
        assert_eq!(status, 200, "{body}");
    }
    drop(serve);

    let versions = history(server, bucket, key);
    let of = |source: &str| -> Vec<&Value> {
        versions.iter().filter(|v| v["source"] == source).collect()
    };
    let (recorded, objects) = (of("server-history"), of("s3-version"));
    assert_eq!(recorded.len(), 2, "{versions:?}");
    assert_eq!(objects.len(), 2, "{versions:?}");
    assert!(
        recorded
            .iter()
            .all(|v| v["kind"] == "write" && v["md5"].is_string())
    );
    // Both sources saw the same two writes, so their MD5s pair up.
    for r in &recorded {
        assert!(objects.iter().any(|o| o["md5"] == r["md5"]), "{versions:?}");
    }

    let first_recorded = recorded.last().unwrap()["id"].as_str().unwrap();
    let newest_object = objects[0]["id"].as_str().unwrap();
    let shown = show(server, bucket, key, first_recorded);
    assert_eq!(
        (shown["source"].as_str(), output_n(&shown)),
        (Some("server-history"), "a".into())
    );
    let diff = ok_json(statelock_on(
        server,
        bucket,
        &[
            "state",
            "diff",
            key,
            first_recorded,
            newest_object,
            "--json",
        ],
    ));
    assert_eq!(diff["outputs"]["changed"][0]["to"], "b", "{diff}");

    let rolled = ok_json(statelock_on(
        server,
        bucket,
        &[
            "state",
            "rollback",
            key,
            "--to",
            first_recorded,
            "--yes",
            "--json",
        ],
    ));
    assert_eq!(rolled["source"], "server-history");
    assert_eq!(rolled["new_serial"], 3);
    assert_eq!(rolled["recorded_in_server_history"], true);
    assert_eq!(output_n(&show(server, bucket, key, "current")), "a");
    // The server's history has the rollback too, as the server itself records one.
    let versions = history(server, bucket, key);
    let newest = versions
        .iter()
        .find(|v| v["source"] == "server-history")
        .unwrap();
    assert_eq!(
        (&newest["kind"], &newest["serial"], &newest["md5"]),
        (&Value::from("rollback"), &Value::from(3), &rolled["md5"]),
        "{versions:?}"
    );
    assert!(newest["who"].as_str().unwrap().contains('@'), "{newest}");

    let missing = refused(statelock_on(
        server,
        bucket,
        &["state", "show", key, "no-such-version"],
    ));
    assert!(missing.contains("no-such-version"), "{missing}");
}

#[test]
fn rollback_refuses_a_store_that_ignores_conditional_writes() {
    let server = s3rver();
    let bucket = unique_name("statelock-state");
    server.create_bucket(&bucket, false);
    let key = "unsafe/app.tfstate";
    put(server, &bucket, key, &state_doc("L1", 4, "four"));
    let rollback = [
        "state", "rollback", key, "--to", "current", "--yes", "--force",
    ];

    let out = statelock_on(server, &bucket, &rollback);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("rollback on s3rver:\n{err}");
    assert!(
        err.contains("refusing to roll back") && err.contains("--allow-unsafe-store"),
        "{err}"
    );
    assert_eq!(show(server, &bucket, key, "current")["state"]["serial"], 4);
    let lock = format!("{key}.tflock");
    let objects = server.boto3(
        "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])]))",
        &[&bucket],
    );
    assert!(!objects.contains(&lock), "{objects}");

    let mut anyway = rollback.to_vec();
    anyway.push("--allow-unsafe-store");
    ok(statelock_on(server, &bucket, &anyway));
    assert_eq!(show(server, &bucket, key, "current")["state"]["serial"], 5);
}

#[test]
fn a_delete_marker_is_named_not_missing() {
    let server = moto();
    let bucket = unique_name("statelock-state");
    server.create_bucket(&bucket, true);
    let key = "deleted/app.tfstate";
    put(server, &bucket, key, &state_doc("L1", 1, "one"));
    let marker = server
        .boto3(
            r#"print(s3.delete_object(Bucket=sys.argv[1], Key=sys.argv[2])["VersionId"])"#,
            &[&bucket, key],
        )
        .trim()
        .to_owned();
    put(server, &bucket, key, &state_doc("L1", 2, "two"));
    for args in [
        vec!["state", "show", key, &marker],
        vec!["state", "diff", key, &marker],
        vec!["state", "rollback", key, "--to", &marker, "--yes"],
    ] {
        let err = refused(statelock_on(server, &bucket, &args));
        assert!(
            err.contains("is a delete marker") && err.contains("pick the version before it"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(show(server, &bucket, key, "current")["state"]["serial"], 2);
}
