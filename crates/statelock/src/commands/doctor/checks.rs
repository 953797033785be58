//! The judgement of each check, from what the bucket answered. Kept free of SDK types so
//! every verdict can be tested without a server.

use super::finding::{Finding, Severity};
use super::fix::Fixes;

/// One bucket setting as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<T> {
    Got(T),
    /// The store answered with the error code that means "never configured".
    NotConfigured,
    /// The store could not answer (not implemented, access denied...): why.
    CannotCheck(String),
}

/// The default encryption rule: algorithm (`AES256`, `aws:kms`, `aws:kms:dsse`) and KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub algorithm: String,
    pub kms_key: Option<String>,
}

/// The bucket's public access block; an unset field counts as `false`, as on S3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: Option<String>,
    pub enabled: bool,
    /// The rule's key prefix, from `Filter.Prefix`, `Filter.And.Prefix` or the legacy
    /// top-level `Prefix`; empty for the whole bucket.
    pub prefix: String,
    /// The rule also needs a tag or an object size, so it does not apply to every state.
    pub narrowed: bool,
    pub noncurrent_days: Option<i32>,
    pub newer_noncurrent_versions: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectLock {
    pub enabled: bool,
    /// Default retention, e.g. `GOVERNANCE 30 days`.
    pub default_retention: Option<String>,
}

/// Where the states live: the key space the lifecycle rule has to cover.
pub fn key_space(prefix: Option<&str>) -> String {
    prefix.map(|p| format!("{p}/")).unwrap_or_default()
}

fn cannot_check(check: &'static str, what: &str, why: &str) -> Finding {
    Finding::new(
        check,
        Severity::Warn,
        format!("cannot check {what}: {why}; check it by hand"),
    )
}

pub fn versioning(observed: &Observed<Option<String>>, fixes: &Fixes) -> Finding {
    const CHECK: &str = "versioning";
    let status = match observed {
        Observed::CannotCheck(why) => return cannot_check(CHECK, "versioning", why),
        Observed::NotConfigured => None,
        Observed::Got(status) => status.as_deref(),
    };
    match status {
        Some("Enabled") => Finding::new(
            CHECK,
            Severity::Ok,
            "versioning is enabled: every replaced or deleted state can be restored",
        ),
        Some(other) => Finding::new(
            CHECK,
            Severity::Fail,
            format!(
                "versioning is {other}: a state overwritten by a bad apply or deleted by mistake cannot be restored"
            ),
        )
        .with_fix(fixes.versioning()),
        None => Finding::new(
            CHECK,
            Severity::Fail,
            "versioning was never enabled: a state overwritten by a bad apply or deleted by mistake cannot be restored",
        )
        .with_fix(fixes.versioning()),
    }
}

pub fn encryption(observed: &Observed<Vec<Encryption>>, fixes: &Fixes) -> Finding {
    const CHECK: &str = "encryption";
    const WHY: &str = "state files hold secrets (passwords, keys, outputs) in plain text";
    let rules = match observed {
        Observed::CannotCheck(why) => return cannot_check(CHECK, "default encryption", why),
        Observed::NotConfigured => &Vec::new(),
        Observed::Got(rules) => rules,
    };
    let described: Vec<String> = rules.iter().filter_map(describe_encryption).collect();
    match described.first() {
        Some(kind) => Finding::new(
            CHECK,
            Severity::Ok,
            format!("default encryption is {kind}"),
        ),
        None if rules.is_empty() => Finding::new(
            CHECK,
            Severity::Fail,
            format!("no default encryption: {WHY}, and writes without `encrypt = true` are stored unencrypted"),
        )
        .with_fix(fixes.encryption()),
        None => Finding::new(
            CHECK,
            Severity::Fail,
            format!(
                "default encryption uses an unknown algorithm ({}): {WHY}; use SSE-S3 or SSE-KMS",
                rules
                    .iter()
                    .map(|r| r.algorithm.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_fix(fixes.encryption()),
    }
}

fn describe_encryption(rule: &Encryption) -> Option<String> {
    let key = |name: &str| match &rule.kms_key {
        Some(key) => format!("{name} with key {key}"),
        None => format!("{name} with the AWS managed key"),
    };
    match rule.algorithm.as_str() {
        "AES256" => Some("SSE-S3 (AES256)".to_owned()),
        "aws:kms" => Some(key("SSE-KMS")),
        "aws:kms:dsse" => Some(key("DSSE-KMS")),
        _ => None,
    }
}

pub fn public_access(observed: &Observed<PublicAccessBlock>, fixes: &Fixes) -> Finding {
    const CHECK: &str = "public-access";
    let block = match observed {
        Observed::CannotCheck(why) => return cannot_check(CHECK, "the public access block", why),
        Observed::NotConfigured => {
            return Finding::new(
                CHECK,
                Severity::Fail,
                "no public access block on the bucket: one bucket policy or ACL can publish every state and its secrets",
            )
            .with_fix(fixes.public_access_block());
        }
        Observed::Got(block) => block,
    };
    let open: Vec<&str> = [
        ("BlockPublicAcls", block.block_public_acls),
        ("IgnorePublicAcls", block.ignore_public_acls),
        ("BlockPublicPolicy", block.block_public_policy),
        ("RestrictPublicBuckets", block.restrict_public_buckets),
    ]
    .into_iter()
    .filter(|(_, on)| !on)
    .map(|(name, _)| name)
    .collect();
    if open.is_empty() {
        Finding::new(
            CHECK,
            Severity::Ok,
            "all four public access block settings are on",
        )
    } else {
        Finding::new(
            CHECK,
            Severity::Fail,
            format!(
                "public access block is incomplete ({} off): a bucket policy or ACL could publish the states",
                open.join(", ")
            ),
        )
        .with_fix(fixes.public_access_block())
    }
}

pub fn noncurrent_expiry(
    observed: &Observed<Vec<LifecycleRule>>,
    key_space: &str,
    fixes: &Fixes,
) -> Finding {
    const CHECK: &str = "noncurrent-expiry";
    const WHY: &str = "every lock and state write leaves a noncurrent version that is kept (and billed) forever (terraform#36445)";
    let where_ = if key_space.is_empty() {
        "the bucket".to_owned()
    } else {
        key_space.to_owned()
    };
    let rules = match observed {
        Observed::CannotCheck(why) => {
            return cannot_check(CHECK, "the lifecycle configuration", why);
        }
        Observed::NotConfigured => {
            return Finding::new(
                CHECK,
                Severity::Fail,
                format!("no lifecycle configuration: {WHY}"),
            )
            .with_fix(fixes.lifecycle(key_space));
        }
        Observed::Got(rules) => rules,
    };
    let expiring = |r: &&LifecycleRule| r.enabled && r.noncurrent_days.is_some_and(|d| d > 0);
    let covering = rules
        .iter()
        .filter(expiring)
        .find(|r| !r.narrowed && key_space.starts_with(&r.prefix));
    if let Some(rule) = covering {
        let keep = match rule.newer_noncurrent_versions {
            Some(n) => format!(", keeping the newest {n}"),
            None => String::new(),
        };
        return Finding::new(
            CHECK,
            Severity::Ok,
            format!(
                "lifecycle rule {} expires noncurrent versions under {where_} after {} days{keep}",
                rule_name(rule),
                rule.noncurrent_days.unwrap_or_default()
            ),
        );
    }
    let narrowed = rules
        .iter()
        .filter(expiring)
        .filter(|r| r.narrowed)
        .map(rule_name)
        .collect::<Vec<_>>();
    let why_not = if narrowed.is_empty() {
        String::new()
    } else {
        format!(
            " ({} also need a tag or an object size)",
            narrowed.join(", ")
        )
    };
    // put-bucket-lifecycle-configuration replaces the whole configuration, so pasting the
    // fix as is would silently delete the bucket's other rules.
    let merge = if rules.is_empty() {
        String::new()
    } else {
        format!(
            "; merge the fix with the {} existing rule(s), since it replaces them all",
            rules.len()
        )
    };
    Finding::new(
        CHECK,
        Severity::Fail,
        format!("no enabled lifecycle rule expires noncurrent versions under {where_}{why_not}: {WHY}{merge}"),
    )
    .with_fix(fixes.lifecycle(key_space))
}

fn rule_name(rule: &LifecycleRule) -> String {
    match &rule.id {
        Some(id) => format!("{id:?}"),
        None => "(unnamed)".to_owned(),
    }
}

pub fn object_lock(observed: &Observed<ObjectLock>) -> Finding {
    const CHECK: &str = "object-lock";
    match observed {
        Observed::CannotCheck(why) => cannot_check(CHECK, "Object Lock", why),
        Observed::Got(lock) if lock.enabled => {
            let retention = match &lock.default_retention {
                Some(r) => format!("default retention {r}"),
                None => "no default retention".to_owned(),
            };
            Finding::new(
                CHECK,
                Severity::Info,
                format!(
                    "Object Lock is enabled ({retention}): lockfile locking needs Terraform >= 1.10.1 (terraform#36113), and retained lock versions cannot be expired early"
                ),
            )
        }
        Observed::Got(_) | Observed::NotConfigured => Finding::new(
            CHECK,
            Severity::Info,
            "Object Lock is not enabled (optional: it makes state versions undeletable for a retention period)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixes() -> Fixes {
        Fixes::new("b", None)
    }

    fn rule(prefix: &str, days: Option<i32>) -> LifecycleRule {
        LifecycleRule {
            id: Some("r".into()),
            enabled: true,
            prefix: prefix.into(),
            noncurrent_days: days,
            ..LifecycleRule::default()
        }
    }

    #[test]
    fn versioning_must_be_enabled() {
        let check = |o| versioning(&o, &fixes()).severity;
        assert_eq!(check(Observed::Got(Some("Enabled".into()))), Severity::Ok);
        assert_eq!(
            check(Observed::Got(Some("Suspended".into()))),
            Severity::Fail
        );
        assert_eq!(check(Observed::Got(None)), Severity::Fail);
        assert_eq!(check(Observed::CannotCheck("501".into())), Severity::Warn);
    }

    #[test]
    fn only_known_encryption_counts() {
        let enc = |a: &str| Encryption {
            algorithm: a.into(),
            kms_key: Some("arn:k".into()),
        };
        let check = |o| encryption(&o, &fixes());
        assert_eq!(
            check(Observed::Got(vec![enc("AES256")])).severity,
            Severity::Ok
        );
        let kms = check(Observed::Got(vec![enc("aws:kms")]));
        assert_eq!(kms.message, "default encryption is SSE-KMS with key arn:k");
        assert_eq!(
            check(Observed::Got(vec![enc("rot13")])).severity,
            Severity::Fail
        );
        let missing = check(Observed::NotConfigured);
        assert_eq!(missing.severity, Severity::Fail);
        assert!(missing.fix.unwrap().contains("put-bucket-encryption"));
    }

    #[test]
    fn public_access_needs_all_four() {
        let all = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(
            public_access(&Observed::Got(all), &fixes()).severity,
            Severity::Ok
        );
        let partial = PublicAccessBlock {
            restrict_public_buckets: false,
            ..all
        };
        let finding = public_access(&Observed::Got(partial), &fixes());
        assert_eq!(finding.severity, Severity::Fail);
        assert!(
            finding.message.contains("RestrictPublicBuckets off"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn lifecycle_rule_must_cover_the_prefix() {
        let check = |rules: Vec<LifecycleRule>, space: &str| {
            noncurrent_expiry(&Observed::Got(rules), space, &fixes()).severity
        };
        assert_eq!(check(vec![rule("", Some(30))], "team/"), Severity::Ok);
        assert_eq!(check(vec![rule("team", Some(30))], "team/"), Severity::Ok);
        assert_eq!(
            check(vec![rule("other/", Some(30))], "team/"),
            Severity::Fail
        );
        assert_eq!(check(vec![rule("team/", Some(30))], ""), Severity::Fail);
        assert_eq!(check(vec![rule("", None)], ""), Severity::Fail);
        let disabled = LifecycleRule {
            enabled: false,
            ..rule("", Some(30))
        };
        assert_eq!(check(vec![disabled], ""), Severity::Fail);
        let tagged = LifecycleRule {
            narrowed: true,
            ..rule("", Some(30))
        };
        let finding = noncurrent_expiry(&Observed::Got(vec![tagged]), "", &fixes());
        assert!(
            finding.message.contains("also need a tag"),
            "{}",
            finding.message
        );
        assert!(
            finding
                .message
                .contains("merge the fix with the 1 existing")
        );
    }

    #[test]
    fn object_lock_is_only_informational() {
        for observed in [
            Observed::NotConfigured,
            Observed::Got(ObjectLock {
                enabled: true,
                default_retention: Some("GOVERNANCE 1 days".into()),
            }),
        ] {
            assert_eq!(object_lock(&observed).severity, Severity::Info);
        }
        let unknown = object_lock(&Observed::CannotCheck("HTTP 501".into()));
        assert_eq!(unknown.severity, Severity::Warn);
    }
}
