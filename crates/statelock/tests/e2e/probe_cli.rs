//! `statelock probe` against real S3-compatible servers, with its two verdicts (lockfile
//! locking by Terraform/OpenTofu themselves; `statelock serve`): moto and SeaweedFS honour
//! conditional writes and pass both; s3rver ignores them and fails both with exit code 3,
//! each failed check saying what the store did. The verdict lines are printed so the CI log
//! shows them.

use std::process::Output;

use statelock_test_support::{S3Server, moto, s3rver, seaweedfs, unique_name};

/// `statelock probe` (10 racers, 3 rounds) on `bucket` of `server`, with `extra` arguments.
pub fn probe_bucket(server: &S3Server, bucket: &str, extra: &[&str]) -> Output {
    crate::harness::statelock_command()
        .args([
            "probe",
            "--s3-path-style",
            "--racers",
            "10",
            "--rounds",
            "3",
        ])
        .arg(format!("--store=s3://{bucket}"))
        .arg(format!("--s3-endpoint={}", server.endpoint))
        .args(extra)
        .envs(server.aws_env())
        .env("STATELOCK_LOG", "warn")
        .output()
        .unwrap()
}

/// [`probe_bucket`] on a fresh bucket's `scratch` prefix, checking that it cleans up.
fn probe(server: &'static S3Server, versioned: bool, extra: &[&str]) -> Output {
    let bucket = unique_name("statelock-probe");
    server.create_bucket(&bucket, versioned);
    let out = probe_bucket(server, &format!("{bucket}/scratch"), extra);
    let left = server.boto3(
        "print(len(s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])))",
        &[&bucket],
    );
    assert_eq!(left.trim(), "0", "the probe cleans up after itself");
    out
}

/// What `statelock probe` said: exit code, the lockfile verdict, the serve verdict, stdout.
struct Verdicts {
    code: Option<i32>,
    lockfile: String,
    serve: String,
    stdout: String,
}

fn verdicts(server: &'static S3Server, versioned: bool) -> Verdicts {
    let out = probe(server, versioned, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} line:\n{stdout}\n{stderr}"))
            .to_owned()
    };
    let (lockfile, serve) = (
        line("Terraform/OpenTofu use_lockfile locking: "),
        line("statelock serve: "),
    );
    eprintln!("probe verdicts[{}]:\n  {lockfile}\n  {serve}", server.name);
    eprint!("{stdout}");
    assert!(
        stderr.contains("creators' race round 3/3"),
        "progress on stderr: {stderr}"
    );
    Verdicts {
        code: out.status.code(),
        lockfile,
        serve,
        stdout,
    }
}

#[test]
fn moto_is_safe() {
    let v = verdicts(moto(), true);
    assert_eq!(v.code, Some(0), "{}", v.stdout);
    assert!(
        v.lockfile.contains(": safe, because all 5 checks"),
        "{}",
        v.lockfile
    );
    assert!(
        v.serve.contains(": can run, because all 8 checks"),
        "{}",
        v.serve
    );
    assert!(
        !v.stdout.contains("FAIL") && !v.stdout.contains("handled:"),
        "{}",
        v.stdout
    );
}

#[test]
fn seaweedfs_is_safe() {
    let v = verdicts(seaweedfs(), true);
    assert_eq!(v.code, Some(0), "{}", v.stdout);
    assert!(v.lockfile.contains(": safe, because"), "{}", v.lockfile);
    assert!(v.serve.contains(": can run, because"), "{}", v.serve);
}

#[test]
fn s3rver_ignores_conditions_and_is_unsafe() {
    let v = verdicts(s3rver(), false);
    assert_eq!(v.code, Some(3), "{}", v.stdout);
    assert!(
        v.lockfile.contains(
            ": UNSAFE, because second create-if-absent (If-None-Match: *) of an existing key: \
             accepted, so the store ignores If-None-Match"
        ),
        "{}",
        v.lockfile
    );
    assert!(v.serve.contains(": cannot run, because"), "{}", v.serve);
    assert!(
        v.stdout
            .contains("FAIL  lockfile+serve  creators racing for one lock"),
        "{}",
        v.stdout
    );
}

#[test]
fn json_output_carries_the_verdicts() {
    let out = probe(moto(), true, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lockfile_safe"], true);
    assert_eq!(report["serve_can_run"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 11);
    assert_eq!(report["quirks"], serde_json::json!([]));
}
