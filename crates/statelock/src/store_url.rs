//! `--store` URLs and the `--s3-*` flags (shared by `serve` and every operator command):
//! which adapter to open and how, and the bucket name lock records carry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use statelock_store::{
    LocalStore, MemoryStore, ObjectStore, S3Config, S3Store, ServerSideEncryption,
};

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    File(PathBuf),
    Memory,
    S3 {
        bucket: String,
        prefix: Option<String>,
    },
}

impl StoreUrl {
    pub fn parse(url: &str) -> anyhow::Result<StoreUrl> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                bail!("store URL {url:?} has no path; use e.g. file://./statelock-data");
            }
            Ok(StoreUrl::File(PathBuf::from(path)))
        } else if url == "memory://" {
            Ok(StoreUrl::Memory)
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("store URL {url:?} has no bucket; use s3://BUCKET[/PREFIX]");
            }
            let prefix = prefix.trim_matches('/');
            Ok(StoreUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            })
        } else {
            bail!(
                "unsupported store URL {url:?}: use file://PATH, memory:// or s3://BUCKET[/PREFIX]"
            )
        }
    }

    /// The bucket name for lock records' `Path` when none is configured.
    pub fn default_bucket_name(&self) -> String {
        match self {
            StoreUrl::File(path) => dir_name(path),
            StoreUrl::Memory => "memory".to_owned(),
            StoreUrl::S3 { bucket, .. } => bucket.clone(),
        }
    }

    /// Whether this store needs the start-up conditional-write probe: a remote server may
    /// ignore conditions; the adapters in this process do not.
    pub fn is_remote(&self) -> bool {
        matches!(self, StoreUrl::S3 { .. })
    }

    pub async fn open(&self, s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
        match self {
            StoreUrl::File(path) => {
                let store = LocalStore::open(path.clone())
                    .with_context(|| format!("cannot open the store at {}", path.display()))?;
                Ok(Arc::new(store))
            }
            StoreUrl::Memory => Ok(Arc::new(MemoryStore::new())),
            StoreUrl::S3 { bucket, prefix } => {
                let store = connect_s3(bucket, prefix.as_deref(), s3).await?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// The S3 adapter itself rather than the port, for commands that also make bucket-level
/// calls through its SDK client.
pub async fn connect_s3(
    bucket: &str,
    prefix: Option<&str>,
    s3: &S3Args,
) -> anyhow::Result<S3Store> {
    let mut config = S3Config::new(bucket).path_style(s3.s3_path_style);
    if let Some(prefix) = prefix {
        config = config.prefix(prefix);
    }
    if let Some(endpoint) = &s3.s3_endpoint {
        config = config.endpoint(endpoint.clone());
    }
    if let Some(region) = &s3.s3_region {
        config = config.region(region.clone());
    }
    match s3.s3_sse {
        Some(SseKind::S3) => config = config.sse(ServerSideEncryption::S3),
        Some(SseKind::Kms) => {
            config = config.sse(ServerSideEncryption::Kms {
                key_id: s3.s3_kms_key_id.clone(),
            })
        }
        None => {}
    }
    S3Store::connect(config)
        .await
        .with_context(|| format!("cannot set up the S3 client for bucket {bucket}"))
}

/// The last component of the directory, resolving `.` and `..` lexically against the
/// current directory, so `file://.` still names a bucket.
fn dir_name(path: &Path) -> String {
    std::path::absolute(path)
        .ok()
        .and_then(|p| {
            p.components()
                .rfind(|c| !matches!(c, std::path::Component::CurDir))
                .and_then(|c| c.as_os_str().to_str().map(str::to_owned))
        })
        .filter(|name| !name.is_empty() && name != "/" && name != "..")
        .unwrap_or_else(|| "statelock".to_owned())
}

/// How to reach an `s3://` store. Credentials always come from the standard AWS environment
/// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles...).
#[derive(Debug, Args)]
#[command(next_help_heading = "S3 stores (--store s3://BUCKET[/PREFIX])")]
pub struct S3Args {
    /// Endpoint of an S3-compatible server (MinIO, Ceph, R2, SeaweedFS...), e.g.
    /// http://127.0.0.1:9000; AWS if unset.
    #[arg(long, env = "STATELOCK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Path-style addressing (ENDPOINT/BUCKET/KEY), which most S3-compatible servers need.
    #[arg(long, env = "STATELOCK_S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// Region; from AWS_REGION or the AWS profile if unset.
    #[arg(long, env = "STATELOCK_S3_REGION")]
    pub s3_region: Option<String>,

    /// Server-side encryption requested for every object written.
    #[arg(long, env = "STATELOCK_S3_SSE", value_enum)]
    pub s3_sse: Option<SseKind>,

    /// KMS key for --s3-sse kms; the bucket's default key if unset.
    // Checked in `ServeConfig::from_args`, not with clap's `requires`: that ignores values
    // from the config file, so it would miss a key set there and refuse `--s3-kms-key-id`
    // with `s3-sse` in the file.
    #[arg(long, env = "STATELOCK_S3_KMS_KEY_ID")]
    pub s3_kms_key_id: Option<String>,

    /// Start (or roll back) even if the store fails the start-up conditional-write check
    /// (`statelock probe` explains each check). On such a store locks may not exclude each
    /// other, so concurrent applies can overwrite each other's state. Only for experiments.
    #[arg(long, env = "STATELOCK_ALLOW_UNSAFE_STORE")]
    pub allow_unsafe_store: bool,
}

/// `--s3-sse` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SseKind {
    /// SSE-S3 (AES256), as Terraform's `encrypt = true`.
    S3,
    /// SSE-KMS (aws:kms), as Terraform's `kms_key_id`.
    Kms,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            StoreUrl::parse("file://./statelock-data").unwrap(),
            StoreUrl::File(PathBuf::from("./statelock-data"))
        );
        assert_eq!(
            StoreUrl::parse("file:///srv/state").unwrap(),
            StoreUrl::File(PathBuf::from("/srv/state"))
        );
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert_eq!(
            StoreUrl::parse("s3://bucket/prefix").unwrap(),
            StoreUrl::S3 {
                bucket: "bucket".to_owned(),
                prefix: Some("prefix".to_owned())
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket/").unwrap(),
            StoreUrl::S3 {
                bucket: "bucket".to_owned(),
                prefix: None
            }
        );
        for bad in ["file://", "s3://", "http://x", "./dir"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_name_is_the_directory_name() {
        let name = |u: &str| StoreUrl::parse(u).unwrap().default_bucket_name();
        assert_eq!(name("file://./statelock-data"), "statelock-data");
        assert_eq!(name("file:///srv/state/"), "state");
        assert_eq!(name("s3://b/p"), "b");
        assert_eq!(name("memory://"), "memory");
    }
}
