//! Reads the bucket settings through the SDK and sorts each answer into "got it", "never
//! configured" or "cannot check".

use anyhow::bail;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::LifecycleRule as SdkRule;

use super::checks::{Encryption, LifecycleRule, ObjectLock, Observed, PublicAccessBlock};

/// Everything the checks look at.
#[derive(Debug)]
pub struct BucketSettings {
    pub versioning: Observed<Option<String>>,
    pub encryption: Observed<Vec<Encryption>>,
    pub public_access: Observed<PublicAccessBlock>,
    pub lifecycle: Observed<Vec<LifecycleRule>>,
    pub object_lock: Observed<ObjectLock>,
}

pub async fn read(client: &Client, bucket: &str) -> anyhow::Result<BucketSettings> {
    let versioning = match client.get_bucket_versioning().bucket(bucket).send().await {
        Err(err) if status_in_unparsed_answer(&err).is_some() => {
            Observed::Got(status_in_unparsed_answer(&err).flatten())
        }
        // Versioning has no "not configured" error: a never-versioned bucket answers 200
        // without a Status.
        result => sort(result, "GetBucketVersioning", None)?
            .map(|out| out.status().map(|s| s.as_str().to_owned())),
    };
    let encryption = sort(
        client.get_bucket_encryption().bucket(bucket).send().await,
        "GetBucketEncryption",
        Some("ServerSideEncryptionConfigurationNotFoundError"),
    )?
    .map(|out| {
        out.server_side_encryption_configuration()
            .map(|c| c.rules())
            .unwrap_or_default()
            .iter()
            .filter_map(|rule| rule.apply_server_side_encryption_by_default())
            .map(|d| Encryption {
                algorithm: d.sse_algorithm().as_str().to_owned(),
                kms_key: d.kms_master_key_id().map(str::to_owned),
            })
            .collect()
    });
    let public_access = sort(
        client.get_public_access_block().bucket(bucket).send().await,
        "GetPublicAccessBlock",
        Some("NoSuchPublicAccessBlockConfiguration"),
    )?
    .map(|out| {
        let c = out.public_access_block_configuration();
        let on = |f: fn(&aws_sdk_s3::types::PublicAccessBlockConfiguration) -> Option<bool>| {
            c.and_then(f).unwrap_or(false)
        };
        PublicAccessBlock {
            block_public_acls: on(|c| c.block_public_acls()),
            ignore_public_acls: on(|c| c.ignore_public_acls()),
            block_public_policy: on(|c| c.block_public_policy()),
            restrict_public_buckets: on(|c| c.restrict_public_buckets()),
        }
    });
    let lifecycle = sort(
        client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await,
        "GetBucketLifecycleConfiguration",
        Some("NoSuchLifecycleConfiguration"),
    )?
    .map(|out| out.rules().iter().map(lifecycle_rule).collect());
    let object_lock = sort(
        client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await,
        "GetObjectLockConfiguration",
        Some("ObjectLockConfigurationNotFoundError"),
    )?
    .map(|out| {
        let config = out.object_lock_configuration();
        let retention = config
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention());
        ObjectLock {
            enabled: config
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled"),
            default_retention: retention.map(|r| {
                let mode = r.mode().map(|m| m.as_str()).unwrap_or("(no mode)");
                match (r.days(), r.years()) {
                    (Some(d), _) => format!("{mode} {d} days"),
                    (None, Some(y)) => format!("{mode} {y} years"),
                    (None, None) => mode.to_owned(),
                }
            }),
        }
    });
    Ok(BucketSettings {
        versioning,
        encryption,
        public_access,
        lifecycle,
        object_lock,
    })
}

/// The versioning status in a 200 answer the SDK refused to parse. moto names the root
/// element `GetBucketVersioningResponse` instead of S3's `VersioningConfiguration`, which
/// the SDK rejects; the status inside is still what S3 would have said, and its absence
/// means "never enabled", as on S3.
fn status_in_unparsed_answer<E>(err: &SdkError<E, HttpResponse>) -> Option<Option<String>> {
    let raw = err.raw_response()?;
    if raw.status().as_u16() != 200 {
        return None;
    }
    let body = String::from_utf8_lossy(raw.body().bytes()?).into_owned();
    let status = body
        .split_once("<Status>")
        .and_then(|(_, rest)| rest.split_once("</Status>"))
        .map(|(status, _)| status.trim().to_owned());
    Some(status)
}

// The top-level `Prefix` is deprecated but still what older buckets' rules carry.
#[allow(deprecated)]
fn lifecycle_rule(rule: &SdkRule) -> LifecycleRule {
    let filter = rule.filter();
    let and = filter.and_then(|f| f.and());
    let prefix = filter
        .and_then(|f| f.prefix())
        .or_else(|| and.and_then(|a| a.prefix()))
        .or(rule.prefix())
        .unwrap_or_default();
    let narrowed = filter.is_some_and(|f| {
        f.tag().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    }) || and.is_some_and(|a| {
        !a.tags().is_empty()
            || a.object_size_greater_than().is_some()
            || a.object_size_less_than().is_some()
    });
    let expiry = rule.noncurrent_version_expiration();
    LifecycleRule {
        id: rule.id().map(str::to_owned),
        enabled: rule.status().as_str() == "Enabled",
        prefix: prefix.to_owned(),
        narrowed,
        noncurrent_days: expiry.and_then(|e| e.noncurrent_days()),
        newer_noncurrent_versions: expiry.and_then(|e| e.newer_noncurrent_versions()),
    }
}

/// `missing` is the error code by which S3 says the setting was never configured. Any other
/// answer from the store (not implemented, access denied, an odd code from an S3-compatible
/// server) makes that one check uncheckable; a missing bucket or an unreachable store ends
/// the whole run.
fn sort<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    operation: &str,
    missing: Option<&str>,
) -> anyhow::Result<Observed<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = match result {
        Ok(out) => return Ok(Observed::Got(out)),
        Err(err) => err,
    };
    let code = err.code().map(str::to_owned);
    if !matches!(err, SdkError::ServiceError(_)) {
        bail!("{operation} failed: {}", statelock_store::error_chain(&err));
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    if code.as_deref() == Some("NoSuchBucket") {
        bail!("{operation}: the bucket does not exist");
    }
    if code.is_some() && code.as_deref() == missing {
        return Ok(Observed::NotConfigured);
    }
    let code_text = code.unwrap_or_else(|| "(no error code)".to_owned());
    let status_text = status.map(|s| format!("HTTP {s} ")).unwrap_or_default();
    let why = if status == Some(501) || code_text == "NotImplemented" {
        format!("the store does not implement {operation} ({status_text}{code_text})")
    } else {
        format!("{operation} answered {status_text}{code_text}")
    };
    Ok(Observed::CannotCheck(why))
}

impl<T> Observed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observed<U> {
        match self {
            Observed::Got(t) => Observed::Got(f(t)),
            Observed::NotConfigured => Observed::NotConfigured,
            Observed::CannotCheck(why) => Observed::CannotCheck(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningError;
    use aws_sdk_s3::primitives::SdkBody;

    fn answer(status: u16, body: &'static str) -> SdkError<GetBucketVersioningError, HttpResponse> {
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
        SdkError::response_error("unparsable", raw)
    }

    #[test]
    fn reads_the_status_from_an_answer_the_sdk_refused() {
        let moto = r#"<GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(
            status_in_unparsed_answer(&answer(200, moto)),
            Some(Some("Enabled".into()))
        );
        assert_eq!(
            status_in_unparsed_answer(&answer(200, "<GetBucketVersioningResponse/>")),
            Some(None)
        );
        assert_eq!(status_in_unparsed_answer(&answer(501, "<Error/>")), None);
    }
}
