//! `--store` URLs: which adapter to open, and the bucket name lock records carry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use statelock_store::{LocalStore, MemoryStore, ObjectStore};

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    File(PathBuf),
    Memory,
    S3 { bucket: String },
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
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                bail!("store URL {url:?} has no bucket; use s3://BUCKET[/PREFIX]");
            }
            Ok(StoreUrl::S3 {
                bucket: bucket.to_owned(),
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
            StoreUrl::S3 { bucket } => bucket.clone(),
        }
    }

    pub fn open(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        match self {
            StoreUrl::File(path) => {
                let store = LocalStore::open(path.clone())
                    .with_context(|| format!("cannot open the store at {}", path.display()))?;
                Ok(Arc::new(store))
            }
            StoreUrl::Memory => Ok(Arc::new(MemoryStore::new())),
            StoreUrl::S3 { .. } => {
                bail!("S3 stores are wired up in a later change; use file://PATH for now")
            }
        }
    }
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
                bucket: "bucket".to_owned()
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

    #[test]
    fn s3_is_refused_clearly_for_now() {
        let err = StoreUrl::parse("s3://b").unwrap().open().unwrap_err();
        assert!(
            err.to_string()
                .contains("S3 stores are wired up in a later change")
        );
    }
}
