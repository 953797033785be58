//! The IAM policy document: which actions on which ARNs the S3 backend needs, as plain data
//! serialized in IAM's conventional key order.

use serde::Serialize;

/// What the policy must cover; validated by the command before it gets here.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub partition: String,
    pub bucket: String,
    /// Exact state keys (the backend's `key`).
    pub keys: Vec<String>,
    /// Key prefixes under which any state may live, without trailing `/`.
    pub prefixes: Vec<String>,
    /// `workspace_key_prefix` when workspaces other than `default` are used.
    pub workspace_key_prefix: Option<String>,
    pub read_only: bool,
    /// Readers that run with `-lock=false` never touch the lock objects.
    pub no_lock: bool,
    pub kms_key: Option<String>,
    pub dynamodb_table: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub action: Vec<&'static str>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

fn allow(sid: &'static str, action: Vec<&'static str>, resource: Vec<String>) -> Statement {
    Statement {
        sid,
        effect: "Allow",
        action,
        resource,
        condition: None,
    }
}

/// IAM reads `*`, `?` and `$` in ARNs and condition values as wildcards or variables; a key
/// that contains them literally must escape them as `${*}`, `${?}`, `${$}`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '$' => {
                out.push_str("${");
                out.push(c);
                out.push('}');
            }
            _ => out.push(c),
        }
    }
    out
}

impl Scope {
    /// Key patterns of the states, already escaped: each key, each prefix's subtree, and
    /// each of those inside every workspace (`<workspace prefix>/<name>/<key>`).
    fn state_patterns(&self) -> Vec<String> {
        let mut direct: Vec<String> = self.keys.iter().map(|k| escape(k)).collect();
        direct.extend(self.prefixes.iter().map(|p| format!("{}/*", escape(p))));
        let mut all = direct.clone();
        if let Some(ws) = &self.workspace_key_prefix {
            let ws = if ws.is_empty() {
                String::new()
            } else {
                format!("{}/", escape(ws))
            };
            all.extend(direct.iter().map(|d| format!("{ws}*/{d}")));
        }
        all
    }

    fn object_arns(&self, patterns: &[String]) -> Vec<String> {
        let bucket = escape(&self.bucket);
        patterns
            .iter()
            .map(|p| format!("arn:{}:s3:::{bucket}/{p}", self.partition))
            .collect()
    }

    /// `s3:prefix` values the backend lists with: the keys and prefixes themselves, and the
    /// workspace prefix that `terraform workspace list` and `init` enumerate.
    fn list_prefixes(&self) -> Vec<String> {
        let mut values: Vec<String> = self.keys.iter().map(|k| escape(k)).collect();
        values.extend(self.prefixes.iter().map(|p| format!("{}/*", escape(p))));
        match self.workspace_key_prefix.as_deref() {
            Some("") => values.push("*".to_owned()),
            Some(ws) => values.push(format!("{}/*", escape(ws))),
            None => {}
        }
        values
    }

    pub fn policy(&self) -> Policy {
        let patterns = self.state_patterns();
        let locks_held = !self.no_lock;
        let mut statement = vec![Statement {
            condition: Some(serde_json::json!({
                "StringLike": {"s3:prefix": self.list_prefixes()}
            })),
            ..allow(
                "ListStateKeys",
                vec!["s3:ListBucket"],
                vec![format!(
                    "arn:{}:s3:::{}",
                    self.partition,
                    escape(&self.bucket)
                )],
            )
        }];
        let (sid, actions) = if self.read_only {
            ("ReadState", vec!["s3:GetObject"])
        } else {
            ("ReadWriteState", vec!["s3:GetObject", "s3:PutObject"])
        };
        statement.push(allow(sid, actions, self.object_arns(&patterns)));
        if locks_held {
            let locks: Vec<String> = patterns.iter().map(|p| format!("{p}.tflock")).collect();
            statement.push(allow(
                "LockFiles",
                vec!["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                self.object_arns(&locks),
            ));
        }
        if let Some(key) = &self.kms_key {
            // Writing a lock object encrypts it too, so only a reader that never locks can
            // do with Decrypt alone.
            let actions = if self.read_only && !locks_held {
                vec!["kms:Decrypt"]
            } else {
                vec!["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
            };
            statement.push(allow("StateEncryptionKey", actions, vec![key.clone()]));
        }
        if let Some(table) = &self.dynamodb_table {
            // The lock item and the `-md5` digest item are keyed `<bucket>/<state key>`.
            let leading: Vec<String> = patterns
                .iter()
                .flat_map(|p| {
                    let item = format!("{}/{p}", escape(&self.bucket));
                    [item.clone(), format!("{item}-md5")]
                })
                .collect();
            let actions = if self.read_only && !locks_held {
                vec!["dynamodb:GetItem"]
            } else {
                vec![
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ]
            };
            statement.push(Statement {
                condition: Some(serde_json::json!({
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": leading}
                })),
                ..allow("DynamoDbLockTable", actions, vec![table.clone()])
            });
        }
        Policy {
            version: "2012-10-17",
            statement,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_keys_are_escaped() {
        assert_eq!(escape("a*b?c$d"), "a${*}b${?}c${$}d");
        let scope = Scope {
            partition: "aws".into(),
            bucket: "b".into(),
            keys: vec!["x*.tfstate".into()],
            ..Scope::default()
        };
        let policy = scope.policy();
        assert_eq!(
            policy.statement[1].resource,
            ["arn:aws:s3:::b/x${*}.tfstate"]
        );
    }

    #[test]
    fn workspace_keys_sit_under_the_workspace_prefix() {
        let scope = Scope {
            partition: "aws".into(),
            bucket: "b".into(),
            keys: vec!["app.tfstate".into()],
            prefixes: vec!["team".into()],
            workspace_key_prefix: Some("env:".into()),
            ..Scope::default()
        };
        assert_eq!(
            scope.state_patterns(),
            [
                "app.tfstate",
                "team/*",
                "env:/*/app.tfstate",
                "env:/*/team/*"
            ]
        );
        assert_eq!(scope.list_prefixes(), ["app.tfstate", "team/*", "env:/*"]);
    }
}
