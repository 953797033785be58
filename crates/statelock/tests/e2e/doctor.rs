//! `statelock doctor` against real S3-compatible servers: a bare moto bucket fails, the same
//! kind of bucket after running the fix commands doctor printed passes, and SeaweedFS's
//! unsupported calls come out as "cannot check" warnings.

use std::process::Output;

use serde_json::Value;
use statelock_test_support::{S3Server, moto, seaweedfs, unique_name};

/// Runs `statelock doctor` on `s3://<bucket>[/<prefix>]` at `server`.
fn doctor(server: &S3Server, store: &str, extra: &[&str]) -> Output {
    crate::harness::statelock_command()
        .args(["doctor", "--store", store, "--s3-path-style"])
        .arg(format!("--s3-endpoint={}", server.endpoint))
        .args(extra)
        .envs(server.aws_env())
        .env("STATELOCK_LOG", "error")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON report and the exit code.
fn doctor_json(server: &S3Server, store: &str) -> (Value, i32) {
    let out = doctor(server, store, &["--json"]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    (report, out.status.code().unwrap())
}

/// `check name -> severity` of a report, in report order.
fn severities(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect()
}

/// Runs an `aws s3api put-* --bucket B --some-config 'JSON'` line through boto3: the
/// operation and parameter names map mechanically onto boto3's, and the JSON payload is
/// passed through unchanged. So the test checks the very payloads that doctor prints.
const RUN_FIX: &str = r#"
import shlex
words = shlex.split(sys.argv[1])
assert words[0] == "aws", words
op = words[words.index("s3api") + 1]
bucket = words[words.index("--bucket") + 1]
param, payload = words[-2], words[-1]
assert param.startswith("--"), words
name = "".join(p.capitalize() for p in param[2:].split("-"))
getattr(s3, op.replace("-", "_"))(Bucket=bucket, **{name: json.loads(payload)})
"#;

#[test]
fn bare_moto_bucket_fails_and_the_printed_fixes_make_it_pass() {
    let server = moto();
    let bucket = unique_name("doctor-bare");
    server.create_bucket(&bucket, false);
    let store = format!("s3://{bucket}/team-a");

    let (report, code) = doctor_json(server, &store);
    assert_eq!(code, 4, "{report:#}");
    assert_eq!(
        severities(&report),
        pairs(&[
            ("versioning", "fail"),
            ("encryption", "fail"),
            ("public-access", "fail"),
            ("noncurrent-expiry", "fail"),
            ("object-lock", "info"),
        ])
    );
    assert_eq!(report["store"], store.as_str());
    assert_eq!(report["bucket"], bucket.as_str());
    assert_eq!(report["prefix"], "team-a");
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["summary"]["fail"], 4);
    assert_eq!(report["summary"]["info"], 1);
    let findings = report["findings"].as_array().unwrap();
    for finding in findings {
        assert!(!finding["message"].as_str().unwrap().is_empty());
        let failed = finding["severity"] == "fail";
        assert_eq!(finding["fix"].is_string(), failed, "{finding:#}");
    }
    let lifecycle_fix = findings[3]["fix"].as_str().unwrap();
    assert!(
        lifecycle_fix.contains(r#""Filter":{"Prefix":"team-a/"}"#),
        "{lifecycle_fix}"
    );

    // The table carries the same verdicts, and the same exit code.
    let table = doctor(server, &store, &[]);
    assert_eq!(table.status.code(), Some(4), "{}", text(&table));
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(stdout.contains("versioning         FAIL"), "{stdout}");
    assert!(stdout.contains("fix: aws --endpoint-url"), "{stdout}");

    for finding in findings {
        if let Some(fix) = finding["fix"].as_str() {
            server.boto3(RUN_FIX, &[fix]);
        }
    }
    let (report, code) = doctor_json(server, &store);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        severities(&report),
        pairs(&[
            ("versioning", "ok"),
            ("encryption", "ok"),
            ("public-access", "ok"),
            ("noncurrent-expiry", "ok"),
            ("object-lock", "info"),
        ])
    );
    assert!(
        report["findings"][3]["message"]
            .as_str()
            .unwrap()
            // moto drops NewerNoncurrentVersions, so only the days are echoed back.
            .contains("under team-a/ after 90 days"),
        "{report:#}"
    );
}

/// Configured the way an operator would by hand: SSE-KMS and a bucket-wide rule with the
/// legacy top-level Prefix, which also covers the prefix doctor is asked about.
const CONFIGURE_BY_HAND: &str = r#"
bucket = sys.argv[1]
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/k"}}]})
s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
    {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]})
"#;

#[test]
fn configured_moto_bucket_passes_and_a_half_configured_one_names_what_is_missing() {
    let server = moto();
    let bucket = unique_name("doctor-good");
    server.create_bucket(&bucket, false);
    server.boto3(CONFIGURE_BY_HAND, &[&bucket]);
    let (report, code) = doctor_json(server, &format!("s3://{bucket}/envs/prod"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["summary"]["ok"], 4);
    assert_eq!(
        report["findings"][1]["message"],
        "default encryption is SSE-KMS with key arn:aws:kms:us-east-1:123456789012:key/k"
    );
    assert_eq!(report["prefix"], "envs/prod");

    // Loosening one public access setting and suspending versioning fail those two only.
    server.boto3(
        r#"
bucket = sys.argv[1]
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
"#,
        &[&bucket],
    );
    let (report, code) = doctor_json(server, &format!("s3://{bucket}"));
    assert_eq!(code, 4, "{report:#}");
    let s = severities(&report);
    assert_eq!((&s[0].1[..], &s[2].1[..]), ("fail", "fail"), "{report:#}");
    assert_eq!((&s[1].1[..], &s[3].1[..]), ("ok", "ok"), "{report:#}");
    let message = report["findings"][2]["message"].as_str().unwrap();
    assert!(message.contains("BlockPublicPolicy off"), "{message}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("versioning is Suspended")
    );
}

#[test]
fn missing_bucket_is_an_error_and_file_stores_are_refused() {
    let server = moto();
    let out = doctor(server, &format!("s3://{}", unique_name("doctor-none")), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let out = crate::harness::statelock_command()
        .args(["doctor", "--store", "file://./somewhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("S3 bucket"));
}

#[test]
fn seaweedfs_unsupported_settings_are_warnings_never_ok() {
    let server = seaweedfs();
    let bucket = unique_name("doctor-weed");
    server.create_bucket(&bucket, true);
    let (report, code) = doctor_json(server, &format!("s3://{bucket}"));
    eprintln!("SeaweedFS report:\n{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 5);
    for finding in findings {
        let message = finding["message"].as_str().unwrap();
        if message.starts_with("cannot check") {
            assert_eq!(finding["severity"], "warn", "{finding:#}");
        }
    }
    assert_eq!(
        findings[0]["severity"], "ok",
        "versioning was enabled: {report:#}"
    );
    let fails = report["summary"]["fail"].as_u64().unwrap();
    assert_eq!(code, if fails > 0 { 4 } else { 0 }, "{report:#}");
}
