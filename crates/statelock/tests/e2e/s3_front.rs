//! Terraform's own `backend "s3"` pointed at `statelock serve`'s S3 front (`endpoints.s3`),
//! with nothing else changed: workspaces, locks through `use_lockfile`, the server's lock
//! queue and history, and the same states and `.tflock` objects as the `http` front and as
//! Terraform on the bucket directly.
//!
//! Index:
//! - `workflow_through_the_s3_front_on_local_disk_1_15_5`: init, apply, plan, workspaces
//!   (new, list, select, delete), `state pull`, the `http` front and history reading the
//!   same states, a held lock refused with its holder, `force-unlock` of a killed apply
//! - `the_front_and_terraform_on_the_bucket_exclude_each_other_on_moto_1_15_5`: both ways,
//!   in the default workspace and in `dev`, with the holder shown; `statelock locks ls` and
//!   `state history` on the bucket see the front's lock and writes
//! - `queued_applies_through_the_s3_front_all_succeed_1_15_5`: 8 concurrent applies, no
//!   `-lock-timeout`, all served by the queue
//! - `boto3_payload_and_checksum_forms_on_the_s3_front`: every checksum and signing form
//!   botocore sends, wrong checksums, stale serials, lock conflicts and preconditions
//! - `terraform_1_0_3_through_the_s3_front`: the SDK v1 client (ListObjects v1,
//!   Content-MD5), which has no `use_lockfile`
//! - `a_state_above_5_mib_is_uploaded_multipart_through_the_s3_front_1_15_5`: a 6 MiB output
//!   read with `file()`, uploaded by the SDK's upload manager in parts, written once
//! - `the_adr_block_with_only_the_endpoint_changed_on_{local_disk,moto,seaweedfs}`: the background
//!   ADR's LocalStack block on 1.15.5 and 1.0.3, virtual-hosted addressing, every command
//! - `the_operator_cli_judges_and_reads_the_s3_front`: `statelock probe` says safe,
//!   `locks ls` / `locks unlock --id` through the front

use statelock_test_support::{Terraform, moto, seaweedfs};

use crate::harness::{
    PendingApply, S3Locking, Server, StoreSpec, Workdir, apply_all_at_once, lock_info,
    statelock_command, statelock_on, text,
};

const KEY: &str = "team-a/app.tfstate";

/// The bucket a server on a fresh local directory exposes: the directory's name.
const LOCAL_BUCKET: &str = "data";

/// The output `n` of the state `w` reads (`-var n=...` makes it a string).
fn output_n(w: &Workdir) -> String {
    let pulled: serde_json::Value = serde_json::from_str(&w.ok(&["state", "pull"])).unwrap();
    pulled["outputs"]["n"]["value"].as_str().unwrap().to_owned()
}

fn lock_events_so_far(server: &Server) -> usize {
    server.log().matches("lock acquired").count()
}

#[test]
fn workflow_through_the_s3_front_on_local_disk_1_15_5() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    w.apply_ok(1);
    w.ok(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=1"]);
    // The http front serves the very state the S3 front wrote, and the history has it.
    assert_eq!(server.state(KEY)["outputs"]["n"]["value"], "1");
    let (status, versions) =
        server.request_path("GET", &format!("/v1/api/states/{KEY}/versions"), "");
    assert_eq!(status, 200, "{versions}");
    let versions: serde_json::Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );

    // Workspaces: `env:/dev/<key>`, as on S3.
    w.ok(&["workspace", "new", "dev"]);
    w.apply_ok(2);
    let listed = w.ok(&["workspace", "list"]);
    assert!(
        listed.contains("default") && listed.contains("* dev"),
        "{listed}"
    );
    assert_eq!(
        server.state(&format!("env:/dev/{KEY}"))["outputs"]["n"]["value"],
        "2"
    );
    w.ok(&["workspace", "select", "default"]);
    assert_eq!(output_n(&w), "1");
    w.ok(&["workspace", "delete", "-force", "dev"]);
    let (status, _) = server.request("GET", &format!("env:/dev/{KEY}"), "");
    assert_eq!(status, 404, "the dev workspace's state is deleted");
    assert!(!w.ok(&["workspace", "list"]).contains("dev"));

    // A held lock: another working directory is refused and shown the holder.
    let other = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    let before = lock_events_so_far(&server);
    let mut pending = PendingApply::start(&w, 3);
    pending.wait_until("the lock is taken", || lock_events_so_far(&server) > before);
    let refused = other.apply_with(4, &["-lock-timeout=0s"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
    println!("refused through the S3 front:\n{stderr}");

    // The holder is killed mid-apply: its lock stays until force-unlock removes it.
    pending.kill();
    let stuck = other.apply_with(4, &["-lock-timeout=0s"]);
    assert!(!stuck.status.success(), "{}", text(&stuck));
    other.ok(&["force-unlock", "-force", &shown.id]);
    other.apply_ok(5);
    assert_eq!(output_n(&w), "5");
    assert!(server.log().contains("lock released"), "{}", server.log());
}

#[test]
fn the_front_and_terraform_on_the_bucket_exclude_each_other_on_moto_1_15_5() {
    let s3 = moto();
    let store = StoreSpec::fresh_bucket(s3);
    let StoreSpec::S3 { bucket, .. } = &store else {
        unreachable!()
    };
    let server = Server::start_on(&store, &[]);
    let locking = S3Locking::lockfile();
    let via = Workdir::s3_front(Terraform::V1_15_5, &server, bucket, KEY, &locking);
    let direct = Workdir::s3_backend(Terraform::V1_15_5, s3, bucket, KEY, &locking);
    via.apply_ok(1);
    assert_eq!(
        output_n(&direct),
        "1",
        "the front wrote the bucket's own state object"
    );

    for workspace in ["default", "dev"] {
        let state_key = if workspace == "default" {
            KEY.to_owned()
        } else {
            via.ok(&["workspace", "new", workspace]);
            direct.ok(&["workspace", "select", workspace]);
            format!("env:/{workspace}/{KEY}")
        };
        // Terraform on the bucket holds the lock: the front refuses and shows the holder.
        let mut pending = PendingApply::start(&direct, 2);
        let record = pending.wait_for_lock_object(s3, bucket, &state_key);
        let refused = via.apply_with(3, &["-lock-timeout=0s"]);
        assert!(!refused.status.success(), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
        assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
        pending.answer("yes");
        assert_eq!(
            output_n(&via),
            "2",
            "[{workspace}] the front reads the bucket's state"
        );

        // Through the front holds it: Terraform on the bucket sees the same lock object.
        let mut pending = PendingApply::start(&via, 4);
        let record = pending.wait_for_lock_object(s3, bucket, &state_key);
        assert_eq!(record["Path"], format!("{bucket}/{state_key}"), "{record}");
        let refused = direct.apply_with(5, &["-lock-timeout=0s"]);
        assert!(!refused.status.success(), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
        assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
        println!("[{workspace}] on the bucket while the front holds the lock:\n{stderr}");
        // The operator CLI on the bucket sees the lock taken through the front.
        let listed = statelock_on(s3, bucket, &["locks", "ls", "--json"]);
        assert!(listed.status.success(), "{}", text(&listed));
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["lock"]["ID"].as_str())
            .collect();
        assert!(ids.contains(&shown.id.as_str()), "{listed}");
        pending.answer("yes");
        assert_eq!(output_n(&direct), "4", "[{workspace}]");
        assert!(s3.object(bucket, &format!("{state_key}.tflock")).is_none());
        // The writes through the front are in the server history `state history` reads.
        let history = statelock_on(s3, bucket, &["state", "history", &state_key, "--json"]);
        assert!(history.status.success(), "{}", text(&history));
        assert!(
            String::from_utf8_lossy(&history.stdout).contains("server-history"),
            "{}",
            text(&history)
        );
    }
}

#[test]
fn queued_applies_through_the_s3_front_all_succeed_1_15_5() {
    let server = Server::start_with(&["--lock-wait", "5m"], &[]);
    let dirs: Vec<Workdir> = (0..8)
        .map(|_| {
            Workdir::s3_front(
                Terraform::V1_15_5,
                &server,
                LOCAL_BUCKET,
                KEY,
                &S3Locking::lockfile(),
            )
        })
        .collect();
    dirs[0].apply_ok(0);
    let first = server.serial(KEY);
    let outs = apply_all_at_once(&dirs, &[]);
    for (i, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "apply {i} failed:\n{}", text(out));
    }
    assert_eq!(server.serial(KEY), first + 8, "every apply landed once");
    let waited = server
        .log()
        .matches("lock request waits for the lock")
        .count();
    println!("8 applies through the S3 front: {waited} waited in the server's queue");
    assert!(waited > 0, "no apply waited: the test proved nothing");
}

#[test]
fn terraform_1_0_3_through_the_s3_front() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_0_3,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::default(),
    );
    w.apply_ok(1);
    w.ok(&["workspace", "new", "dev"]);
    w.apply_ok(2);
    assert!(w.ok(&["workspace", "list"]).contains("* dev"));
    assert_eq!(output_n(&w), "2");
    assert_eq!(server.state(KEY)["outputs"]["n"]["value"], "1");
    assert_eq!(
        server.state(&format!("env:/dev/{KEY}"))["outputs"]["n"]["value"],
        "2"
    );
}

/// boto3 (botocore's own signing and checksum code, as the AWS CLI uses it) against the S3
/// front for every payload and checksum form a client sends: each algorithm's trailer or
/// header, OpenTofu's precomputed `x-amz-checksum-sha256`, `UNSIGNED-PAYLOAD`, Content-MD5;
/// wrong checksums, stale serials and failed preconditions refused with nothing written.
const BOTO3_SCRIPT: &str = r#"
import os, sys, json, hashlib, base64
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
E, B = os.environ["ENDPOINT"], sys.argv[1]
def client(**extra):
    return boto3.client("s3", endpoint_url=E, region_name="us-east-1",
        aws_access_key_id="any", aws_secret_access_key="thing",
        config=Config(s3={"addressing_style": "path", **extra}, retries={"max_attempts": 1}))
s3 = client()
out = {}
def code(f):
    try:
        f()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]
def state(serial):
    # An output, so the guard does not see the empty state that anything may replace.
    outputs = {"n": {"value": serial, "type": "number"}}
    return json.dumps({"version": 4, "serial": serial, "lineage": "L", "outputs": outputs, "resources": []}).encode()
K = "boto/app.tfstate"
for i, alg in enumerate(["CRC32", "SHA256", "SHA1"]):
    out["put_" + alg] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(i + 1), ChecksumAlgorithm=alg))
body = state(10)
sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
out["put_precomputed_sha256"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=body, ChecksumSHA256=sha))
unsigned = client(payload_signing_enabled=False)
out["put_unsigned"] = code(lambda: unsigned.put_object(Bucket=B, Key=K, Body=state(11)))
body = state(12)
md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
out["put_content_md5"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=body, ContentMD5=md5))
out["put_bad_sha256"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(13), ChecksumSHA256=sha))
out["put_bad_md5"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(13), ContentMD5=md5))
out["put_stale"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(5)))
got = s3.get_object(Bucket=B, Key=K)
out["serial_now"] = json.loads(got["Body"].read())["serial"]
etag = got["ETag"]
r = s3.get_object(Bucket=B, Key=K, Range="bytes=0-9")
out["range"] = [r["ResponseMetadata"]["HTTPStatusCode"], r["ContentRange"], r["Body"].read().decode()]
lock = json.dumps({"ID": "boto-1", "Operation": "OperationTypeApply", "Info": "", "Who": "boto@test",
    "Version": "1.10.0", "Created": "2026-12-01T00:00:00Z", "Path": B + "/" + K})
out["lock"] = code(lambda: s3.put_object(Bucket=B, Key=K + ".tflock", Body=lock.encode(), IfNoneMatch="*"))
try:
    s3.put_object(Bucket=B, Key=K + ".tflock", Body=lock.replace("boto-1", "boto-2").encode(), IfNoneMatch="*")
    out["lock_other"] = ["ok", ""]
except ClientError as e:
    out["lock_other"] = [e.response["Error"]["Code"], e.response["Error"].get("Message", "")]
out["lock_same_id"] = code(lambda: s3.put_object(Bucket=B, Key=K + ".tflock", Body=lock.encode(), IfNoneMatch="*"))
out["list_v2"] = [o["Key"] for o in s3.list_objects_v2(Bucket=B, Prefix="boto/").get("Contents", [])]
out["list_v1"] = [o["Key"] for o in s3.list_objects(Bucket=B, Prefix="boto/").get("Contents", [])]
out["unlock"] = code(lambda: s3.delete_object(Bucket=B, Key=K + ".tflock"))
out["if_match_wrong"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(20), IfMatch='"0123"'))
out["if_match_right"] = code(lambda: s3.put_object(Bucket=B, Key=K, Body=state(20), IfMatch=etag))
out["internal"] = code(lambda: s3.get_object(Bucket=B, Key=".statelock/history/x"))
out["no_such_key"] = code(lambda: s3.get_object(Bucket=B, Key="boto/none.tfstate"))
out["no_such_bucket"] = code(lambda: s3.list_objects_v2(Bucket="other"))
print(json.dumps(out))
"#;

#[test]
fn boto3_payload_and_checksum_forms_on_the_s3_front() {
    let server = Server::start();
    let endpoint = server.s3_endpoint.clone().expect("the S3 front");
    let out = statelock_test_support::isolated(statelock_test_support::python_bin())
        .arg("-c")
        .arg(BOTO3_SCRIPT)
        .arg(LOCAL_BUCKET)
        .env("ENDPOINT", &endpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("boto3 against the S3 front: {got:#}");
    for form in [
        "put_CRC32",
        "put_SHA256",
        "put_SHA1",
        "put_precomputed_sha256",
        "put_unsigned",
        "put_content_md5",
        "lock",
        "lock_same_id",
        "unlock",
        "if_match_right",
    ] {
        assert_eq!(got[form], "ok", "{form}: {got:#}");
    }
    assert_eq!(got["put_bad_sha256"], "BadDigest", "{got:#}");
    assert_eq!(got["put_bad_md5"], "BadDigest", "{got:#}");
    assert_eq!(got["put_stale"], "PreconditionFailed", "{got:#}");
    assert_eq!(
        got["serial_now"], 12,
        "refused writes changed nothing: {got:#}"
    );
    assert_eq!(got["range"][0], 206, "{got:#}");
    assert!(
        got["range"][1].as_str().unwrap().starts_with("bytes 0-9/"),
        "{got:#}"
    );
    assert_eq!(got["lock_other"][0], "PreconditionFailed", "{got:#}");
    assert!(
        got["lock_other"][1].as_str().unwrap().contains("boto@test"),
        "the refusal names the holder: {got:#}"
    );
    assert_eq!(
        got["list_v2"],
        serde_json::json!(["boto/app.tfstate", "boto/app.tfstate.tflock"])
    );
    assert_eq!(got["list_v1"], got["list_v2"]);
    assert_eq!(got["if_match_wrong"], "PreconditionFailed", "{got:#}");
    assert_eq!(got["internal"], "AccessDenied", "{got:#}");
    assert_eq!(got["no_such_key"], "NoSuchKey", "{got:#}");
    assert_eq!(got["no_such_bucket"], "NoSuchBucket", "{got:#}");
    assert_eq!(server.serial("boto/app.tfstate"), 20);
}

/// Files under `dir`, recursively (the local store's objects end in `.o`).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_state_above_5_mib_is_uploaded_multipart_through_the_s3_front_1_15_5() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    // 6 MiB is too big for argv, so the value comes from a file; sensitive keeps it out of
    // apply's output.
    let big: String = (0..6 * 1024 * 1024 / 16)
        .map(|i| format!("{i:015x}-"))
        .collect();
    std::fs::write(w.path().join("big.txt"), &big).unwrap();
    std::fs::write(
        w.path().join("big.tf"),
        "output \"big\" {\n  value     = file(\"big.txt\")\n  sensitive = true\n}\n",
    )
    .unwrap();
    w.apply_ok(1);

    let log = server.log();
    let multipart: Vec<&str> = log.lines().filter(|l| l.contains("multipart")).collect();
    println!(
        "the server's multipart log lines:\n{}",
        multipart.join("\n")
    );
    assert!(
        log.contains("multipart upload completed"),
        "Terraform did not upload the state multipart:\n{log}"
    );
    assert!(log.matches("multipart part stored").count() >= 2, "{log}");

    let (status, stored) = server.request("GET", KEY, "");
    assert_eq!(status, 200);
    assert!(stored.len() > 6 * 1024 * 1024, "{}", stored.len());
    let pulled = w.ok(&["state", "pull"]);
    assert_eq!(
        pulled.trim_end(),
        stored.trim_end(),
        "state pull is the stored state"
    );
    let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(parsed["outputs"]["big"]["value"], big.as_str());

    // A second big apply is the next serial, through the stale-write guard again.
    std::fs::write(w.path().join("big.txt"), big.replace('-', "+")).unwrap();
    w.apply_ok(2);
    assert_eq!(server.serial(KEY), parsed["serial"].as_u64().unwrap() + 1);
    assert_eq!(
        server.log().matches("multipart upload completed").count(),
        2
    );
    w.ok(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=2"]);

    let reserved = server.local_store().join("objects/.statelock.d");
    assert!(
        reserved.join("history.d").is_dir(),
        "the local store's layout changed"
    );
    let uploads = reserved.join("uploads.d");
    let left = files_under(&uploads);
    assert!(left.is_empty(), "upload objects left behind: {left:?}");
}

/// The ADR's key: the block is used as the document gives it.
const ADR_KEY: &str = "test/terraform.tfstate";

/// Every command of issue 14's list with the ADR's LocalStack block, only `endpoints.s3`
/// (and the credentials) changed, virtual-hosted addressing included: init, apply, plan,
/// workspaces, `state pull`/`push`, and on 1.15.5 (the release with `use_lockfile`)
/// `-lock-timeout` waiting out a held lock and `force-unlock` of a killed apply's lock.
fn adr_block_workflow(terraform: Terraform, server: &Server, bucket: &str) {
    let w = Workdir::adr_block_uninitialised(terraform, server, bucket, ADR_KEY);
    w.ok(&["init", "-input=false"]);
    w.apply_ok(1);
    w.ok(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=1"]);
    assert_eq!(server.state(ADR_KEY)["outputs"]["n"]["value"], "1");

    w.ok(&["workspace", "new", "dev"]);
    w.apply_ok(2);
    assert!(w.ok(&["workspace", "list"]).contains("* dev"));
    assert_eq!(
        server.state(&format!("env:/dev/{ADR_KEY}"))["outputs"]["n"]["value"],
        "2"
    );
    w.ok(&["workspace", "select", "default"]);
    assert_eq!(output_n(&w), "1");
    w.ok(&["workspace", "delete", "-force", "dev"]);
    assert!(!w.ok(&["workspace", "list"]).contains("dev"));

    // `state push` of the pulled state with one more serial and another output.
    let mut pulled: serde_json::Value = serde_json::from_str(&w.ok(&["state", "pull"])).unwrap();
    pulled["serial"] = (pulled["serial"].as_u64().unwrap() + 1).into();
    pulled["outputs"]["n"]["value"] = "pushed".into();
    std::fs::write(w.path().join("pushed.tfstate"), pulled.to_string()).unwrap();
    w.ok(&["state", "push", "pushed.tfstate"]);
    assert_eq!(server.state(ADR_KEY)["outputs"]["n"]["value"], "pushed");

    if terraform == Terraform::V1_15_5 {
        // `-lock-timeout`: the second apply waits for the first one's lock, then applies.
        let other = Workdir::adr_block_uninitialised(terraform, server, bucket, ADR_KEY);
        other.ok(&["init", "-input=false"]);
        let before = lock_events_so_far(server);
        let mut pending = PendingApply::start(&w, 3);
        pending.wait_until("the lock is taken", || lock_events_so_far(server) > before);
        let waiting = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| other.apply_with(4, &["-lock-timeout=2m"]));
            std::thread::sleep(std::time::Duration::from_secs(1));
            pending.answer("yes");
            waiting.join().unwrap()
        });
        assert!(waiting.status.success(), "{}", text(&waiting));
        assert_eq!(output_n(&w), "4");

        // A killed apply leaves its lock; `force-unlock` with the shown ID removes it.
        let before = lock_events_so_far(server);
        let mut pending = PendingApply::start(&w, 5);
        pending.wait_until("the lock is taken", || lock_events_so_far(server) > before);
        pending.kill();
        let refused = other.apply_with(6, &["-lock-timeout=0s"]);
        assert!(!refused.status.success(), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
        assert_eq!(shown.path, format!("{bucket}/{ADR_KEY}"), "{stderr}");
        other.ok(&["force-unlock", "-force", &shown.id]);
        other.apply_ok(6);
        assert_eq!(output_n(&w), "6");
    }
    // Every request came virtual-hosted: a path-style reading of them would have named the
    // bucket `test` (the key's first segment), which the server would have refused.
    assert!(!server.log().contains("NoSuchBucket"), "{}", server.log());
}

#[test]
fn the_adr_block_with_only_the_endpoint_changed_on_local_disk() {
    for terraform in [Terraform::V1_15_5, Terraform::V1_0_3] {
        // The ADR's bucket is served by name, as README's quick start shows.
        let server = Server::start_with(&["--bucket-name", "tf-state-test"], &[]);
        adr_block_workflow(terraform, &server, "tf-state-test");
    }
}

#[test]
fn the_adr_block_with_only_the_endpoint_changed_on_moto() {
    adr_block_on_a_bucket(moto());
}

#[test]
fn the_adr_block_with_only_the_endpoint_changed_on_seaweedfs() {
    adr_block_on_a_bucket(seaweedfs());
}

fn adr_block_on_a_bucket(s3: &'static statelock_test_support::S3Server) {
    for terraform in [Terraform::V1_15_5, Terraform::V1_0_3] {
        let store = StoreSpec::fresh_bucket(s3);
        let StoreSpec::S3 { bucket, .. } = &store else {
            unreachable!()
        };
        let server = Server::start_on(&store, &[]);
        adr_block_workflow(terraform, &server, bucket);
        // What went through the front is the bucket's own state object.
        let stored: serde_json::Value =
            serde_json::from_str(&s3.object(bucket, ADR_KEY).unwrap()).unwrap();
        assert_eq!(
            stored["outputs"]["n"]["value"],
            server.state(ADR_KEY)["outputs"]["n"]["value"]
        );
    }
}

/// `statelock` pointed at the S3 front as at a bucket (`--s3-endpoint <front>`).
fn statelock_on_front(server: &Server, bucket: &str, args: &[&str]) -> std::process::Output {
    let endpoint = server.s3_endpoint.as_deref().expect("the S3 front");
    statelock_command()
        .args(args)
        .arg(format!("--store=s3://{bucket}"))
        .arg(format!("--s3-endpoint={endpoint}"))
        .arg("--s3-path-style")
        .env("AWS_ACCESS_KEY_ID", "operator")
        .env("AWS_SECRET_ACCESS_KEY", "anything")
        .env("AWS_REGION", "us-east-1")
        .env("STATELOCK_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `statelock probe` pointed at the front judges it safe (its conditional writes hold on the
/// probe's scratch objects, which it then removes), and `locks ls` / `locks unlock --id`
/// through the front see and release a lock taken on the `http` front (the release is a
/// DeleteObject with `If-Match`, which the front honours), on local disk and on moto.
#[test]
fn the_operator_cli_judges_and_reads_the_s3_front() {
    let s3 = moto();
    let moto_store = StoreSpec::fresh_bucket(s3);
    for store in [None, Some(&moto_store)] {
        let (server, bucket) = match store {
            None => (Server::start(), LOCAL_BUCKET.to_owned()),
            Some(spec @ StoreSpec::S3 { bucket, .. }) => {
                (Server::start_on(spec, &[]), bucket.clone())
            }
            Some(StoreSpec::Dir(_)) => unreachable!(),
        };
        let probe = statelock_on_front(&server, &bucket, &["probe", "--json"]);
        assert_eq!(probe.status.code(), Some(0), "{}", text(&probe));
        let report: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
        assert_eq!(report["lockfile_safe"], true, "{report}");
        assert_eq!(report["serve_can_run"], true, "{report}");
        let failed: Vec<_> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["result"] != "PASS")
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        match store {
            None => {
                let left: Vec<_> = files_under(&server.local_store())
                    .into_iter()
                    .filter(|p| p.to_string_lossy().contains("probe"))
                    .collect();
                assert!(left.is_empty(), "the probe left {left:?}");
            }
            Some(_) => {
                let listed = s3.boto3(
                    "import boto3,sys,os\nc=boto3.client('s3',endpoint_url=os.environ['ENDPOINT'])\nprint(c.list_objects_v2(Bucket=sys.argv[1],Prefix='.statelock/probe/').get('KeyCount'))",
                    &[&bucket],
                );
                assert_eq!(listed.trim(), "0", "the probe left objects behind");
            }
        }

        let id = "0e7a3c1d-operator-cli-through-the-front";
        let lock = serde_json::json!({
            "ID": id, "Operation": "OperationTypeApply", "Info": "", "Who": "ci@runner-7",
            "Version": "1.15.5", "Created": "2026-12-01T10:00:00Z", "Path": "",
        });
        let (status, body) = server.request("LOCK", KEY, &lock.to_string());
        assert_eq!(status, 200, "{body}");
        let listed = statelock_on_front(&server, &bucket, &["locks", "ls", "--json"]);
        assert!(listed.status.success(), "{}", text(&listed));
        let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(rows[0]["lock"]["ID"], id, "{rows}");
        assert_eq!(rows[0]["lock"]["Who"], "ci@runner-7", "{rows}");
        let unlocked = statelock_on_front(&server, &bucket, &["locks", "unlock", KEY, "--id", id]);
        assert!(unlocked.status.success(), "{}", text(&unlocked));
        let (status, body) = server.request("LOCK", KEY, &lock.to_string().replace(id, "next"));
        assert_eq!(status, 200, "the lock was released: {body}");
    }
}
