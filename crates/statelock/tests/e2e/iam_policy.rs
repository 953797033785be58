//! `statelock iam-policy` output, parsed as JSON: one flag combination against a golden
//! document, others statement by statement.

use serde_json::{Value, json};

fn policy(args: &[&str]) -> (String, Value) {
    let out = crate::harness::statelock_command()
        .arg("iam-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (text, value)
}

/// Statement `sid` of `policy`, panicking if absent.
fn statement<'p>(policy: &'p Value, sid: &str) -> &'p Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no {sid} in {policy:#}"))
}

fn sids(policy: &Value) -> Vec<&str> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect()
}

#[test]
fn two_keys_with_kms_match_the_golden_policy() {
    let args = [
        "--bucket",
        "tf-state",
        "--key",
        "prod/app.tfstate",
        "--key",
        "prod/db.tfstate",
        "--kms-key",
        "arn:aws:kms:eu-west-1:111122223333:key/1234",
    ];
    let (text, value) = policy(&args);
    let golden = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListStateKeys",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::tf-state"],
                "Condition": {"StringLike": {"s3:prefix": ["prod/app.tfstate", "prod/db.tfstate"]}}
            },
            {
                "Sid": "ReadWriteState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::tf-state/prod/app.tfstate", "arn:aws:s3:::tf-state/prod/db.tfstate"]
            },
            {
                "Sid": "LockFiles",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [
                    "arn:aws:s3:::tf-state/prod/app.tfstate.tflock",
                    "arn:aws:s3:::tf-state/prod/db.tfstate.tflock"
                ]
            },
            {
                "Sid": "StateEncryptionKey",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": ["arn:aws:kms:eu-west-1:111122223333:key/1234"]
            }
        ]
    });
    assert_eq!(value, golden);
    // Key order and 2-space indentation are part of the contract: the same bytes each run.
    assert!(text.starts_with("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Sid\": \"ListStateKeys\",\n      \"Effect\""), "{text}");
    assert_eq!(policy(&args).0, text);
}

#[test]
fn read_only_keeps_the_lock_unless_told_it_never_locks() {
    let base = ["--bucket", "b", "--prefix", "team-a/", "--read-only"];
    let (_, value) = policy(&base);
    assert_eq!(sids(&value), ["ListStateKeys", "ReadState", "LockFiles"]);
    assert_eq!(
        statement(&value, "ReadState")["Action"],
        json!(["s3:GetObject"])
    );
    assert_eq!(
        statement(&value, "ReadState")["Resource"],
        json!(["arn:aws:s3:::b/team-a/*"])
    );
    assert_eq!(
        statement(&value, "LockFiles")["Resource"],
        json!(["arn:aws:s3:::b/team-a/*.tflock"])
    );
    assert_eq!(
        statement(&value, "ListStateKeys")["Condition"],
        json!({"StringLike": {"s3:prefix": ["team-a/*"]}})
    );

    let kms = "arn:aws:kms:us-east-1:1:key/k";
    let (_, value) = policy(&[&base[..], &["--no-lock", "--kms-key", kms]].concat());
    assert_eq!(
        sids(&value),
        ["ListStateKeys", "ReadState", "StateEncryptionKey"]
    );
    assert_eq!(
        statement(&value, "StateEncryptionKey")["Action"],
        json!(["kms:Decrypt"])
    );
}

#[test]
fn workspaces_and_dynamodb_are_covered() {
    let table = "arn:aws:dynamodb:us-east-1:1:table/locks";
    let (_, value) = policy(&[
        "--bucket",
        "b",
        "--key",
        "app.tfstate",
        "--workspace-key-prefix",
        "--dynamodb-table",
        table,
    ]);
    assert_eq!(
        statement(&value, "ReadWriteState")["Resource"],
        json!([
            "arn:aws:s3:::b/app.tfstate",
            "arn:aws:s3:::b/env:/*/app.tfstate"
        ])
    );
    assert_eq!(
        statement(&value, "LockFiles")["Resource"],
        json!([
            "arn:aws:s3:::b/app.tfstate.tflock",
            "arn:aws:s3:::b/env:/*/app.tfstate.tflock"
        ])
    );
    assert_eq!(
        statement(&value, "ListStateKeys")["Condition"]["StringLike"]["s3:prefix"],
        json!(["app.tfstate", "env:/*"])
    );
    let dynamo = statement(&value, "DynamoDbLockTable");
    assert_eq!(dynamo["Resource"], json!([table]));
    assert_eq!(
        dynamo["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        json!([
            "b/app.tfstate",
            "b/app.tfstate-md5",
            "b/env:/*/app.tfstate",
            "b/env:/*/app.tfstate-md5"
        ])
    );
}

#[test]
fn invalid_flags_are_refused() {
    for args in [
        vec!["--bucket", "b"],
        vec!["--bucket", "b", "--key", "/abs"],
        vec!["--bucket", "b", "--key", "a//b"],
        vec!["--bucket", "b/c", "--key", "k"],
        vec!["--bucket", "b", "--key", "k", "--kms-key", "alias/x"],
        vec![
            "--bucket",
            "b",
            "--key",
            "k",
            "--kms-key",
            "arn:aws:kms:r:1:alias/x",
        ],
    ] {
        let out = crate::harness::statelock_command()
            .arg("iam-policy")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
