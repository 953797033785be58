//! `statelock serve` on S3 stores (moto and SeaweedFS on 127.0.0.1) next to Terraform 1.15.5's
//! own `backend "s3"` with `use_lockfile = true` on the same bucket: each side is refused while
//! the other holds the `.tflock` lock and shows the other's holder record, in the default
//! workspace and in `dev` (`env:/dev/<key>`), and the server's lock queue picks up a release
//! that Terraform makes on the bucket directly.
//!
//! Index:
//! - `terraform_on_the_bucket_and_through_the_server_exclude_each_other_on_{moto,seaweedfs}`
//! - `opentofu_lock_form_on_{moto,seaweedfs}`: OpenTofu ≥ 1.10 sends its SHA-256 checksum as
//!   a precomputed header (spec §2.3), a wire form Terraform 1.15.5 never uses, so boto3 plays it
//! - `terraform_applies_through_the_server_into_the_bucket`: the state is a plain object there

use std::time::{Duration, Instant};

use statelock_test_support::{S3Server, Terraform, moto, seaweedfs};

use crate::harness::{
    PendingApply, S3Locking, Server, StoreSpec, Workdir, lock_info, request, text,
};

const KEY: &str = "team-a/prod/terraform.tfstate";

/// A fresh versioned bucket on `s3` with a server on it, polling the store for releases every
/// 200 ms.
fn server_on(s3: &'static S3Server) -> (Server, String) {
    let store = StoreSpec::fresh_bucket(s3);
    let StoreSpec::S3 { bucket, .. } = &store else {
        unreachable!()
    };
    let bucket = bucket.clone();
    let server = Server::start_on(&store, &["--lock-poll-interval", "200ms"]);
    assert!(server.log().contains("store honours conditional writes"));
    (server, bucket)
}

/// One direction, then the other, for the state at `state_key` (on the bucket) through the
/// server's `via` and the bucket's `direct` working directories.
fn exclude_each_other(
    s3: &'static S3Server,
    server: &Server,
    bucket: &str,
    state_key: &str,
    direct: &Workdir,
    via: &Workdir,
) {
    // Terraform on the bucket holds the lock (at its approval prompt): Terraform through the
    // server is refused and shows that record; the server's fencing refuses writes too.
    let mut pending = PendingApply::start(direct, 2);
    let record = pending.wait_for_lock_object(s3, bucket, state_key);
    assert_eq!(record["Version"], "1.15.5", "{record}");
    assert_eq!(record["Path"], format!("{bucket}/{state_key}"), "{record}");
    let refused = via.apply_with(3, &["-lock-timeout=0s"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!(
        "[{}] through the server while Terraform holds the bucket's lock:\n{stderr}",
        s3.name
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
    assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
    assert_eq!(shown.version, "1.15.5", "{stderr}");
    assert_eq!(shown.path, format!("{bucket}/{state_key}"), "{stderr}");
    assert_eq!(server.request("POST", state_key, "{}").0, 423);
    pending.answer("yes");
    assert_eq!(s3.object(bucket, &format!("{state_key}.tflock")), None);
    assert_eq!(via.ok(&["output", "-raw", "n"]), "2");

    // Terraform through the server holds it: Terraform on the bucket is refused with the
    // server's record, whose Path is `<bucket>/<key>` as Terraform's own.
    let mut pending = PendingApply::start(via, 4);
    let record = pending.wait_for_lock_object(s3, bucket, state_key);
    let refused = direct.apply_with(5, &["-lock-timeout=0s"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!(
        "[{}] on the bucket while the server's client holds the lock:\n{stderr}",
        s3.name
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
    assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
    assert_eq!(shown.path, format!("{bucket}/{state_key}"), "{stderr}");
    assert_eq!(shown.who, record["Who"].as_str().unwrap(), "{stderr}");
    pending.answer("yes");
    assert_eq!(s3.object(bucket, &format!("{state_key}.tflock")), None);
    assert_eq!(direct.ok(&["output", "-raw", "n"]), "4");
}

fn interop(s3: &'static S3Server) {
    let (server, bucket) = server_on(s3);
    let tf = Terraform::V1_15_5;
    let direct = Workdir::s3_backend(tf, s3, &bucket, KEY, &S3Locking::lockfile());
    let via = Workdir::new(tf, &server, KEY);
    direct.apply_ok(1);
    assert_eq!(via.ok(&["output", "-raw", "n"]), "1");
    exclude_each_other(s3, &server, &bucket, KEY, &direct, &via);

    // The `dev` workspace: Terraform keeps its state at `env:/dev/<key>`, which the server
    // serves under that key (the http backend has no workspaces of its own).
    direct.ok(&["workspace", "new", "dev"]);
    let dev_key = format!("env:/dev/{KEY}");
    direct.apply_ok(1);
    let via_dev = Workdir::new(tf, &server, &dev_key);
    assert_eq!(via_dev.ok(&["output", "-raw", "n"]), "1");
    exclude_each_other(s3, &server, &bucket, &dev_key, &direct, &via_dev);
    // The default workspace is a different state with a different lock.
    let mut pending = PendingApply::start(&direct, 6);
    pending.wait_for_lock_object(s3, &bucket, &dev_key);
    via.apply_ok(7);
    pending.answer("no");

    // The server's queue: a LOCK waiting with `?wait=` takes the lock as soon as Terraform on
    // the bucket releases it, found by polling the store (200 ms here).
    direct.ok(&["workspace", "select", "default"]);
    let mut pending = PendingApply::start(&direct, 8);
    pending.wait_for_lock_object(s3, &bucket, KEY);
    let waiter = r#"{"ID":"99999999-0000-4000-8000-000000000009","Operation":"OperationTypeApply","Info":"","Who":"waiter@queue","Version":"1.15.5","Created":"2026-12-01T00:00:00Z","Path":""}"#;
    let addr = server.addr.clone();
    let waiting = std::thread::spawn(move || {
        let reply = request(&addr, "LOCK", &format!("/v1/states/{KEY}?wait=1m"), waiter);
        (reply, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished(), "the LOCK did not wait");
    pending.answer("yes");
    let released = Instant::now();
    let ((status, body), granted) = waiting.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let after = granted.saturating_duration_since(released);
    println!(
        "[{}] the queue took the lock {after:?} after Terraform released it",
        s3.name
    );
    assert!(
        after < Duration::from_millis(1500),
        "the waiting LOCK took {after:?} to notice the release"
    );
    let held: serde_json::Value =
        serde_json::from_str(&s3.object(&bucket, &format!("{KEY}.tflock")).unwrap()).unwrap();
    assert_eq!(held["Who"], "waiter@queue");
    assert_eq!(server.request("UNLOCK", KEY, waiter).0, 200);
    assert_eq!(direct.ok(&["output", "-raw", "n"]), "8");
}

#[test]
fn terraform_on_the_bucket_and_through_the_server_exclude_each_other_on_moto() {
    interop(moto());
}

#[test]
fn terraform_on_the_bucket_and_through_the_server_exclude_each_other_on_seaweedfs() {
    interop(seaweedfs());
}

/// OpenTofu ≥ 1.10's lock `PutObject`: `If-None-Match: *` with the SHA-256 checksum computed
/// beforehand and sent as `x-amz-checksum-sha256` (boto3's `ChecksumSHA256`), then unlock by
/// GET, ID comparison and a plain DELETE.
const OPENTOFU_LOCK: &str = r#"
import base64, hashlib
from botocore.exceptions import ClientError
op, bucket, key, arg = sys.argv[1:5]
lock_key = key + ".tflock"
if op == "lock":
    body = arg.encode()
    try:
        s3.put_object(Bucket=bucket, Key=lock_key, Body=body, IfNoneMatch="*",
                      ContentType="application/json",
                      ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode())
        print("locked")
    except ClientError as e:
        print("refused", e.response["Error"]["Code"])
        print(s3.get_object(Bucket=bucket, Key=lock_key)["Body"].read().decode())
elif op == "unlock":
    stored = json.loads(s3.get_object(Bucket=bucket, Key=lock_key)["Body"].read())
    if stored["ID"] != arg:
        print("mismatch", stored["ID"])
    else:
        s3.delete_object(Bucket=bucket, Key=lock_key)
        print("unlocked")
"#;

fn record(id: &str, who: &str, path: &str) -> String {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.10.0","Created":"2026-11-27T10:00:00.5Z","Path":"{path}"}}"#
    )
}

fn opentofu_lock_form(s3: &'static S3Server) {
    let (server, bucket) = server_on(s3);
    let key = "tofu/terraform.tfstate";
    let tofu = |op: &str, arg: &str| s3.boto3(OPENTOFU_LOCK, &[op, &bucket, key, arg]);
    let tofu_record = record(
        "aaaaaaaa-0000-4000-8000-000000000001",
        "tofu@runner",
        &format!("{bucket}/{key}"),
    );
    assert_eq!(tofu("lock", &tofu_record).trim(), "locked");
    let server_record = record("bbbbbbbb-0000-4000-8000-000000000002", "alice@laptop", "");
    let (status, body) = server.request("LOCK", key, &server_record);
    assert_eq!((status, body.as_str()), (423, tofu_record.as_str()));
    assert_eq!(
        tofu("unlock", "aaaaaaaa-0000-4000-8000-000000000001").trim(),
        "unlocked"
    );

    assert_eq!(server.request("LOCK", key, &server_record).0, 200);
    let refused = tofu("lock", &tofu_record);
    let mut lines = refused.lines();
    assert_eq!(
        lines.next(),
        Some("refused PreconditionFailed"),
        "{refused}"
    );
    let held: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(held["Who"], "alice@laptop");
    assert_eq!(held["Path"], format!("{bucket}/{key}"));
    assert!(tofu("unlock", "wrong").starts_with("mismatch"));
    assert_eq!(server.request("UNLOCK", key, &server_record).0, 200);
}

#[test]
fn opentofu_lock_form_on_moto() {
    opentofu_lock_form(moto());
}

#[test]
fn opentofu_lock_form_on_seaweedfs() {
    opentofu_lock_form(seaweedfs());
}

#[test]
fn terraform_applies_through_the_server_into_the_bucket() {
    let s3 = moto();
    let (server, bucket) = server_on(s3);
    let w = Workdir::new(Terraform::V1_0_3, &server, "app/terraform.tfstate");
    w.apply_ok(7);
    // The state is a plain object in the bucket, where Terraform's own S3 backend would read
    // it, and no lock is left behind.
    let listing = s3.boto3(
        r#"
bucket = sys.argv[1]
state = json.loads(s3.get_object(Bucket=bucket, Key="app/terraform.tfstate")["Body"].read())
print(state["outputs"]["n"]["value"])
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
print(sorted(k for k in keys if not k.startswith(".statelock/")))
"#,
        &[&bucket],
    );
    assert_eq!(listing, "7\n['app/terraform.tfstate']\n");
}
