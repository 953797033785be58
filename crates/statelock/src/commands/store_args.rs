//! `--store` and the S3 flags for the operator commands, built on the same [`StoreUrl`] and
//! [`S3Args`] as `serve`, so a store is named the same way everywhere.

use std::sync::Arc;

use clap::Args;
use statelock_store::ObjectStore;

use crate::store_url::S3Args;
use crate::store_url::StoreUrl;

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store: s3://BUCKET[/PREFIX] (the bucket Terraform's `backend "s3"` uses) or
    /// file://PATH (a statelock directory).
    #[arg(long, env = "STATELOCK_STORE")]
    pub store: String,

    /// Bucket name expected in lock records' Path (`<bucket>/<key>`); defaults to the S3
    /// bucket, or the directory's name for file:// stores.
    #[arg(long, env = "STATELOCK_BUCKET_NAME")]
    pub bucket_name: Option<String>,

    #[command(flatten)]
    pub s3: S3Args,
}

impl StoreArgs {
    pub fn url(&self) -> anyhow::Result<StoreUrl> {
        StoreUrl::parse(&self.store)
    }

    /// The bucket name lock records carry.
    pub fn bucket(&self) -> anyhow::Result<String> {
        Ok(match &self.bucket_name {
            Some(name) => name.clone(),
            None => self.url()?.default_bucket_name(),
        })
    }

    pub async fn open(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        if self.s3.s3_kms_key_id.is_some() && self.s3.s3_sse.is_none() {
            anyhow::bail!("--s3-kms-key-id needs --s3-sse kms");
        }
        self.url()?.open(&self.s3).await
    }

    /// [`StoreArgs::open`], and on an S3 store the conditional-write check first (a few
    /// requests on a scratch key under `.statelock/probe/`, removed afterwards; it needs put
    /// and delete rights there), so that the adapter knows this server's quirks before a
    /// command changes anything: a store that ignores `If-Match` on DELETE would otherwise be
    /// trusted with a conditional delete. Quirks and failed checks are printed on stderr; a
    /// check that cannot run is a warning, and the command goes on without its findings.
    pub async fn open_for_changes(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let store = self.open().await?;
        if !self.url()?.is_remote() {
            return Ok(store);
        }
        match statelock_store::probe_conditional_writes(&*store).await {
            Ok(report) => {
                for quirk in &report.quirks {
                    eprintln!("statelock: note: {} {quirk}", store.describe());
                }
                for check in report.failures().filter(|c| c.essential()) {
                    eprintln!(
                        "statelock: warning: {}: {}: {}",
                        store.describe(),
                        check.name,
                        check.detail
                    );
                }
            }
            Err(e) => eprintln!(
                "statelock: warning: the conditional-write check of {} could not run ({}); \
                 going on without it, so a store that ignores If-Match on DELETE would not be \
                 recognised",
                store.describe(),
                statelock_store::error_chain(&e)
            ),
        }
        Ok(store)
    }
}
