//! `statelock probe` against real S3-compatible servers: moto and SeaweedFS honour
//! conditional writes and must be judged safe; s3rver ignores them and must be judged unsafe
//! with exit code 3. The verdict lines are printed so the CI log shows them.

use std::process::Output;

use statelock_test_support::{S3Server, moto, s3rver, seaweedfs, unique_name};

fn probe(server: &'static S3Server, versioned: bool, extra: &[&str]) -> Output {
    let bucket = unique_name("statelock-probe");
    server.create_bucket(&bucket, versioned);
    let out = crate::harness::statelock_command()
        .args([
            "probe",
            "--s3-path-style",
            "--racers",
            "10",
            "--rounds",
            "3",
        ])
        .arg(format!("--store=s3://{bucket}/scratch"))
        .arg(format!("--s3-endpoint={}", server.endpoint))
        .args(extra)
        .envs(server.aws_env())
        .env("STATELOCK_LOG", "warn")
        .output()
        .unwrap();
    let left = server.boto3(
        "print(len(s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])))",
        &[&bucket],
    );
    assert_eq!(left.trim(), "0", "the probe cleans up after itself");
    out
}

fn verdict(server: &'static S3Server, versioned: bool) -> (Option<i32>, String, String) {
    let out = probe(server, versioned, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("safe for Terraform/OpenTofu lockfile locking: "))
        .unwrap_or_else(|| panic!("no verdict line:\n{stdout}\n{stderr}"))
        .to_owned();
    eprintln!("probe verdict[{}]: {line}", server.name);
    eprint!("{stdout}");
    assert!(
        stderr.contains("creators' race round 3/3"),
        "progress on stderr: {stderr}"
    );
    (out.status.code(), line, stdout)
}

#[test]
fn moto_is_safe() {
    let (code, line, stdout) = verdict(moto(), true);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(line.contains(": yes, because"), "{line}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn seaweedfs_is_safe() {
    let (code, line, stdout) = verdict(seaweedfs(), true);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(line.contains(": yes, because"), "{line}");
}

#[test]
fn s3rver_ignores_conditions_and_is_unsafe() {
    let (code, line, stdout) = verdict(s3rver(), false);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(line.contains(": no, because"), "{line}");
    assert!(line.contains("If-None-Match"), "{line}");
    assert!(
        stdout.contains("FAIL  exactly one of many racing creators wins each round"),
        "{stdout}"
    );
}

#[test]
fn json_output_carries_the_verdict() {
    let out = probe(moto(), true, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["safe"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 11);
}
