//! `statelock serve` on S3 stores (moto and SeaweedFS on 127.0.0.1): the start-up probe, and
//! interoperation with a client that locks the bucket directly the way Terraform ≥ 1.10's
//! `backend "s3"` with `use_lockfile = true` does (spec §2.3–2.5), played by boto3. Each side
//! must see the other's lock and the other's holder record.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};

use statelock_test_support::{S3Server, moto, seaweedfs, terraform_bin, unique_name};

/// A `statelock serve` process on an S3 bucket, killed when dropped.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: String,
    log: tempfile::NamedTempFile,
}

impl Server {
    fn start(s3: &S3Server, bucket: &str) -> Server {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_statelock"))
            .args(["serve", "--listen", "127.0.0.1:0", "--s3-path-style"])
            .arg(format!("--store=s3://{bucket}"))
            .arg(format!("--s3-endpoint={}", s3.endpoint))
            .envs(s3.aws_env())
            .env("STATELOCK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let log_text = std::fs::read_to_string(log.path()).unwrap();
        let addr = first
            .trim()
            .strip_prefix("statelock listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}; log:\n{log_text}"))
            .to_owned();
        assert!(
            log_text.contains("store honours conditional writes"),
            "{log_text}"
        );
        Server {
            child,
            _stdout: stdout,
            addr,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// One plain HTTP/1.1 request to `/v1/states/<key>`; returns the status and body.
    fn request(&self, method: &str, key: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} /v1/states/{key} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status = reply[9..12].parse().unwrap();
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status, body.unwrap_or_default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn interop(s3: &S3Server) {
    let bucket = unique_name("statelock-serve");
    s3.create_bucket(&bucket, true);
    let server = Server::start(s3, &bucket);
    let key = "team-a/prod/terraform.tfstate";
    let direct = |op: &str, arg: &str| s3.boto3(DIRECT_CLIENT, &[op, &bucket, key, arg]);

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
    let bucket = unique_name("statelock-tf");
    s3.create_bucket(&bucket, true);
    let server = Server::start(s3, &bucket);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/v1/states/app/terraform.tfstate", server.addr);
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            "terraform {{\n  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n  }}\n}}\noutput \"greeting\" {{\n  value = \"hello from s3\"\n}}\n"
        ),
    )
    .unwrap();
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-input=false", "-auto-approve", "-no-color"],
    ] {
        let out = Command::new(terraform_bin())
            .args(args)
            .current_dir(dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_DATA_DIR", dir.path().join(".tfdata"))
            .env_remove("TF_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "terraform {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
    }
    // The state is a plain object in the bucket, where Terraform's own S3 backend would read
    // it, and no lock is left behind.
    let listing = s3.boto3(
        r#"
bucket = sys.argv[1]
state = json.loads(s3.get_object(Bucket=bucket, Key="app/terraform.tfstate")["Body"].read())
print(state["outputs"]["greeting"]["value"])
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
print(sorted(k for k in keys if not k.startswith(".statelock/")))
"#,
        &[&bucket],
    );
    assert_eq!(listing, "hello from s3\n['app/terraform.tfstate']\n");
}
