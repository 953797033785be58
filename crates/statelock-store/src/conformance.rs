//! The conformance suite: one set of checks that every adapter's tests run.
//!
//! Each check takes a fresh, empty store and panics with a precise message on the first
//! deviation from the port's contract. A capability the store lacks is not skipped: the check
//! asserts that the store answers `NotImplemented` and prints that it lacks it. Every check
//! prints one summary line to stderr (`conformance[<store>] <check>: ...`) so a CI log shows
//! what ran where, with the race counts.
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one `#[tokio::test]` per check.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::join_all;

use crate::error::StoreError;
use crate::port::{DeleteMode, Metadata, ObjectStore, ObjectStoreExt, PutMode, PutOptions};

/// Sizes of the checks, so slow stores can run smaller races.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Concurrent creators per racing round.
    pub racers: usize,
    /// Racing rounds.
    pub race_rounds: usize,
    /// Concurrent compare-and-swap workers.
    pub cas_workers: usize,
    /// Successful increments each worker makes.
    pub cas_increments: usize,
    /// Size of the large-object round trip, in bytes.
    pub large_object_bytes: usize,
    /// Objects written for the listing check; the store's page size must be smaller.
    pub list_objects: usize,
    /// Compare-and-swaps that may fail under contention with an answer that is neither
    /// success nor refusal (Ceph RGW's 500s), each then retried; 0 for stores that must
    /// answer every swap cleanly.
    pub failed_swaps_allowed: usize,
}

impl Profile {
    /// The full suite: 20 racers × 5 rounds, 5 workers × 10 increments, 100 MiB, 25 objects.
    pub const FULL: Profile = Profile {
        racers: 20,
        race_rounds: 5,
        cas_workers: 5,
        cas_increments: 10,
        large_object_bytes: 100 * 1024 * 1024,
        list_objects: 25,
        failed_swaps_allowed: 0,
    };
}

fn report(store: &dyn ObjectStore, check: &str, detail: impl std::fmt::Display) {
    eprintln!("conformance[{}] {check}: {detail}", store.describe());
}

fn body(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// get/head of a missing key are `NotFound`; an unconditional delete of one succeeds.
pub async fn missing_objects(store: &dyn ObjectStore) {
    let err = store.get("no/such/key").await.unwrap_err();
    assert!(err.is_not_found(), "get of a missing key: {err}");
    let err = store.head("no/such/key").await.unwrap_err();
    assert!(err.is_not_found(), "head of a missing key: {err}");
    store
        .delete("no/such/key", DeleteMode::Unconditional)
        .await
        .expect("unconditional delete of a missing key succeeds, as on S3");
    report(
        store,
        "missing_objects",
        "get/head NotFound, delete idempotent",
    );
}

/// A put is visible to get and head with the version the put returned; an overwrite
/// replaces the body and changes the version even for identical bytes.
pub async fn put_get_overwrite(store: &dyn ObjectStore) {
    let key = "team-a/prod/terraform.tfstate";
    let first = store
        .put(key, body("one"), PutOptions::json(PutMode::Overwrite))
        .await
        .unwrap();
    assert_eq!(first.key, key);
    assert_eq!(first.size, 3);
    let got = store.get(key).await.unwrap();
    assert_eq!(got.body, body("one"));
    assert_eq!(
        got.meta.version, first.version,
        "get returns the version put returned"
    );
    assert_eq!(store.head(key).await.unwrap().version, first.version);

    let second = store
        .put(key, body("two!"), PutOptions::new(PutMode::Overwrite))
        .await
        .unwrap();
    assert_ne!(second.version, first.version);
    let got = store.get(key).await.unwrap();
    assert_eq!((got.body, got.meta.size), (body("two!"), 4));
    let streamed = store.get_stream(key).await.unwrap();
    assert_eq!(
        streamed.meta.version, second.version,
        "get_stream's version"
    );
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(streamed.body)
        .await
        .unwrap();
    assert_eq!(chunks.concat(), b"two!", "get_stream's body");
    let missing = store.get_stream("no/such/key").await.err().unwrap();
    assert!(
        missing.is_not_found(),
        "get_stream of a missing key: {missing}"
    );

    // Keys with ':' as Terraform workspaces use, and an empty body.
    let ws = "env:/dev/app.tfstate";
    store
        .put(ws, Bytes::new(), PutOptions::new(PutMode::Overwrite))
        .await
        .unwrap();
    assert_eq!(store.get(ws).await.unwrap().body.len(), 0);
    report(store, "put_get_overwrite", "bodies and versions consistent");
}

/// `Create` succeeds once; a second `Create` is `AlreadyExists` and changes nothing; after a
/// delete the key can be created again.
pub async fn create_conflict(store: &dyn ObjectStore) {
    let key = "a/b.tfstate.tflock";
    let created = store
        .put(key, body("holder-1"), PutOptions::json(PutMode::Create))
        .await
        .unwrap();
    let err = store
        .put(key, body("holder-2"), PutOptions::json(PutMode::Create))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "second create: {err}"
    );
    let got = store.get(key).await.unwrap();
    assert_eq!(
        got.body,
        body("holder-1"),
        "a refused create changes nothing"
    );
    assert_eq!(got.meta.version, created.version);

    store.delete(key, DeleteMode::Unconditional).await.unwrap();
    assert!(store.head(key).await.unwrap_err().is_not_found());
    store
        .put(key, body("holder-3"), PutOptions::json(PutMode::Create))
        .await
        .expect("a deleted key can be created again");
    assert_eq!(store.get(key).await.unwrap().body, body("holder-3"));
    report(
        store,
        "create_conflict",
        "second create refused, re-create after delete",
    );
}

/// `Update` succeeds on the current version, is a `Precondition` failure on a stale version
/// or a missing key, and a refused update changes nothing.
pub async fn compare_and_swap(store: &dyn ObjectStore) {
    let key = "cas/state";
    let v1 = store
        .put(key, body("1"), PutOptions::new(PutMode::Overwrite))
        .await
        .unwrap()
        .version;
    let v2 = store
        .put(key, body("2"), PutOptions::new(PutMode::Update(v1.clone())))
        .await
        .unwrap()
        .version;
    assert_ne!(v1, v2);

    let err = store
        .put(
            key,
            body("stale"),
            PutOptions::new(PutMode::Update(v1.clone())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "stale update: {err}"
    );
    let got = store.get(key).await.unwrap();
    assert_eq!((got.body, got.meta.version), (body("2"), v2.clone()));

    let err = store
        .put(
            "cas/missing",
            body("x"),
            PutOptions::new(PutMode::Update(v2)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "update of a missing key: {err}"
    );
    assert!(store.head("cas/missing").await.unwrap_err().is_not_found());

    // Rewriting identical bytes must change the version, unless the store documents that its
    // versions are content hashes; otherwise a stale CAS could succeed by coincidence.
    let same = store.get(key).await.unwrap();
    store
        .put(
            key,
            body("2"),
            PutOptions::new(PutMode::Update(same.meta.version.clone())),
        )
        .await
        .unwrap();
    let after_rewrite = store
        .put(
            key,
            body("3"),
            PutOptions::new(PutMode::Update(same.meta.version)),
        )
        .await;
    match after_rewrite {
        Err(StoreError::Precondition { .. }) => report(
            store,
            "compare_and_swap",
            "stale and missing refused; identical rewrite changes the version",
        ),
        Ok(_) if store.capabilities().content_hash_versions => report(
            store,
            "compare_and_swap",
            "stale and missing refused; versions are content hashes (identical rewrite keeps the version)",
        ),
        Ok(_) => panic!("an update on the version before an identical rewrite succeeded"),
        Err(other) => panic!("update after an identical rewrite: {other}"),
    }
}

/// A delete conditional on the version refuses a stale version and reports a missing key.
pub async fn conditional_delete(store: &dyn ObjectStore) {
    let key = "locks/x.tflock";
    let v1 = store
        .put(key, body("a"), PutOptions::new(PutMode::Create))
        .await
        .unwrap()
        .version;
    if !store.capabilities().conditional_delete {
        let err = store
            .delete(key, DeleteMode::IfVersion(v1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotImplemented { .. }), "{err}");
        report(
            store,
            "conditional_delete",
            "capability not supported: conditional delete (NotImplemented)",
        );
        return;
    }
    let v2 = store
        .put(key, body("b"), PutOptions::new(PutMode::Overwrite))
        .await
        .unwrap()
        .version;
    let err = store
        .delete(key, DeleteMode::IfVersion(v1))
        .await
        .unwrap_err();
    // A store may learn only now, from the server's answer, that it has no conditional
    // delete (LocalStack's 501); then it must say so from here on, and have deleted nothing.
    if matches!(err, StoreError::NotImplemented { .. }) {
        assert!(
            !store.capabilities().conditional_delete,
            "answered NotImplemented but still claims conditional delete"
        );
        assert_eq!(store.get(key).await.unwrap().body, body("b"));
        report(
            store,
            "conditional_delete",
            "capability learned missing: the server refused a conditional delete as not implemented, nothing deleted",
        );
        return;
    }
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "stale delete: {err}"
    );
    assert_eq!(
        store.get(key).await.unwrap().body,
        body("b"),
        "a refused delete changes nothing"
    );
    store
        .delete(key, DeleteMode::IfVersion(v2.clone()))
        .await
        .unwrap();
    assert!(store.head(key).await.unwrap_err().is_not_found());
    let err = store
        .delete(key, DeleteMode::IfVersion(v2))
        .await
        .unwrap_err();
    assert!(
        err.is_not_found(),
        "conditional delete of a missing key: {err}"
    );
    report(
        store,
        "conditional_delete",
        "stale refused, current deleted, missing NotFound",
    );
}

/// Listing returns exactly the keys under a string prefix, sorted, across several pages.
pub async fn paginated_list(store: &dyn ObjectStore, profile: &Profile) {
    let mut expected: Vec<String> = (0..profile.list_objects)
        .map(|i| format!("list/item-{i:03}"))
        .collect();
    expected.push("list/nested/deeper/item".to_owned());
    let outside = ["lis", "lisa/x", "other/list/item", "list"];
    let writes = expected
        .iter()
        .map(String::as_str)
        .chain(outside)
        .map(|k| store.put(k, body(k), PutOptions::new(PutMode::Overwrite)));
    for r in join_all(writes).await {
        r.unwrap();
    }
    expected.sort();

    let mut pages = 0;
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = store.list("list/", next.as_deref()).await.unwrap();
        pages += 1;
        assert!(pages <= expected.len() + 1, "listing does not terminate");
        seen.extend(page.objects.into_iter().map(|m| {
            assert_eq!(m.size, m.key.len() as u64, "size of {}", m.key);
            m.key
        }));
        match page.next {
            Some(token) => next = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every key under the prefix, once, in order");
    assert!(
        pages >= 2,
        "{} objects fit in one page: pagination was not exercised",
        seen.len()
    );

    let all = store.list_all("list/item-00").await.unwrap();
    assert_eq!(all.len(), 10, "prefix is a string prefix, not a directory");
    let everything = store.list_all("").await.unwrap();
    assert_eq!(everything.len(), expected.len() + outside.len());
    report(
        store,
        "paginated_list",
        format!("{} keys in {pages} pages, prefix exact", seen.len()),
    );
}

/// A large object survives a round trip intact.
pub async fn large_object(store: &dyn ObjectStore, profile: &Profile) {
    let len = profile.large_object_bytes;
    // A non-repeating-looking pattern, so a dropped or duplicated chunk changes the bytes.
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect();
    let data = Bytes::from(data);
    let start = Instant::now();
    let meta = store
        .put(
            "big/state.tfstate",
            data.clone(),
            PutOptions::json(PutMode::Overwrite),
        )
        .await
        .unwrap();
    assert_eq!(meta.size, len as u64);
    let got = store.get("big/state.tfstate").await.unwrap();
    assert_eq!(got.body.len(), len);
    assert!(
        got.body == data,
        "large object body differs after a round trip"
    );
    drop(got);
    let streamed = store.get_stream("big/state.tfstate").await.unwrap();
    assert_eq!(streamed.meta.size, len as u64);
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(streamed.body)
        .await
        .unwrap();
    assert!(
        chunks.concat() == data,
        "large object body differs when streamed"
    );
    report(
        store,
        "large_object",
        format!(
            "{} MiB round trip in {:.1?}",
            len / (1024 * 1024),
            start.elapsed()
        ),
    );
}

/// Rounds of racing creators on one key: exactly one winner each round, every loser told
/// `AlreadyExists`, and the stored body is the winner's.
pub async fn racing_creators(store: Arc<dyn ObjectStore>, profile: &Profile) {
    for round in 0..profile.race_rounds {
        let key = format!("race/round-{round}.tflock");
        let racers = (0..profile.racers).map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let result = store
                    .put(
                        &key,
                        body(&format!("racer-{i}")),
                        PutOptions::json(PutMode::Create),
                    )
                    .await;
                (i, result)
            })
        });
        let mut winners = Vec::new();
        let mut refused = 0;
        for joined in join_all(racers).await {
            match joined.expect("racer task panicked") {
                (i, Ok(_)) => winners.push(i),
                (_, Err(StoreError::AlreadyExists { .. })) => refused += 1,
                (i, Err(e)) => panic!("round {round}, racer {i}: unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = store.get(&key).await.unwrap().body;
        assert_eq!(stored, body(&format!("racer-{}", winners[0])));
        report(
            &*store,
            "racing_creators",
            format!(
                "round {}/{}: {} racers, 1 winner (racer {}), {refused} AlreadyExists",
                round + 1,
                profile.race_rounds,
                profile.racers,
                winners[0]
            ),
        );
    }
}

/// Workers increment one counter by compare-and-swap, retrying on `Precondition`; the final
/// value is exactly workers × increments.
///
/// Every write's body is unique (the number, then a token), as statelock's conditional writes
/// are: the S3 adapter settles an ambiguous answer by comparing the stored bytes with its own,
/// which cannot tell two writers' identical bodies apart. A store that answers some swaps
/// under contention with a failure that is neither success nor refusal (Ceph RGW's 500s) has
/// them retried, up to [`Profile::failed_swaps_allowed`] (0 everywhere else): such a swap may
/// have been applied, so its retry may count twice, but an acknowledged increment must never
/// be lost.
pub async fn cas_increments(store: Arc<dyn ObjectStore>, profile: &Profile) {
    let key = "counter";
    let number = |b: &Bytes| -> usize {
        let text = std::str::from_utf8(b).expect("counter is UTF-8");
        text.split(' ')
            .next()
            .unwrap()
            .parse()
            .expect("counter is a number")
    };
    store
        .put(key, body("0"), PutOptions::new(PutMode::Create))
        .await
        .unwrap();
    let workers = (0..profile.cas_workers).map(|worker| {
        let store = store.clone();
        let increments = profile.cas_increments;
        let allowed = profile.failed_swaps_allowed;
        tokio::spawn(async move {
            let (mut conflicts, mut failed) = (0usize, 0usize);
            for i in 0..increments {
                loop {
                    let cur = store.get(key).await.expect("read counter");
                    let next = body(&format!(
                        "{} w{worker}-{i}-{conflicts}-{failed}",
                        number(&cur.body) + 1
                    ));
                    match store
                        .put(
                            key,
                            next,
                            PutOptions::new(PutMode::Update(cur.meta.version)),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Precondition { .. }) => conflicts += 1,
                        Err(StoreError::Other { .. }) if failed < allowed => failed += 1,
                        Err(e) => panic!("unexpected error during CAS: {e}"),
                    }
                }
            }
            (conflicts, failed)
        })
    });
    let (conflicts, failed) = join_all(workers)
        .await
        .into_iter()
        .map(|r| r.expect("worker panicked"))
        .fold((0, 0), |(c, f), (c2, f2)| (c + c2, f + f2));
    let final_value = number(&store.get(key).await.unwrap().body);
    let expected = profile.cas_workers * profile.cas_increments;
    assert!(
        (expected..=expected + failed).contains(&final_value),
        "lost or doubled increments: counter {final_value}, expected {expected} (+ at most {failed} retried after failed answers)"
    );
    let failures = if failed == 0 {
        String::new()
    } else {
        format!(
            "; {failed} answers failed under contention and were retried, {} of them had been applied",
            final_value - expected
        )
    };
    report(
        store.as_ref(),
        "cas_increments",
        format!(
            "{} workers x {} increments = {final_value} ({conflicts} CAS conflicts retried{failures})",
            profile.cas_workers, profile.cas_increments
        ),
    );
}

/// Old versions are listed newest first and readable; a delete leaves a marker. A store
/// without versions answers `NotImplemented`.
pub async fn object_versions(store: &dyn ObjectStore) {
    let key = "history/state";
    for content in ["v1", "v2", "v3"] {
        store
            .put(key, body(content), PutOptions::new(PutMode::Overwrite))
            .await
            .unwrap();
    }
    if !store.capabilities().versions {
        let err = store.list_versions(key).await.unwrap_err();
        assert!(matches!(err, StoreError::NotImplemented { .. }), "{err}");
        report(
            store,
            "object_versions",
            "capability not supported: object versions (NotImplemented)",
        );
        return;
    }
    let versions = store.list_versions(key).await.unwrap();
    assert_eq!(versions.len(), 3, "{versions:?}");
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert!(versions.iter().all(|v| v.key == key && !v.is_delete_marker));
    let oldest = store
        .get_version(key, &versions[2].version_id)
        .await
        .unwrap();
    assert_eq!(oldest.body, body("v1"));
    let newest = store
        .get_version(key, &versions[0].version_id)
        .await
        .unwrap();
    assert_eq!(newest.body, body("v3"));

    store.delete(key, DeleteMode::Unconditional).await.unwrap();
    let after = store.list_versions(key).await.unwrap();
    assert_eq!(after.len(), 4);
    assert!(after[0].is_delete_marker && after[0].is_latest, "{after:?}");
    // The delete-marker rule: a key whose current version is a delete marker can be created.
    store
        .put(key, body("v4"), PutOptions::new(PutMode::Create))
        .await
        .expect("create over a delete marker");
    // Versions of a sibling key with a common prefix are not mixed in.
    store
        .put(
            "history/state-other",
            body("x"),
            PutOptions::new(PutMode::Overwrite),
        )
        .await
        .unwrap();
    assert_eq!(store.list_versions(key).await.unwrap().len(), 5);
    report(
        store,
        "object_versions",
        "3 versions newest first, delete marker, re-create",
    );
}

/// Keys that break the port's rules are refused by every operation, and nothing is written.
pub async fn invalid_keys(store: &dyn ObjectStore) {
    for key in [
        "",
        "/abs",
        "trailing/",
        "a//b",
        "../escape",
        "a/../../b",
        "a/./b",
        "nul\0byte",
    ] {
        let put = store
            .put(key, body("x"), PutOptions::new(PutMode::Overwrite))
            .await;
        assert!(
            matches!(put, Err(StoreError::InvalidKey { .. })),
            "put {key:?}: {put:?}"
        );
        let get = store.get(key).await;
        assert!(
            matches!(get, Err(StoreError::InvalidKey { .. })),
            "get {key:?}"
        );
        let del = store.delete(key, DeleteMode::Unconditional).await;
        assert!(
            matches!(del, Err(StoreError::InvalidKey { .. })),
            "delete {key:?}"
        );
    }
    assert!(
        store.list_all("").await.unwrap().is_empty(),
        "an invalid key wrote something"
    );
    report(
        store,
        "invalid_keys",
        "8 malformed keys refused by put/get/delete, nothing written",
    );
}

/// User metadata is stored with the body by the same put: get and head return exactly what
/// the put carried (a compare-and-swap too), a put without metadata leaves none of the old,
/// a listing carries none, and metadata outside the rules is refused with nothing written.
pub async fn user_metadata(store: &dyn ObjectStore) {
    let key = "meta/terraform.tfstate";
    let pairs = |v: &str| -> Metadata {
        Metadata::from([
            ("statelock-serial".to_owned(), v.to_owned()),
            ("statelock-lineage".to_owned(), "a%20b={x}".to_owned()),
        ])
    };
    let first = store
        .put(
            key,
            body("one"),
            PutOptions::json(PutMode::Create).with_metadata(pairs("1")),
        )
        .await
        .unwrap();
    assert_eq!(store.head(key).await.unwrap().metadata, pairs("1"), "head");
    let got = store.get(key).await.unwrap();
    assert_eq!(
        (got.body, got.meta.metadata),
        (body("one"), pairs("1")),
        "get"
    );
    let second = store
        .put(
            key,
            body("two"),
            PutOptions::json(PutMode::Update(first.version)).with_metadata(pairs("2")),
        )
        .await
        .unwrap();
    let got = store.get(key).await.unwrap();
    assert_eq!(
        (got.body, got.meta.metadata),
        (body("two"), pairs("2")),
        "swap"
    );
    let listed = store.list_all("meta/").await.unwrap();
    assert!(
        listed.iter().all(|m| m.metadata.is_empty()),
        "listings carry no metadata: {listed:?}"
    );
    let bad = Metadata::from([("Not Lower".to_owned(), "v".to_owned())]);
    let err = store
        .put(
            key,
            body("three"),
            PutOptions::json(PutMode::Update(second.version.clone())).with_metadata(bad),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
    let got = store.get(key).await.unwrap();
    assert_eq!(got.body, body("two"), "a refused put changes nothing");
    store
        .put(
            key,
            body("four"),
            PutOptions::json(PutMode::Update(second.version)),
        )
        .await
        .unwrap();
    assert!(
        store.head(key).await.unwrap().metadata.is_empty(),
        "a put without metadata keeps none of the old"
    );
    report(
        store,
        "user_metadata",
        "stored with the body, replaced with it",
    );
}

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh store from `$make`
/// (an `async` expression giving `Arc<dyn ObjectStore>`), with the given [`Profile`]. With
/// `versions = $versioned`, the object-versions check runs on stores from `$versioned`
/// instead (Ceph RGW keeps versions only on versioned buckets, where its conditional writes
/// do not work, so the other checks need unversioned ones).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr, $profile:expr) => {
        $crate::conformance_tests!($make, $profile, versions = __store());
    };
    ($make:expr, $profile:expr, versions = $versioned:expr) => {
        use std::sync::Arc as __Arc;
        use $crate::ObjectStore as __ObjectStore;
        use $crate::conformance as __c;

        async fn __store() -> __Arc<dyn __ObjectStore> {
            $make.await
        }

        async fn __versioned_store() -> __Arc<dyn __ObjectStore> {
            $versioned.await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn missing_objects() {
            __c::missing_objects(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn put_get_overwrite() {
            __c::put_get_overwrite(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn create_conflict() {
            __c::create_conflict(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn compare_and_swap() {
            __c::compare_and_swap(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conditional_delete() {
            __c::conditional_delete(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn paginated_list() {
            __c::paginated_list(&*__store().await, &$profile).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn large_object() {
            __c::large_object(&*__store().await, &$profile).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_creators() {
            __c::racing_creators(__store().await, &$profile).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn cas_increments() {
            __c::cas_increments(__store().await, &$profile).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn object_versions() {
            __c::object_versions(&*__versioned_store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn user_metadata() {
            __c::user_metadata(&*__store().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn invalid_keys() {
            __c::invalid_keys(&*__store().await).await;
        }
    };
}
