//! The `aws s3api` commands that fix a failed check, ready to paste into a POSIX shell.
//!
//! Every payload is JSON (which the AWS CLI accepts for any structure parameter) rather than
//! the CLI's shorthand syntax, so that tests can feed the same payload to another SDK.

/// Days a state version stays recoverable after it is replaced.
pub const NONCURRENT_DAYS: u32 = 90;
/// Replaced versions kept per key regardless of age, so a rarely changed state keeps a
/// rollback history.
pub const NEWER_NONCURRENT_VERSIONS: u32 = 20;
pub const LIFECYCLE_RULE_ID: &str = "statelock-noncurrent-versions";

/// Builds the commands for one bucket; `endpoint` is the custom S3 endpoint, if any, which
/// the AWS CLI needs as `--endpoint-url`.
#[derive(Debug, Clone)]
pub struct Fixes {
    bucket: String,
    endpoint: Option<String>,
}

impl Fixes {
    pub fn new(bucket: &str, endpoint: Option<&str>) -> Fixes {
        Fixes {
            bucket: bucket.to_owned(),
            endpoint: endpoint.map(str::to_owned),
        }
    }

    fn command(&self, operation: &str, parameter: &str, payload: &str) -> String {
        let endpoint = match &self.endpoint {
            Some(url) => format!(" --endpoint-url {}", shell_quote(url)),
            None => String::new(),
        };
        format!(
            "aws{endpoint} s3api {operation} --bucket {} --{parameter} {}",
            shell_quote(&self.bucket),
            shell_quote(payload)
        )
    }

    pub fn versioning(&self) -> String {
        self.command(
            "put-bucket-versioning",
            "versioning-configuration",
            r#"{"Status":"Enabled"}"#,
        )
    }

    pub fn encryption(&self) -> String {
        self.command(
            "put-bucket-encryption",
            "server-side-encryption-configuration",
            r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#,
        )
    }

    pub fn public_access_block(&self) -> String {
        self.command(
            "put-public-access-block",
            "public-access-block-configuration",
            concat!(
                r#"{"BlockPublicAcls":true,"IgnorePublicAcls":true,"#,
                r#""BlockPublicPolicy":true,"RestrictPublicBuckets":true}"#
            ),
        )
    }

    /// `key_space` is the prefix the rule must cover ("" for the whole bucket). Also removes
    /// the delete markers that every released lock leaves once their versions are gone, and
    /// abandoned multipart uploads of large states.
    pub fn lifecycle(&self, key_space: &str) -> String {
        // Written out rather than built with `json!`, whose maps would sort the keys and
        // put "ID" last.
        let prefix = serde_json::Value::from(key_space);
        let payload = format!(
            concat!(
                r#"{{"Rules":[{{"ID":"{id}","Status":"Enabled","Filter":{{"Prefix":{prefix}}},"#,
                r#""NoncurrentVersionExpiration":{{"NoncurrentDays":{days},"NewerNoncurrentVersions":{keep}}},"#,
                r#""Expiration":{{"ExpiredObjectDeleteMarker":true}},"#,
                r#""AbortIncompleteMultipartUpload":{{"DaysAfterInitiation":7}}}}]}}"#
            ),
            id = LIFECYCLE_RULE_ID,
            prefix = prefix,
            days = NONCURRENT_DAYS,
            keep = NEWER_NONCURRENT_VERSIONS,
        );
        self.command(
            "put-bucket-lifecycle-configuration",
            "lifecycle-configuration",
            &payload,
        )
    }
}

/// Single quotes protect everything but a single quote, which is closed, escaped, reopened.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_for_the_shell() {
        let fixes = Fixes::new("my-bucket", Some("http://127.0.0.1:9000"));
        assert_eq!(
            fixes.versioning(),
            r#"aws --endpoint-url 'http://127.0.0.1:9000' s3api put-bucket-versioning --bucket 'my-bucket' --versioning-configuration '{"Status":"Enabled"}'"#
        );
        let lifecycle = Fixes::new("b", None).lifecycle("it's \"x\"/");
        assert!(
            lifecycle.contains(r#""Prefix":"it'\''s \"x\"/""#),
            "{lifecycle}"
        );
        let payload = lifecycle
            .rsplit_once(" '")
            .unwrap()
            .1
            .trim_end_matches('\'');
        let parsed: serde_json::Value =
            serde_json::from_str(&payload.replace(r"'\''", "'")).unwrap();
        assert_eq!(
            parsed["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"],
            90
        );
    }
}
