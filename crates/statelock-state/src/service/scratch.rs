//! The probe's scratch objects (`.statelock/probe/…`) through a front, so that `statelock
//! probe` can judge a front (the S3 front) the way it judges a bucket: plain objects with S3's
//! conditional-write semantics, each condition checked on the version the store's own
//! compare-and-swap then replaces. No history, no guard, no lock: they are no states.

use bytes::Bytes;
use statelock_store::{DeleteMode, ObjectStoreExt, PROBE_PREFIX, PutMode, PutOptions, StoreError};

use super::{Expect, StateError, StateService};
use crate::history;

/// Whether `key` is one of the probe's scratch objects.
pub fn is_scratch_key(key: &str) -> bool {
    key.len() > PROBE_PREFIX.len() && key.starts_with(PROBE_PREFIX)
}

impl StateService {
    /// Writes scratch object `key` if the stored one is as `expect` says.
    pub async fn scratch_put(
        &self,
        key: &str,
        bytes: Bytes,
        expect: Expect<'_>,
    ) -> Result<(), StateError> {
        check(key).map_err(|e| *e)?;
        let mode = match expect {
            Expect::Any => PutMode::Overwrite,
            Expect::Absent => PutMode::Create,
            Expect::Md5(wanted) => PutMode::Update(self.version_with_md5(key, wanted).await?),
        };
        match self.store.put(key, bytes, PutOptions::new(mode)).await {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyExists { .. }) => Err(StateError::Precondition(format!(
                "{key} exists, and the write asked for none; nothing was written"
            ))),
            Err(StoreError::Precondition { .. }) => Err(StateError::Precondition(format!(
                "{key} changed since its ETag was read; nothing was written"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes scratch object `key` (a missing one is no error, as on S3) if the stored one
    /// is as `expect` says.
    pub async fn scratch_delete(&self, key: &str, expect: Expect<'_>) -> Result<(), StateError> {
        check(key).map_err(|e| *e)?;
        let mode = match expect {
            Expect::Any => DeleteMode::Unconditional,
            Expect::Absent => {
                return Err(StateError::Precondition(
                    "a delete cannot ask for no object".to_owned(),
                ));
            }
            Expect::Md5(wanted) => DeleteMode::IfVersion(self.version_with_md5(key, wanted).await?),
        };
        match self.store.delete(key, mode).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(StoreError::Precondition { .. }) => Err(StateError::Precondition(format!(
                "{key} changed since its ETag was read; nothing was deleted"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The version of `key` if its body has MD5 `wanted` (a single-part ETag), else why not.
    async fn version_with_md5(
        &self,
        key: &str,
        wanted: &str,
    ) -> Result<statelock_store::Version, StateError> {
        let found = self.store.get_if_exists(key).await?.ok_or_else(|| {
            StateError::Precondition(format!("If-Match was given but nothing is stored at {key}"))
        })?;
        let stored = history::md5_hex(&found.body);
        if !stored.eq_ignore_ascii_case(wanted) {
            return Err(StateError::Precondition(format!(
                "{key} has ETag {stored}, not the {wanted} asked for; nothing was changed"
            )));
        }
        Ok(found.meta.version)
    }
}

fn check(key: &str) -> Result<(), Box<StateError>> {
    if is_scratch_key(key) {
        return Ok(());
    }
    Err(Box::new(StateError::Precondition(format!(
        "{key} is not under {PROBE_PREFIX}, the only objects that are not states"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_service::memory_service as service;

    #[tokio::test]
    async fn conditions_hold_on_the_version_replaced() {
        let svc = service();
        let k = ".statelock/probe/x";
        svc.scratch_put(k, Bytes::from_static(b"1"), Expect::Absent)
            .await
            .unwrap();
        let again = svc
            .scratch_put(k, Bytes::from_static(b"2"), Expect::Absent)
            .await;
        assert!(
            matches!(again, Err(StateError::Precondition(_))),
            "{again:?}"
        );
        let one = history::md5_hex(b"1");
        let stale = svc
            .scratch_put(k, Bytes::from_static(b"2"), Expect::Md5("00"))
            .await;
        assert!(
            matches!(stale, Err(StateError::Precondition(_))),
            "{stale:?}"
        );
        svc.scratch_put(k, Bytes::from_static(b"2"), Expect::Md5(&one))
            .await
            .unwrap();
        let gone = svc.scratch_delete(k, Expect::Md5(&one)).await;
        assert!(matches!(gone, Err(StateError::Precondition(_))), "{gone:?}");
        svc.scratch_delete(k, Expect::Md5(&history::md5_hex(b"2")))
            .await
            .unwrap();
        svc.scratch_delete(k, Expect::Any).await.unwrap();
    }

    #[tokio::test]
    async fn only_probe_keys_are_scratch() {
        let svc = service();
        for key in ["app.tfstate", ".statelock/history/x", ".statelock/probe/"] {
            let r = svc.scratch_put(key, Bytes::new(), Expect::Any).await;
            assert!(matches!(r, Err(StateError::Precondition(_))), "{key}");
        }
    }
}
