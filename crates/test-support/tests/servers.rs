//! The test servers start, answer a real AWS SDK (boto3), and keep buckets apart.

use statelock_test_support::{S3Server, moto, seaweedfs, unique_name};

fn round_trip(server: &S3Server) {
    let bucket = unique_name(&format!("support-{}", server.name));
    server.create_bucket(&bucket, true);
    let out = server.boto3(
        r#"
bucket = sys.argv[1]
s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
body = s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
print(json.dumps({"status": status, "body": body}))
"#,
        &[&bucket],
    );
    assert_eq!(
        out.trim(),
        r#"{"status": "Enabled", "body": "hello"}"#,
        "{}",
        server.name
    );
    let err = server
        .try_boto3("sys.exit(3)", &[])
        .expect_err("a failing script is an error");
    assert!(err.contains("exit status: 3"), "{err}");
}

#[test]
fn moto_answers_boto3() {
    round_trip(moto());
}

#[test]
fn seaweedfs_answers_boto3() {
    round_trip(seaweedfs());
}

#[test]
fn servers_are_started_once() {
    assert!(std::ptr::eq(moto(), moto()));
    assert!(moto().endpoint.starts_with("http://127.0.0.1:"));
}
