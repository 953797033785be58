//! The conditional-write probe: passes on stores that honour conditions (memory, local disk,
//! moto) and fails loudly on one that silently ignores them.

mod s3_common;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use statelock_store::{
    Capabilities, DeleteMode, GetResult, ListPage, LocalStore, MemoryStore, ObjectMeta,
    ObjectStore, ObjectStoreExt, ProbeOptions, PutMode, PutOptions, StoreResult,
    probe_conditional_writes, probe_store,
};

/// A server that accepts `If-None-Match` and `If-Match` and ignores them, as some
/// S3-compatible servers did before supporting conditional writes; with `.1` set it ignores
/// only `If-Match`, honouring create-if-absent (lockfile locking works, compare-and-swap not).
#[derive(Debug, Default)]
struct IgnoresConditions(MemoryStore, bool);

#[async_trait]
impl ObjectStore for IgnoresConditions {
    fn describe(&self) -> String {
        "ignores-conditions://".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.0.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.0.head(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        mut options: PutOptions,
    ) -> StoreResult<ObjectMeta> {
        if !(self.1 && options.mode == PutMode::Create) {
            options.mode = PutMode::Overwrite;
        }
        self.0.put(key, body, options).await
    }
    async fn delete(&self, key: &str, _mode: DeleteMode) -> StoreResult<()> {
        self.0.delete(key, DeleteMode::Unconditional).await
    }
    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.0.list(prefix, continuation).await
    }
}

async fn assert_safe_and_clean(store: &dyn ObjectStore) {
    let report = probe_conditional_writes(store).await.unwrap();
    eprint!("{report}");
    assert!(
        report.serve_can_run() && report.lockfile_is_safe(),
        "{report}"
    );
    assert_eq!(report.failures().count(), 0, "{report}");
    assert!(report.quirks.is_empty(), "{report}");
    assert_eq!(report.checks.len(), 5);
    assert!(
        store.list_all("").await.unwrap().is_empty(),
        "the probe cleans up"
    );
}

#[tokio::test]
async fn memory_and_local_stores_pass() {
    assert_safe_and_clean(&MemoryStore::new()).await;
    let dir = tempfile::tempdir().unwrap();
    assert_safe_and_clean(&LocalStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn moto_passes() {
    let store = s3_common::fresh_store(statelock_test_support::moto).await;
    assert_safe_and_clean(&store).await;
}

#[tokio::test]
async fn a_store_ignoring_conditions_fails_every_essential_check() {
    let store = IgnoresConditions::default();
    let report = probe_conditional_writes(&store).await.unwrap();
    eprint!("{report}");
    assert!(!report.lockfile_is_safe() && !report.serve_can_run());
    let failed: Vec<(&str, &str)> = report
        .failures()
        .map(|c| (c.name, c.detail.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "second create-if-absent (If-None-Match: *) of an existing key",
                "accepted, so the store ignores If-None-Match: two clients can both take the same lock"
            ),
            (
                "the body after the second create",
                "\"second\" replaced the first create's: a second locker overwrites the holder's record"
            ),
            (
                "compare-and-swap (If-Match) with a stale ETag",
                "accepted, so the store ignores If-Match: two servers writing one state would overwrite each other"
            ),
            (
                "conditional delete (If-Match) with a stale ETag",
                "accepted: the object was removed although its ETag differed, so the store \
                 ignores If-Match on DELETE; lock releases fall back to reading the lock, \
                 comparing its ID and a plain delete, as Terraform's own releases do"
            ),
        ]
    );
    assert!(
        report
            .to_string()
            .contains("  FAIL second create-if-absent")
    );
    assert!(
        report.lockfile_verdict().starts_with(
            "Terraform/OpenTofu use_lockfile locking: UNSAFE, because second create-if-absent"
        ),
        "{}",
        report.lockfile_verdict()
    );
}

#[tokio::test]
async fn a_store_ignoring_only_if_match_is_safe_for_lockfiles_but_not_for_serve() {
    let store = IgnoresConditions(MemoryStore::new(), true);
    let report = probe_conditional_writes(&store).await.unwrap();
    eprint!("{report}");
    assert!(report.lockfile_is_safe(), "{report}");
    assert!(!report.serve_can_run(), "{report}");
    assert!(
        report.serve_verdict().starts_with(
            "statelock serve: cannot run, because compare-and-swap (If-Match) with a stale ETag: \
             accepted, so the store ignores If-Match"
        ),
        "{}",
        report.serve_verdict()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_probe_finds_racing_creators_all_winning_on_a_store_ignoring_conditions() {
    let store: Arc<dyn ObjectStore> = Arc::new(IgnoresConditions::default());
    let options = ProbeOptions {
        racers: 5,
        rounds: 2,
        ..ProbeOptions::default()
    };
    let report = probe_store(&store, &options, &|line: &str| eprintln!("{line}"))
        .await
        .unwrap();
    eprint!("{report}");
    let verdict = report.lockfile_verdict();
    eprintln!("{verdict}");
    assert!(!report.lockfile_is_safe());
    assert!(verdict.starts_with("Terraform/OpenTofu use_lockfile locking: UNSAFE, because "));
    assert!(
        report
            .serve_verdict()
            .starts_with("statelock serve: cannot run, because ")
    );
    // The compare-and-swap race is not asserted: in memory a read and its swap never
    // interleave with other workers, so even ignored conditions lose no update here.
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    for name in [
        "compare-and-swap (If-Match) on a missing key",
        "creators racing for one lock",
    ] {
        assert!(failed.contains(&name), "{name} not among {failed:?}");
    }
    assert!(
        report.to_string().contains("round 1: 5 winners"),
        "{report}"
    );
    assert!(
        store.list_all("").await.unwrap().is_empty(),
        "the probe cleans up"
    );
}
