//! The AWS CLI (v1, `awscli` from PyPI, botocore's own signing and checksum code) against
//! the S3 front with principals: every operation Terraform uses, each checksum form the CLI
//! sends, `aws s3 cp` of a state above its 8 MiB multipart threshold, and the refusals
//! (bad checksum, stale serial, held lock, failed `If-Match`, another team's key, a wrong
//! secret), each of which changes nothing.
//!
//! Index:
//! - `aws_cli_on_the_s3_front_with_principals`

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Digest as _;
use statelock_test_support::{isolated, tools_dir};

use crate::harness::auth::{create_token, s3_credentials};
use crate::harness::{Server, text};

const BUCKET: &str = "data";
const KEY: &str = "team-a/cli.tfstate";

/// `aws` with one principal's credentials against the front; nothing from the user's shell.
struct Cli {
    endpoint: String,
    id: String,
    secret: String,
    dir: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = isolated(tools_dir().join("bin/aws"));
        command
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .args(args)
            .current_dir(&self.dir)
            .env("AWS_ACCESS_KEY_ID", &self.id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The JSON answer of a call that must succeed.
    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "aws {args:?}:\n{}", text(&out));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("aws {args:?}: {e}:\n{}", text(&out)))
    }

    /// The S3 error code of a call that must fail, from the CLI's "An error occurred (Code)".
    fn refused(&self, args: &[&str]) -> (String, String) {
        failure(self.run(args))
    }

    /// `s3api put-object` of file `body` at `key`, with `extra` flags.
    fn put(&self, key: &str, body: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "s3api",
            "put-object",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--body",
            body,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// [`Cli::put`], which must fail: its S3 error code and message.
    fn put_refused(&self, key: &str, body: &str, extra: &[&str]) -> (String, String) {
        failure(self.put(key, body, extra))
    }

    /// [`Cli::put`], which must succeed.
    fn put_ok(&self, key: &str, body: &str, extra: &[&str]) {
        let out = self.put(key, body, extra);
        assert!(
            out.status.success(),
            "put-object {extra:?}:\n{}",
            text(&out)
        );
    }

    fn file(&self, name: &str, body: &[u8]) -> String {
        std::fs::write(self.dir.join(name), body).unwrap();
        name.to_owned()
    }
}

/// The S3 error code (from the CLI's "An error occurred (Code)") and stderr of a failed call.
fn failure(out: Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the call succeeded:\n{}", text(&out));
    let code = stderr
        .split_once("An error occurred (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_else(|| panic!("no error code in:\n{stderr}"));
    (code, stderr)
}

fn state(serial: u64, padding: usize) -> Vec<u8> {
    serde_json::json!({
        "version": 4, "terraform_version": "1.15.5", "serial": serial, "lineage": "cli-lineage",
        "outputs": {"n": {"value": serial, "type": "number"}, "pad": {"value": "x".repeat(padding), "type": "string"}},
        "resources": [],
    })
    .to_string()
    .into_bytes()
}

fn lock(id: &str) -> Vec<u8> {
    serde_json::json!({
        "ID": id, "Operation": "OperationTypeApply", "Info": "", "Who": "cli@runner",
        "Version": "1.15.5", "Created": "2026-12-01T10:00:00Z", "Path": format!("{BUCKET}/{KEY}"),
    })
    .to_string()
    .into_bytes()
}

fn stored(server: &Server, key: &str) -> Option<Vec<u8>> {
    let path: PathBuf = server.local_store().join("objects");
    // The local store's layout (ARCHITECTURE.md): directory segments `.d`, objects `.o`
    // with a one-line header.
    let mut file = path;
    let segments: Vec<&str> = key.split('/').collect();
    for s in &segments[..segments.len() - 1] {
        file = file.join(format!("{s}.d"));
    }
    file = file.join(format!("{}.o", segments[segments.len() - 1]));
    let raw = std::fs::read(&file).ok()?;
    let at = raw.iter().position(|b| *b == b'\n').unwrap();
    Some(raw[at + 1..].to_vec())
}

#[test]
fn aws_cli_on_the_s3_front_with_principals() {
    let dir = tempfile::tempdir().unwrap();
    let principals = dir.path().join("principals.toml");
    let key_file = dir.path().join("s3.key");
    create_token(&principals, "ci-a", &["write:team-a/**"]);
    create_token(&principals, "ci-b", &["write:team-b/**"]);
    let (id_a, secret_a) = s3_credentials(&principals, &key_file, "ci-a");
    let (id_b, secret_b) = s3_credentials(&principals, &key_file, "ci-b");
    let server = Server::start_with(
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--s3-secret-key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    let endpoint = server.s3_endpoint.clone().expect("the S3 front");
    let files = tempfile::tempdir().unwrap();
    let cli = |id: &str, secret: &str| Cli {
        endpoint: endpoint.clone(),
        id: id.to_owned(),
        secret: secret.to_owned(),
        dir: files.path().to_owned(),
    };
    let a = cli(&id_a, &secret_a);

    a.ok(&["s3api", "head-bucket", "--bucket", BUCKET]);
    let (code, _) = a.refused(&["s3api", "head-bucket", "--bucket", "other"]);
    assert_eq!(
        code, "404",
        "HeadBucket has no body, so the CLI shows the status"
    );

    // Each checksum form the CLI sends: its default (CRC32), SHA-256, SHA-1, Content-MD5 (CRC32C
    // needs botocore[crt], which the CLI does not install).
    let mut serial = 0;
    for extra in [
        &[][..],
        &["--checksum-algorithm", "SHA256"][..],
        &["--checksum-algorithm", "SHA1"][..],
    ] {
        serial += 1;
        let body = a.file(&format!("s{serial}.tfstate"), &state(serial, 0));
        a.put_ok(KEY, &body, extra);
        assert_eq!(stored(&server, KEY).unwrap(), state(serial, 0), "{extra:?}");
    }
    serial += 1;
    let bytes = state(serial, 0);
    let md5 = STANDARD.encode(md5::Md5::digest(&bytes));
    let body = a.file("md5.tfstate", &bytes);
    a.put_ok(KEY, &body, &["--content-md5", &md5]);

    // Refusals change nothing: a wrong SHA-256 or MD5, an older serial.
    let current = stored(&server, KEY).unwrap();
    let next = a.file("next.tfstate", &state(serial + 1, 0));
    let wrong_sha = STANDARD.encode(sha2::Sha256::digest(b"something else"));
    let (code, _) = a.put_refused(KEY, &next, &["--checksum-sha256", &wrong_sha]);
    assert_eq!(code, "BadDigest");
    let (code, _) = a.put_refused(KEY, &next, &["--content-md5", &md5]);
    assert_eq!(code, "BadDigest");
    let older = a.file("older.tfstate", &state(1, 0));
    let (code, message) = a.put_refused(KEY, &older, &[]);
    assert_eq!(code, "PreconditionFailed", "{message}");
    assert!(
        message.contains("serial"),
        "the refusal says why: {message}"
    );
    assert_eq!(
        stored(&server, KEY).unwrap(),
        current,
        "nothing was written"
    );

    // Reads: HEAD, ranged GET, both listings.
    let head = a.ok(&["s3api", "head-object", "--bucket", BUCKET, "--key", KEY]);
    assert_eq!(head["ContentLength"], current.len());
    let etag = head["ETag"].as_str().unwrap().to_owned();
    let ranged = a.ok(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        KEY,
        "--range",
        "bytes=0-9",
        "part.out",
    ]);
    assert_eq!(
        ranged["ContentRange"],
        format!("bytes 0-9/{}", current.len())
    );
    assert_eq!(
        std::fs::read(files.path().join("part.out")).unwrap(),
        &current[..10]
    );
    let v2 = a.ok(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "team-a/",
    ]);
    assert_eq!(v2["Contents"][0]["Key"], KEY, "{v2}");
    assert_eq!(v2["Contents"][0]["ETag"], etag.as_str(), "{v2}");
    let v1 = a.ok(&[
        "s3api",
        "list-objects",
        "--bucket",
        BUCKET,
        "--prefix",
        "team-a/",
        "--delimiter",
        "/",
    ]);
    assert_eq!(v1["Contents"][0]["Key"], KEY, "{v1}");

    // If-Match: a stale ETag is refused, the current one swaps.
    serial += 1;
    let swap = a.file("swap.tfstate", &state(serial, 0));
    let stale = "\"00000000000000000000000000000000\"";
    let (code, _) = a.put_refused(KEY, &swap, &["--if-match", stale]);
    assert_eq!(code, "PreconditionFailed");
    a.put_ok(KEY, &swap, &["--if-match", &etag]);

    // The lock: created once; another ID is refused naming the holder; removed by DeleteObject.
    let lock_key = format!("{KEY}.tflock");
    let mine = a.file("mine.tflock", &lock("cli-lock-1"));
    let theirs = a.file("theirs.tflock", &lock("cli-lock-2"));
    a.put_ok(&lock_key, &mine, &["--if-none-match", "*"]);
    let (code, message) = a.put_refused(&lock_key, &theirs, &["--if-none-match", "*"]);
    assert_eq!(code, "PreconditionFailed");
    assert!(
        message.contains("cli-lock-1") && message.contains("cli@runner"),
        "{message}"
    );
    a.ok(&[
        "s3api",
        "delete-object",
        "--bucket",
        BUCKET,
        "--key",
        &lock_key,
    ]);
    assert!(stored(&server, &lock_key).is_none());

    // `aws s3 cp` of a 9 MiB state: above the CLI's 8 MiB threshold, so a multipart upload,
    // written once at CompleteMultipartUpload and read back byte for byte.
    serial += 1;
    let big = state(serial, 9 * 1024 * 1024);
    let big_file = a.file("big.tfstate", &big);
    let target = format!("s3://{BUCKET}/{KEY}");
    let out = a.run(&["s3", "cp", &big_file, &target]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stored(&server, KEY).unwrap(), big);
    let out = a.run(&["s3", "cp", &target, "big.out"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(files.path().join("big.out")).unwrap(), big);
    let parts: Vec<_> = walk(&server.local_store())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("uploads.d") && p.is_file())
        .collect();
    assert!(parts.is_empty(), "parts left behind: {parts:?}");

    // Another team's principal, and a wrong secret: refused before anything changes.
    let (code, _) = cli(&id_b, &secret_b).put_refused(KEY, &older, &[]);
    assert_eq!(code, "AccessDenied");
    let (code, _) = cli(&id_a, &secret_b).put_refused(KEY, &older, &[]);
    assert_eq!(code, "SignatureDoesNotMatch");
    assert_eq!(stored(&server, KEY).unwrap(), big, "nothing changed");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
