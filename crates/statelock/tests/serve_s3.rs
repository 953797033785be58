//! `statelock serve` on S3 stores (moto and SeaweedFS on 127.0.0.1): the start-up probe, and
//! interoperation with a client that locks the bucket directly the way Terraform ≥ 1.10's
//! `backend "s3"` with `use_lockfile = true` does (spec §2.3–2.5), played by boto3. Each side
//! must see the other's lock and the other's holder record.

mod harness;

use harness::{Server, StoreSpec, Workdir};
use statelock_test_support::{S3Server, moto, seaweedfs};

/// Terraform ≥ 1.10's lockfile sequence, by boto3: `lock KEY BODY` creates `KEY.tflock` with
/// `If-None-Match: *` and a SHA-256 checksum, and on failure prints the error code and the
/// holder's record read back; `unlock KEY ID` reads, compares the ID and deletes.
const DIRECT_CLIENT: &str = r#"
from botocore.exceptions import ClientError
op, bucket, key, arg = sys.argv[1:5]
lock_key = key + ".tflock"
if op == "lock":
    try:
        s3.put_object(Bucket=bucket, Key=lock_key, Body=arg.encode(), IfNoneMatch="*",
                      ContentType="application/json", ChecksumAlgorithm="SHA256")
        print("locked")
    except ClientError as e:
        holder = s3.get_object(Bucket=bucket, Key=lock_key)["Body"].read().decode()
        print("refused", e.response["Error"]["Code"])
        print(holder)
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

fn interop(s3: &'static S3Server) {
    let store = StoreSpec::fresh_bucket(s3);
    let StoreSpec::S3 { bucket, .. } = &store else {
        unreachable!()
    };
    let server = Server::start_on(&store, &[]);
    assert!(server.log().contains("store honours conditional writes"));
    let key = "team-a/prod/terraform.tfstate";
    let direct = |op: &str, arg: &str| s3.boto3(DIRECT_CLIENT, &[op, bucket, key, arg]);

    // Direct client first: the server refuses with 423 and the direct client's exact record.
    let direct_record = record(
        "aaaaaaaa-0000-4000-8000-000000000001",
        "ci@runner",
        &format!("{bucket}/{key}"),
    );
    assert_eq!(direct("lock", &direct_record).trim(), "locked");
    let server_record = record("bbbbbbbb-0000-4000-8000-000000000002", "alice@laptop", "");
    let (status, body) = server.request("LOCK", key, &server_record);
    assert_eq!((status, body.as_str()), (423, direct_record.as_str()));
    // Fencing holds against the direct client's lock too.
    assert_eq!(server.request("POST", key, "{}").0, 423);
    assert_eq!(
        direct("unlock", "aaaaaaaa-0000-4000-8000-000000000001").trim(),
        "unlocked"
    );

    // Server first: the direct client gets 412 and reads the server's holder record, whose
    // Path is `<bucket>/<key>` exactly as Terraform's S3 backend writes it.
    assert_eq!(server.request("LOCK", key, &server_record).0, 200);
    let refused = direct("lock", &direct_record);
    let mut lines = refused.lines();
    assert_eq!(
        lines.next(),
        Some("refused PreconditionFailed"),
        "{refused}"
    );
    let held: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(held["ID"], "bbbbbbbb-0000-4000-8000-000000000002");
    assert_eq!(held["Who"], "alice@laptop");
    assert_eq!(held["Path"], format!("{bucket}/{key}"));
    // Unlocking with the wrong ID is refused on both sides.
    assert!(direct("unlock", "wrong").starts_with("mismatch"));
    assert_eq!(
        server.request("UNLOCK", key, &record("wrong", "x", "")).0,
        409
    );
    assert_eq!(server.request("UNLOCK", key, &server_record).0, 200);
    assert_eq!(direct("lock", &direct_record).trim(), "locked");
    eprintln!(
        "interop[{}]: boto3 lockfile client and statelock serve exclude each other both ways",
        s3.name
    );
    drop(server);
}

#[test]
fn direct_s3_clients_and_the_server_exclude_each_other_on_moto() {
    interop(moto());
}

#[test]
fn direct_s3_clients_and_the_server_exclude_each_other_on_seaweedfs() {
    interop(seaweedfs());
}

#[test]
fn terraform_applies_through_the_server_into_the_bucket() {
    let s3 = moto();
    let store = StoreSpec::fresh_bucket(s3);
    let StoreSpec::S3 { bucket, .. } = &store else {
        unreachable!()
    };
    let server = Server::start_on(&store, &[]);
    let w = Workdir::new(&server, "app/terraform.tfstate");
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=7"]);
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
        &[bucket],
    );
    assert_eq!(listing, "7\n['app/terraform.tfstate']\n");
}
