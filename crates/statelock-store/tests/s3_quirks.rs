//! Adapter-specific checks beyond the conformance suite, on moto and SeaweedFS: prefixes,
//! ETags and headers as a real AWS SDK (boto3) sees them, failure messages, and known server
//! quirks.

mod s3_common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use statelock_store::{
    DeleteMode, ObjectStore, ObjectStoreExt, PutMode, PutOptions, S3Config, S3Store,
    ServerSideEncryption, StoreError,
};
use statelock_test_support::{
    ACCESS_KEY, REGION, S3Server, SECRET_KEY, free_port, moto, seaweedfs,
};

/// Instantiates an async check `fn(fn() -> &'static S3Server)` once per server.
macro_rules! on_both_servers {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn moto() {
                super::$check(statelock_test_support::moto).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn seaweedfs() {
                super::$check(statelock_test_support::seaweedfs).await;
            }
        }
    )*};
}

on_both_servers!(
    prefix_isolation,
    etag_round_trips_verbatim,
    boto3_sees_our_writes,
    special_keys_round_trip,
);

/// Runs a boto3 script off the async workers.
async fn boto3(server: &'static S3Server, script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        server.boto3(script, &args)
    })
    .await
    .expect("boto3 task panicked")
}

/// Stores on one bucket under different prefixes see only their own keys; an unprefixed
/// store sees them all, under the prefixed names.
async fn prefix_isolation(server: fn() -> &'static S3Server) {
    let (server, bucket) = s3_common::fresh_bucket(server, true).await;
    let base = s3_common::config(server, &bucket);
    let a = S3Store::connect(base.clone().prefix("/team-a/"))
        .await
        .unwrap();
    let b = S3Store::connect(base.clone().prefix("team-b"))
        .await
        .unwrap();
    let root = S3Store::connect(base).await.unwrap();
    assert!(
        a.describe()
            .ends_with(&format!("{bucket}/team-a via {}", server.endpoint))
    );

    for (store, body) in [(&a, "from a"), (&b, "from b")] {
        store
            .put(
                "x.tfstate",
                Bytes::from(body),
                PutOptions::json(PutMode::Create),
            )
            .await
            .unwrap();
    }
    // A key that starts like the prefix but is outside it.
    root.put(
        "team-abc",
        Bytes::from("root"),
        PutOptions::new(PutMode::Overwrite),
    )
    .await
    .unwrap();

    let keys =
        |v: Vec<statelock_store::ObjectMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(keys(a.list_all("").await.unwrap()), ["x.tfstate"]);
    assert_eq!(keys(b.list_all("").await.unwrap()), ["x.tfstate"]);
    assert_eq!(
        keys(root.list_all("").await.unwrap()),
        ["team-a/x.tfstate", "team-abc", "team-b/x.tfstate"]
    );
    assert_eq!(a.get("x.tfstate").await.unwrap().body, "from a");
    assert_eq!(root.get("team-b/x.tfstate").await.unwrap().body, "from b");
    assert_eq!(a.list_versions("x.tfstate").await.unwrap().len(), 1);
    a.delete("x.tfstate", DeleteMode::Unconditional)
        .await
        .unwrap();
    assert!(a.head("x.tfstate").await.unwrap_err().is_not_found());
    assert_eq!(b.get("x.tfstate").await.unwrap().body, "from b");
    eprintln!("s3_quirks[{}] prefix_isolation: ok", server.name);
}

/// The version is the ETag exactly as S3 sends it, quotes included, and works in `If-Match`.
async fn etag_round_trips_verbatim(server: fn() -> &'static S3Server) {
    let (server, bucket) = s3_common::fresh_bucket(server, true).await;
    let store = S3Store::connect(s3_common::config(server, &bucket))
        .await
        .unwrap();
    let meta = store
        .put(
            "e/state",
            Bytes::from("etag me"),
            PutOptions::new(PutMode::Create),
        )
        .await
        .unwrap();
    let etag = boto3(
        server,
        r#"print(s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])["ETag"], end="")"#,
        vec![bucket.clone(), "e/state".into()],
    )
    .await;
    assert_eq!(meta.version.as_str(), etag);
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(store.head("e/state").await.unwrap().version, meta.version);
    let listed = store.list_all("e/").await.unwrap();
    assert_eq!(listed[0].version, meta.version, "listing ETags match too");
    store
        .put(
            "e/state",
            Bytes::from("next"),
            PutOptions::new(PutMode::Update(meta.version)),
        )
        .await
        .expect("If-Match with the verbatim ETag");
    eprintln!(
        "s3_quirks[{}] etag_round_trips_verbatim: {etag}",
        server.name
    );
}

/// A bucket created by boto3 sees our objects with the content type and the SHA-256 checksum
/// we sent.
async fn boto3_sees_our_writes(server: fn() -> &'static S3Server) {
    let (server, bucket) = s3_common::fresh_bucket(server, false).await;
    let store = S3Store::connect(s3_common::config(server, &bucket))
        .await
        .unwrap();
    let body = r#"{"ID":"5d109c26-30ce-86f3-fc6f-336cd8db7a28","Operation":"OperationTypeApply"}"#;
    store
        .put(
            "env:/dev/app.tfstate.tflock",
            Bytes::from(body),
            PutOptions::json(PutMode::Create),
        )
        .await
        .unwrap();
    let seen = boto3(
        server,
        r#"
r = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2], ChecksumMode="ENABLED")
print(json.dumps({"type": r["ContentType"], "sha256": r.get("ChecksumSHA256"), "body": r["Body"].read().decode()}))
"#,
        vec![bucket.clone(), "env:/dev/app.tfstate.tflock".into()],
    )
    .await;
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["type"], "application/json");
    assert_eq!(seen["body"], body);
    let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    assert_eq!(
        seen["sha256"].as_str(),
        Some(expected.as_str()),
        "the server kept the x-amz-checksum-sha256 we sent"
    );
    eprintln!(
        "s3_quirks[{}] boto3_sees_our_writes: content type and SHA-256 {expected} as sent",
        server.name
    );
}

/// Workspace-style and unusual keys survive put, get and listing unchanged.
async fn special_keys_round_trip(server: fn() -> &'static S3Server) {
    let store = s3_common::fresh_store(server).await;
    let keys = [
        "env:/dev/app.tfstate",
        "env:/dev/app.tfstate.tflock",
        "with space/a+b=c&d?.tfstate",
        "ünïcödé/☃.tfstate",
        "percent%2Fencoded",
    ];
    for key in keys {
        store
            .put(key, Bytes::from(key), PutOptions::new(PutMode::Create))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(store.get(key).await.unwrap().body, key.as_bytes());
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort();
    let listed: Vec<String> = store
        .list_all("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, expected);
    eprintln!(
        "s3_quirks[{}] special_keys_round_trip: {} keys",
        server().name,
        keys.len()
    );
}

/// A closed port fails fast, as `Other`, naming the endpoint and the refusal; a conditional
/// put (no SDK retries, then a settling re-read) fails the same way.
#[tokio::test]
async fn unreachable_endpoint_fails_fast_and_precisely() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let store = S3Store::connect(
        S3Config::new("nowhere")
            .endpoint(endpoint.clone())
            .path_style(true)
            .region(REGION)
            .static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let err = store.get("a/state").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Other { .. }), "{text}");
    assert!(text.contains(&endpoint), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    let err = store
        .put(
            "a/state.tflock",
            Bytes::from("x"),
            PutOptions::json(PutMode::Create),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    eprintln!("s3_quirks unreachable: {text} ({:.1?})", start.elapsed());
}

/// SSE-S3 headers are sent on every put (moto records them; SeaweedFS is not asked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_is_requested_on_puts() {
    let (server, bucket) = s3_common::fresh_bucket(moto, false).await;
    let store = S3Store::connect(s3_common::config(server, &bucket).sse(ServerSideEncryption::S3))
        .await
        .unwrap();
    for mode in [PutMode::Create, PutMode::Overwrite] {
        store
            .put("enc", Bytes::from("secret"), PutOptions::new(mode))
            .await
            .unwrap();
    }
    let sse = boto3(
        server,
        r#"print(s3.head_object(Bucket=sys.argv[1], Key="enc").get("ServerSideEncryption"), end="")"#,
        vec![bucket],
    )
    .await;
    assert_eq!(sse, "AES256");
}

/// On an unversioned bucket, S3 lists the current object as the one version, with ID "null".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unversioned_bucket_lists_the_null_version() {
    let (server, bucket) = s3_common::fresh_bucket(moto, false).await;
    let store = S3Store::connect(s3_common::config(server, &bucket))
        .await
        .unwrap();
    for body in ["1", "2"] {
        store
            .put("k", Bytes::from(body), PutOptions::new(PutMode::Overwrite))
            .await
            .unwrap();
    }
    let versions = store.list_versions("k").await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].version_id, "null");
    assert!(versions[0].is_latest);
    assert_eq!(store.get_version("k", "null").await.unwrap().body, "2");
}

/// With conditional deletes switched off, `IfVersion` is refused, not made unconditional.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_can_be_switched_off() {
    let (server, bucket) = s3_common::fresh_bucket(moto, false).await;
    let store = S3Store::connect(s3_common::config(server, &bucket).conditional_delete(false))
        .await
        .unwrap();
    assert!(!store.capabilities().conditional_delete);
    let v = store
        .put("k", Bytes::from("x"), PutOptions::new(PutMode::Create))
        .await
        .unwrap()
        .version;
    let err = store
        .delete("k", DeleteMode::IfVersion(v))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotImplemented { .. }), "{err}");
    assert!(store.head("k").await.is_ok(), "nothing was deleted");
}

/// SeaweedFS 4.48, versioned bucket: an object `q` that is also the parent of `q/...` keys is
/// dropped by a paginated listing whose page boundary falls among those keys (single-page
/// listings show it). If this starts failing, SeaweedFS fixed it: run the conformance
/// `paginated_list` on a versioned bucket again (see `s3_seaweedfs.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_versioned_pagination_quirk() {
    let (server, bucket) = s3_common::fresh_bucket(seaweedfs, true).await;
    let config = s3_common::config(server, &bucket);
    let paged = S3Store::connect(config.clone().list_page_size(2))
        .await
        .unwrap();
    let single = S3Store::connect(config.list_page_size(1000)).await.unwrap();
    for key in ["q", "q/1", "q/2", "q/3"] {
        paged
            .put(key, Bytes::from(key), PutOptions::new(PutMode::Overwrite))
            .await
            .unwrap();
    }
    let keys =
        |v: Vec<statelock_store::ObjectMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(
        keys(single.list_all("").await.unwrap()),
        ["q", "q/1", "q/2", "q/3"]
    );
    assert_eq!(
        keys(paged.list_all("").await.unwrap()),
        ["q/1", "q/2", "q/3"],
        "SeaweedFS's paginated versioned listing changed"
    );
}
