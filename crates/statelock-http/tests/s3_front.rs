//! The S3 front end to end: a real listener on 127.0.0.1 serving `statelock_http::s3`, driven
//! by the real `aws-sdk-s3` client (and, for the exact aws-chunked form Terraform sends over
//! HTTPS, by a hand-written HTTP/1.1 request), over a memory store. The multipart tests at the
//! end upload 12 MiB states in 5 MiB parts, as Terraform's upload manager does.

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use statelock_core::{LockInfo, Timestamp};
use statelock_http::s3::{S3Front, s3_service};
use statelock_http::{AppState, HttpConfig};
use statelock_store::{MemoryStore, ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BUCKET: &str = "tfstate";
const KEY: &str = "env/prod/terraform.tfstate";
const LOCK: &str = "env/prod/terraform.tfstate.tflock";
const MAX_STATE: usize = 16 * 1024;

struct Server {
    client: Client,
    store: Arc<dyn ObjectStore>,
    addr: std::net::SocketAddr,
}

async fn serve(front: S3Front) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let front = front.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), front)
                    .await;
            });
        }
    });
    addr
}

fn app() -> (AppState, Arc<dyn ObjectStore>) {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    let mut config = HttpConfig::new(BUCKET);
    config.max_state_size = MAX_STATE;
    (AppState::new(store.clone(), config), store)
}

fn client(addr: std::net::SocketAddr, access_key: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// The open front (no principals): any credentials are accepted.
async fn open_server() -> Server {
    let (app, store) = app();
    let addr = serve(s3_service(app)).await;
    Server {
        client: client(addr, "any-key", "any-secret"),
        store,
        addr,
    }
}

/// A state with content (an output), so the stale-write guard compares serials.
fn state(serial: u64, lineage: &str) -> String {
    format!(
        r#"{{"version":4,"terraform_version":"1.15.5","serial":{serial},"lineage":"{lineage}","outputs":{{"n":{{"value":{serial},"type":"number"}}}},"resources":[]}}"#
    )
}

fn record(id: &str, who: &str) -> LockInfo {
    LockInfo {
        id: id.to_owned(),
        operation: "OperationTypeApply".to_owned(),
        info: String::new(),
        who: who.to_owned(),
        version: "1.15.5".to_owned(),
        created: Timestamp::now(),
        path: format!("{BUCKET}/env/prod/terraform.tfstate"),
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    e.code().unwrap_or("<no code>").to_owned()
}

fn message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    e.message().unwrap_or("").to_owned()
}

fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> u16 {
    e.raw_response().map_or(0, HttpStatus::status)
}

trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl Server {
    async fn put(&self, key: &str, body: &str) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}: {}", code(&e), message(&e)))
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), (u16, String, String)> {
        self.client
            .put_object()
            .bucket(BUCKET)
            .key(LOCK)
            .if_none_match("*")
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(info.encode().into_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| (status(&e), code(&e), message(&e)))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        match self
            .client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out.body.collect().await.unwrap().to_vec()),
            Err(e) => Err(code(&e)),
        }
    }

    async fn stored(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .get_if_exists(key)
            .await
            .unwrap()
            .map(|f| f.body.to_vec())
    }
}

#[tokio::test]
async fn state_put_get_head_and_ranged_get() {
    let s = open_server().await;
    let body = state(1, "L");
    s.put(KEY, &body).await.unwrap();
    assert_eq!(s.get(KEY).await.unwrap(), body.as_bytes());

    let head = s
        .client
        .head_object()
        .bucket(BUCKET)
        .key(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("application/json"));
    let md5 = format!("\"{:x}\"", md5::Md5::digest(body.as_bytes()));
    assert_eq!(head.e_tag(), Some(md5.as_str()), "ETag is the quoted MD5");
    assert!(head.last_modified().is_some());

    // Terraform's downloader: 5 MiB parts, so one ranged GET past the end of a small state.
    let whole = s
        .client
        .get_object()
        .bucket(BUCKET)
        .key(KEY)
        .range("bytes=0-5242879")
        .send()
        .await
        .unwrap();
    let expected_range = format!("bytes 0-{}/{}", body.len() - 1, body.len());
    assert_eq!(whole.content_range(), Some(expected_range.as_str()));
    assert_eq!(
        whole.body.collect().await.unwrap().to_vec(),
        body.as_bytes()
    );

    let part = s
        .client
        .get_object()
        .bucket(BUCKET)
        .key(KEY)
        .range("bytes=2-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_length(), Some(8));
    let expected_range = format!("bytes 2-9/{}", body.len());
    assert_eq!(part.content_range(), Some(expected_range.as_str()));
    assert_eq!(
        part.body.collect().await.unwrap().to_vec(),
        &body.as_bytes()[2..10]
    );

    let beyond = s
        .client
        .get_object()
        .bucket(BUCKET)
        .key(KEY)
        .range(format!("bytes={}-", body.len() + 10))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&beyond), "InvalidRange");
    assert_eq!(status(&beyond), 416);

    // A delete removes it; a second delete of nothing is still success, as on S3.
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(s.get(KEY).await.unwrap_err(), "NoSuchKey");
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(KEY)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_keys_and_other_buckets() {
    let s = open_server().await;
    assert_eq!(
        s.get("nothing/here.tfstate").await.unwrap_err(),
        "NoSuchKey"
    );
    let head = s
        .client
        .head_object()
        .bucket(BUCKET)
        .key("nothing/here.tfstate")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&head), 404);
    assert!(head.into_service_error().is_not_found());

    let other = s
        .client
        .get_object()
        .bucket("other-bucket")
        .key(KEY)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&other), "NoSuchBucket");
    let listed = s
        .client
        .list_objects_v2()
        .bucket("other-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&listed), "NoSuchBucket");
    s.client.head_bucket().bucket(BUCKET).send().await.unwrap();
    let head_other = s
        .client
        .head_bucket()
        .bucket("other-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&head_other), 404);
}

#[tokio::test]
async fn listing_with_prefix_delimiter_and_pages_hides_statelock_objects() {
    let s = open_server().await;
    for key in [
        "env:/dev/app.tfstate",
        "env:/prod/app.tfstate",
        "env:/prod/db.tfstate",
        "app.tfstate",
    ] {
        s.put(key, &state(1, key)).await.unwrap();
    }
    // Every write kept a history version under .statelock/.
    assert!(
        !s.store.list_all(".statelock/").await.unwrap().is_empty(),
        "the history exists in the store"
    );

    let ws = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("env:/")
        .max_keys(1000)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = ws.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        [
            "env:/dev/app.tfstate",
            "env:/prod/app.tfstate",
            "env:/prod/db.tfstate"
        ]
    );
    assert_eq!(ws.key_count(), Some(3));
    assert_eq!(ws.is_truncated(), Some(false));

    let grouped = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("env:/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = grouped
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["env:/dev/", "env:/prod/"]);
    assert!(grouped.contents().is_empty());

    // The whole bucket, with and without a delimiter: no .statelock/ key or prefix.
    let all = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.starts_with(".statelock")),
        "{keys:?}"
    );
    let top = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["env:/"]);
    let keys: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["app.tfstate"]);

    // Pages of one, by continuation token.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = s
            .client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix("env:/")
            .max_keys(1)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            assert_eq!(page.is_truncated(), Some(false));
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "env:/dev/app.tfstate",
            "env:/prod/app.tfstate",
            "env:/prod/db.tfstate"
        ]
    );
    let after = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("env:/")
        .start_after("env:/dev/app.tfstate")
        .send()
        .await
        .unwrap();
    assert_eq!(after.contents().len(), 2);

    // ListObjects v1 (Terraform ≤ 1.5) with a marker.
    let v1 = s
        .client
        .list_objects()
        .bucket(BUCKET)
        .prefix("env:/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.contents().len(), 2);
    assert_eq!(v1.is_truncated(), Some(true));
    assert_eq!(v1.next_marker(), Some("env:/prod/app.tfstate"));
    let v1_next = s
        .client
        .list_objects()
        .bucket(BUCKET)
        .prefix("env:/")
        .marker("env:/prod/app.tfstate")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = v1_next.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["env:/prod/db.tfstate"]);
}

#[tokio::test]
async fn lock_create_conflict_own_lock_and_delete() {
    let s = open_server().await;
    let alice = record("5d109c26-30ce-86f3-fc6f-336cd8db7a28", "alice@ci-1");
    let bob = record("0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f", "bob@laptop");

    s.lock(&alice).await.unwrap();
    let stored = LockInfo::decode(&s.get(LOCK).await.unwrap()).unwrap();
    assert_eq!(stored.id, alice.id);
    assert_eq!(stored.path, format!("{BUCKET}/env/prod/terraform.tfstate"));

    let (status, refusal, message) = s.lock(&bob).await.unwrap_err();
    assert_eq!((status, refusal.as_str()), (412, "PreconditionFailed"));
    assert!(
        message.contains("alice@ci-1") && message.contains(&alice.id),
        "the refusal names the holder: {message}"
    );
    let still = LockInfo::decode(&s.stored(LOCK).await.unwrap()).unwrap();
    assert_eq!(still.id, alice.id, "the holder's lock is untouched");

    // An SDK retry of a create that landed: the same ID again is success (spec §2.4).
    s.lock(&alice).await.unwrap();

    // While locked, the holder's state write goes through (S3 carries no lock ID).
    s.put(KEY, &state(1, "L")).await.unwrap();

    // Terraform's unlock: GET the lock, compare the ID itself, plain DELETE.
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(LOCK)
        .send()
        .await
        .unwrap();
    assert_eq!(s.get(LOCK).await.unwrap_err(), "NoSuchKey");
    assert!(s.stored(LOCK).await.is_none());
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(LOCK)
        .send()
        .await
        .unwrap();

    // Free again: bob gets it now.
    s.lock(&bob).await.unwrap();

    let garbage = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key("other/x.tfstate.tflock")
        .if_none_match("*")
        .body(ByteStream::from_static(b"not a lock record"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&garbage), "InvalidArgument");
    assert!(s.stored("other/x.tfstate.tflock").await.is_none());
}

#[tokio::test]
async fn stale_state_and_failed_preconditions_change_nothing() {
    let s = open_server().await;
    let current = state(5, "L");
    s.put(KEY, &current).await.unwrap();

    let older = s.put(KEY, &state(4, "L")).await.unwrap_err();
    assert!(older.starts_with("PreconditionFailed"), "{older}");
    assert!(older.contains("serial"), "the reason is given: {older}");
    assert_eq!(s.stored(KEY).await.unwrap(), current.as_bytes());

    let unrelated = s.put(KEY, &state(9, "OTHER")).await.unwrap_err();
    assert!(unrelated.starts_with("PreconditionFailed"), "{unrelated}");
    assert_eq!(s.stored(KEY).await.unwrap(), current.as_bytes());

    let exists = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .if_none_match("*")
        .body(ByteStream::from(state(6, "L").into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&exists), "PreconditionFailed");

    let wrong_etag = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .if_match("\"0123456789abcdef0123456789abcdef\"")
        .body(ByteStream::from(state(6, "L").into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong_etag), "PreconditionFailed");
    assert_eq!(s.stored(KEY).await.unwrap(), current.as_bytes());

    let etag = format!("\"{:x}\"", md5::Md5::digest(current.as_bytes()));
    s.client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .if_match(etag)
        .body(ByteStream::from(state(6, "L").into_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(s.stored(KEY).await.unwrap(), state(6, "L").as_bytes());

    let not_state = s.put(KEY, "[1,2,3]").await.unwrap_err();
    assert!(not_state.starts_with("InvalidArgument"), "{not_state}");
}

/// statelock's own S3 adapter releases a lock with `If-Match` on the ETag it read: a lock
/// that changed since is left alone (412), the one read is removed.
#[tokio::test]
async fn a_lock_delete_with_if_match_removes_only_the_lock_read() {
    let s = open_server().await;
    let alice = record("5d109c26-30ce-86f3-fc6f-336cd8db7a28", "alice@ci-1");
    s.lock(&alice).await.unwrap();
    let listed = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(LOCK)
        .send()
        .await
        .unwrap();
    let head = s
        .client
        .head_object()
        .bucket(BUCKET)
        .key(LOCK)
        .send()
        .await
        .unwrap();
    let read = head.e_tag().unwrap().to_owned();
    assert_eq!(
        listed.contents()[0].e_tag(),
        Some(read.as_str()),
        "a listing carries the ETag a HEAD gives"
    );

    let stale = s
        .client
        .delete_object()
        .bucket(BUCKET)
        .key(LOCK)
        .if_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (status(&stale), code(&stale).as_str()),
        (412, "PreconditionFailed")
    );
    assert!(s.stored(LOCK).await.is_some(), "nothing was deleted");

    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(LOCK)
        .if_match(&read)
        .send()
        .await
        .unwrap();
    assert!(s.stored(LOCK).await.is_none());
}

/// `statelock probe` pointed at the front works on `.statelock/probe/…`: plain objects with
/// S3's conditional writes, listed under their prefix only; the rest of `.statelock/` stays
/// unreachable.
#[tokio::test]
async fn probe_scratch_objects_have_s3_conditional_semantics() {
    let s = open_server().await;
    let k = ".statelock/probe/0a1b/race-1.tflock";
    let create = |body: &'static [u8]| {
        s.client
            .put_object()
            .bucket(BUCKET)
            .key(k)
            .if_none_match("*")
            .body(ByteStream::from_static(body))
            .send()
    };
    let first = create(b"first").await.unwrap();
    let second = create(b"second").await.unwrap_err();
    assert_eq!(
        (status(&second), code(&second).as_str()),
        (412, "PreconditionFailed")
    );
    assert_eq!(s.stored(k).await.unwrap(), b"first");
    let swap = |tag: String, body: &'static [u8]| {
        s.client
            .put_object()
            .bucket(BUCKET)
            .key(k)
            .if_match(tag)
            .body(ByteStream::from_static(body))
            .send()
    };
    let stale = swap("\"00\"".to_owned(), b"x").await.unwrap_err();
    assert_eq!(code(&stale), "PreconditionFailed");
    swap(first.e_tag().unwrap().to_owned(), b"swapped")
        .await
        .unwrap();
    assert_eq!(s.get(k).await.unwrap(), b"swapped");

    let listed = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(".statelock/probe/0a1b/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [k]);
    let everything = s
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(everything.contents().is_empty(), "{everything:?}");

    let gone = s
        .client
        .delete_object()
        .bucket(BUCKET)
        .key(k)
        .if_match(first.e_tag().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "PreconditionFailed");
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(k)
        .send()
        .await
        .unwrap();
    assert!(s.stored(k).await.is_none());
    let multipart = s
        .client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(k)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&multipart), "InvalidRequest");
}

#[tokio::test]
async fn statelock_keys_and_bad_keys_are_unreachable() {
    let s = open_server().await;
    s.put(KEY, &state(1, "L")).await.unwrap();
    let history = s.store.list_all(".statelock/history/").await.unwrap();
    let version = &history.first().expect("a history version").key;

    let read = s
        .client
        .get_object()
        .bucket(BUCKET)
        .key(version)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&read), "AccessDenied");

    let written = s.put(".statelock/history/evil.json", &state(1, "L")).await;
    assert!(written.unwrap_err().starts_with("AccessDenied"));
    assert!(s.stored(".statelock/history/evil.json").await.is_none());
    let deleted = s
        .client
        .delete_object()
        .bucket(BUCKET)
        .key(version)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&deleted), "AccessDenied");
    assert!(s.stored(version).await.is_some());

    for bad in ["a/../b.tfstate", "a//b.tfstate"] {
        let refused = s.put(bad, &state(1, "L")).await.unwrap_err();
        assert!(refused.starts_with("InvalidArgument"), "{bad}: {refused}");
    }
}

#[tokio::test]
async fn wrong_checksums_and_oversized_bodies_are_refused_before_writing() {
    let s = open_server().await;
    let body = state(1, "L");
    let wrong = STANDARD.encode(Sha256::digest(b"something else"));
    let refused = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .checksum_sha256(wrong)
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "BadDigest", "{}", message(&refused));
    assert!(s.stored(KEY).await.is_none());

    let right = STANDARD.encode(Sha256::digest(body.as_bytes()));
    s.client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .checksum_sha256(right)
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap();

    let bad_crc = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key("crc/x.tfstate")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_crc), "BadDigest");
    let bad_md5 = s
        .client
        .put_object()
        .bucket(BUCKET)
        .key("crc/x.tfstate")
        .content_md5(STANDARD.encode([0u8; 16]))
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_md5), "BadDigest");
    assert!(s.stored("crc/x.tfstate").await.is_none());

    let padding = " ".repeat(MAX_STATE);
    let big = format!("{}{padding}", &body[..body.len() - 1]) + "}";
    let too_large = s.put("big/x.tfstate", &big).await.unwrap_err();
    assert!(too_large.starts_with("EntityTooLarge"), "{too_large}");
    assert!(s.stored("big/x.tfstate").await.is_none());
}

/// One raw HTTP/1.1 request to the server; returns the status and the body.
async fn raw_request(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply[9..12].parse().unwrap();
    (status, reply)
}

/// Terraform 1.15.5 over HTTPS: STREAMING-UNSIGNED-PAYLOAD-TRAILER, aws-chunked body, the
/// SHA-256 in a trailer (spec: terraform-1.15-s3-wire.md), here over plain TCP.
async fn chunked_put(
    addr: std::net::SocketAddr,
    key: &str,
    data: &[u8],
    trailer_sha: &str,
) -> (u16, String) {
    chunked_put_to(addr, &format!("{key}?x-id=PutObject"), data, trailer_sha).await
}

/// [`chunked_put`] to `target` (`<key>?<query>`), e.g. an UploadPart.
async fn chunked_put_to(
    addr: std::net::SocketAddr,
    target: &str,
    data: &[u8],
    trailer_sha: &str,
) -> (u16, String) {
    let mut body = Vec::new();
    body.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n0\r\n");
    body.extend_from_slice(format!("x-amz-checksum-sha256:{trailer_sha}\r\n\r\n").as_bytes());
    let date = "20261201T120000Z";
    let head = format!(
        "PUT /{BUCKET}/{target} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000\r\n\
         X-Amz-Date: {date}\r\n\
         Content-Encoding: aws-chunked\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         If-None-Match: *\r\n\
         X-Amz-Content-Sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n\
         X-Amz-Decoded-Content-Length: {}\r\n\
         X-Amz-Sdk-Checksum-Algorithm: SHA256\r\n\
         X-Amz-Trailer: x-amz-checksum-sha256\r\n\
         Connection: close\r\n\r\n",
        body.len(),
        data.len()
    );
    raw_request(addr, &head, &body).await
}

#[tokio::test]
async fn terraform_https_form_aws_chunked_with_trailing_checksum() {
    let s = open_server().await;
    let info = record("fcd4d7bc-0000-1111-2222-333344445555", "tf@host");
    let data = info.encode().into_bytes();
    let sha = STANDARD.encode(Sha256::digest(&data));

    let wrong = STANDARD.encode(Sha256::digest(b"x"));
    let (status, reply) = chunked_put(s.addr, LOCK, &data, &wrong).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("BadDigest"), "{reply}");
    assert!(s.stored(LOCK).await.is_none(), "nothing written");

    let (status, reply) = chunked_put(s.addr, LOCK, &data, &sha).await;
    assert_eq!(status, 200, "{reply}");
    let stored = LockInfo::decode(&s.stored(LOCK).await.unwrap()).unwrap();
    assert_eq!(stored.id, info.id);

    let body = state(3, "L");
    let sha = STANDARD.encode(Sha256::digest(body.as_bytes()));
    let (status, reply) = chunked_put(s.addr, KEY, body.as_bytes(), &sha).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.stored(KEY).await.unwrap(), body.as_bytes());

    // The Rust SDK's form of a streaming body: signed chunks (chunk-signature extensions the
    // open front cannot check) and a signed trailer.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let next = state(4, "L");
    std::fs::write(&file, &next).unwrap();
    s.client
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(s.stored(KEY).await.unwrap(), next.as_bytes());
}

#[tokio::test]
async fn with_credentials_signatures_are_checked_by_s3s() {
    let (app, store) = app();
    let addr = serve(S3Front::with_credentials(app, "AKIDSTATELOCK", "s3cr3t")).await;
    let good = client(addr, "AKIDSTATELOCK", "s3cr3t");
    let body = state(1, "L");
    good.put_object()
        .bucket(BUCKET)
        .key(KEY)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get(KEY).await.unwrap().body.to_vec(), body.as_bytes());

    // A streaming body: the SDK sends aws-chunked with a trailing checksum, s3s decodes it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let next = state(2, "L");
    std::fs::write(&file, &next).unwrap();
    good.put_object()
        .bucket(BUCKET)
        .key(KEY)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(store.get(KEY).await.unwrap().body.to_vec(), next.as_bytes());

    let bad = client(addr, "AKIDSTATELOCK", "wrong");
    let refused = bad
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .body(ByteStream::from(state(3, "L").into_bytes()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "SignatureDoesNotMatch");
    assert_eq!(store.get(KEY).await.unwrap().body.to_vec(), next.as_bytes());
}

// Multipart uploads: Terraform's upload manager sends states above 5 MiB in 5 MiB parts.

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;
/// The state limit of the multipart tests: room for a 12 MiB state.
const MAX_BIG_STATE: usize = 32 * MIB;

async fn server_with_limit(max_state_size: usize) -> Server {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    let mut config = HttpConfig::new(BUCKET);
    config.max_state_size = max_state_size;
    let addr = serve(s3_service(AppState::new(store.clone(), config))).await;
    Server {
        client: client(addr, "any-key", "any-secret"),
        store,
        addr,
    }
}

/// A valid state of about `size` bytes: a big output string, varied so that parts differ.
fn big_state(serial: u64, lineage: &str, size: usize) -> String {
    let pattern = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    let mut value = String::with_capacity(size + pattern.len());
    let mut i = serial as usize;
    while value.len() < size {
        value.push_str(&pattern[i % pattern.len()..]);
        value.push_str(&pattern[..i % pattern.len()]);
        i += 7;
    }
    value.truncate(size);
    format!(
        r#"{{"version":4,"terraform_version":"1.15.5","serial":{serial},"lineage":"{lineage}","outputs":{{"big":{{"value":"{value}","type":"string"}}}},"resources":[]}}"#
    )
}

/// The multipart ETag S3 gives: MD5 of the parts' binary MD5s, `-<parts>`, quoted.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut digests = Vec::new();
    for part in parts {
        digests.extend_from_slice(&md5::Md5::digest(part));
    }
    format!("\"{:x}-{}\"", md5::Md5::digest(&digests), parts.len())
}

type Completed = aws_sdk_s3::types::CompletedPart;

impl Server {
    async fn create_upload(&self, key: &str) -> String {
        self.client
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .send()
            .await
            .unwrap()
            .upload_id()
            .expect("an upload ID")
            .to_owned()
    }

    /// Uploads `body` in `part`-byte parts with SHA-256 checksums; returns what Complete lists.
    async fn upload_parts(&self, key: &str, id: &str, body: &[u8], part: usize) -> Vec<Completed> {
        let mut completed = Vec::new();
        for (i, chunk) in body.chunks(part).enumerate() {
            let number = i as i32 + 1;
            let out = self
                .client
                .upload_part()
                .bucket(BUCKET)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .checksum_sha256(STANDARD.encode(Sha256::digest(chunk)))
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            let etag = format!("\"{:x}\"", md5::Md5::digest(chunk));
            assert_eq!(out.e_tag(), Some(etag.as_str()), "part {number}'s ETag");
            assert_eq!(
                out.checksum_sha256(),
                Some(STANDARD.encode(Sha256::digest(chunk)).as_str())
            );
            completed.push(
                Completed::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .checksum_sha256(out.checksum_sha256().unwrap())
                    .build(),
            );
        }
        completed
    }

    async fn complete(
        &self,
        key: &str,
        id: &str,
        parts: Vec<Completed>,
    ) -> Result<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
        (u16, String, String),
    > {
        self.client
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| (status(&e), code(&e), message(&e)))
    }

    /// Create, upload in `part`-byte parts, complete.
    async fn multipart_put(
        &self,
        key: &str,
        body: &[u8],
        part: usize,
    ) -> Result<String, (u16, String, String)> {
        let id = self.create_upload(key).await;
        let parts = self.upload_parts(key, &id, body, part).await;
        self.complete(key, &id, parts)
            .await
            .map(|out| out.e_tag().unwrap_or_default().to_owned())
    }

    async fn open_upload_objects(&self) -> Vec<String> {
        self.store
            .list_all(".statelock/uploads/")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect()
    }
}

#[tokio::test]
async fn multipart_12_mib_state_is_one_state_write_read_back_exactly() {
    let s = server_with_limit(MAX_BIG_STATE).await;
    let first = big_state(1, "L", 12 * MIB);
    let parts: Vec<&[u8]> = first.as_bytes().chunks(PART).collect();
    assert_eq!(parts.len(), 3);

    // ListParts sees the parts while the upload is open; the state does not exist yet.
    let id = s.create_upload(KEY).await;
    let completed = s.upload_parts(KEY, &id, first.as_bytes(), PART).await;
    let listed = s
        .client
        .list_parts()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let sizes: Vec<i64> = listed.parts().iter().map(|p| p.size().unwrap()).collect();
    assert_eq!(
        sizes,
        [PART as i64, PART as i64, (first.len() - 2 * PART) as i64]
    );
    assert_eq!(listed.parts()[1].e_tag(), completed[1].e_tag());
    assert!(
        s.stored(KEY).await.is_none(),
        "nothing is written before Complete"
    );

    let out = s.complete(KEY, &id, completed).await.unwrap();
    assert_eq!(out.e_tag(), Some(multipart_etag(&parts).as_str()));
    assert!(
        out.checksum_sha256().is_some_and(|c| c.ends_with("-3")),
        "the composite checksum: {:?}",
        out.checksum_sha256()
    );
    assert_eq!(s.get(KEY).await.unwrap(), first.as_bytes(), "byte for byte");
    assert!(
        s.open_upload_objects().await.is_empty(),
        "the parts are removed"
    );

    // The next serial on the same lineage goes through the guard like a PutObject.
    let second = big_state(2, "L", 12 * MIB);
    let parts: Vec<&[u8]> = second.as_bytes().chunks(PART).collect();
    let tag = s.multipart_put(KEY, second.as_bytes(), PART).await.unwrap();
    assert_eq!(tag, multipart_etag(&parts));
    assert_eq!(s.get(KEY).await.unwrap(), second.as_bytes());
    let history: Vec<String> = s
        .store
        .list_all(".statelock/history/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .filter(|k| k.ends_with(".tfstate"))
        .collect();
    assert_eq!(
        history.len(),
        2,
        "each Complete is one history version: {history:?}"
    );
    assert!(s.open_upload_objects().await.is_empty());
}

#[tokio::test]
async fn multipart_wrong_parts_are_refused_and_nothing_is_written() {
    let s = server_with_limit(MAX_BIG_STATE).await;
    let body = big_state(1, "L", 12 * MIB);
    let id = s.create_upload(KEY).await;
    let parts = s.upload_parts(KEY, &id, body.as_bytes(), PART).await;

    let mut wrong_etag = parts.clone();
    wrong_etag[1] = Completed::builder()
        .part_number(2)
        .e_tag("\"0123456789abcdef0123456789abcdef\"")
        .build();
    let (status, got, why) = s.complete(KEY, &id, wrong_etag).await.unwrap_err();
    assert_eq!((status, got.as_str()), (400, "InvalidPart"), "{why}");
    assert!(s.stored(KEY).await.is_none(), "nothing written");

    let mut wrong_checksum = parts.clone();
    wrong_checksum[0] = Completed::builder()
        .part_number(1)
        .e_tag(parts[0].e_tag().unwrap())
        .checksum_sha256(STANDARD.encode(Sha256::digest(b"other")))
        .build();
    let (_, got, _) = s.complete(KEY, &id, wrong_checksum).await.unwrap_err();
    assert_eq!(got, "InvalidPart");

    let reversed: Vec<Completed> = parts.iter().rev().cloned().collect();
    let (_, got, _) = s.complete(KEY, &id, reversed).await.unwrap_err();
    assert_eq!(got, "InvalidPartOrder");

    let missing = vec![
        parts[0].clone(),
        Completed::builder().part_number(7).e_tag("\"00\"").build(),
    ];
    let (_, got, _) = s.complete(KEY, &id, missing).await.unwrap_err();
    assert_eq!(got, "InvalidPart");
    assert!(s.stored(KEY).await.is_none(), "nothing written");

    // A part with a wrong checksum is refused as a PutObject body would be.
    let refused = s
        .client
        .upload_part()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .part_number(4)
        .checksum_sha256(STANDARD.encode(Sha256::digest(b"other")))
        .body(ByteStream::from_static(b"tail"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "BadDigest", "{}", message(&refused));

    // Every part but the last must be 5 MiB: a small first part is refused at Complete.
    let small = s.create_upload(KEY).await;
    let small_parts = s.upload_parts(KEY, &small, body.as_bytes(), 4 * MIB).await;
    let (_, got, why) = s.complete(KEY, &small, small_parts).await.unwrap_err();
    assert_eq!(got, "EntityTooSmall", "{why}");

    // The first upload is still open after its refusals, and completes.
    s.complete(KEY, &id, parts).await.unwrap();
    assert_eq!(s.stored(KEY).await.unwrap(), body.as_bytes());

    // Malformed XML is s3s's answer.
    let junk = b"<CompleteMultipartUpload><Part>";
    let head = format!(
        "POST /{BUCKET}/{KEY}?uploadId={small} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        junk.len()
    );
    let (status, reply) = raw_request(s.addr, &head, junk).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("MalformedXML"), "{reply}");
}

#[tokio::test]
async fn multipart_abort_removes_the_parts() {
    let s = server_with_limit(MAX_BIG_STATE).await;
    let body = big_state(1, "L", 7 * MIB);
    let id = s.create_upload(KEY).await;
    s.upload_parts(KEY, &id, body.as_bytes(), PART).await;
    assert_eq!(
        s.open_upload_objects().await.len(),
        3,
        "the manifest and two parts"
    );
    s.client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        s.open_upload_objects().await.is_empty(),
        "nothing left under .statelock/uploads/"
    );
    assert!(s.stored(KEY).await.is_none());

    let again = s
        .client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&again), "NoSuchUpload");
    let part = s
        .client
        .upload_part()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&part), "NoSuchUpload");
    assert!(s.open_upload_objects().await.is_empty());
}

#[tokio::test]
async fn multipart_stale_serial_is_412_and_the_state_is_unchanged() {
    let s = server_with_limit(MAX_BIG_STATE).await;
    let current = big_state(5, "L", 6 * MIB);
    s.multipart_put(KEY, current.as_bytes(), PART)
        .await
        .unwrap();

    let older = big_state(4, "L", 6 * MIB);
    let (status, got, why) = s
        .multipart_put(KEY, older.as_bytes(), PART)
        .await
        .unwrap_err();
    assert_eq!((status, got.as_str()), (412, "PreconditionFailed"), "{why}");
    assert!(why.contains("serial"), "{why}");
    assert_eq!(s.stored(KEY).await.unwrap(), current.as_bytes());

    // If-None-Match: * on Complete, as on PutObject.
    let id = s.create_upload(KEY).await;
    let parts = s
        .upload_parts(KEY, &id, big_state(6, "L", 6 * MIB).as_bytes(), PART)
        .await;
    let exists = s
        .client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&exists), "PreconditionFailed");
    assert_eq!(s.stored(KEY).await.unwrap(), current.as_bytes());
}

#[tokio::test]
async fn multipart_unknown_uploads_bad_part_numbers_and_refused_keys() {
    let s = server_with_limit(8 * MIB).await;
    for id in [
        "0123456789abcdef0123456789abcdef",
        "not-an-id",
        "../../history",
    ] {
        let refused = s
            .client
            .upload_part()
            .bucket(BUCKET)
            .key(KEY)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&refused), "NoSuchUpload", "{id}");
        let (_, got, _) = s
            .complete(
                KEY,
                id,
                vec![Completed::builder().part_number(1).e_tag("\"x\"").build()],
            )
            .await
            .unwrap_err();
        assert_eq!(got, "NoSuchUpload", "{id}");
    }

    // An upload ID belongs to its key.
    let id = s.create_upload(KEY).await;
    let other = s
        .client
        .upload_part()
        .bucket(BUCKET)
        .key("other.tfstate")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&other), "NoSuchUpload");

    for number in [0, 10_001] {
        let refused = s
            .client
            .upload_part()
            .bucket(BUCKET)
            .key(KEY)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&refused), "InvalidArgument", "part {number}");
    }

    // The parts together may not exceed the state size limit.
    let body = vec![b'x'; PART];
    s.upload_parts(KEY, &id, &body, PART).await;
    let too_large = s
        .client
        .upload_part()
        .bucket(BUCKET)
        .key(KEY)
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&too_large),
        "EntityTooLarge",
        "{}",
        message(&too_large)
    );

    for key in [LOCK, ".statelock/uploads/x"] {
        let refused = s
            .client
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_err();
        let expected = if key == LOCK {
            "InvalidRequest"
        } else {
            "AccessDenied"
        };
        assert_eq!(code(&refused), expected, "{key}: {}", message(&refused));
    }
    // Only the one upload above was opened.
    let manifests: Vec<String> = s
        .open_upload_objects()
        .await
        .into_iter()
        .filter(|k| k.ends_with("/upload"))
        .collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
}

#[tokio::test]
async fn multipart_part_in_terraform_https_form_aws_chunked_with_trailing_checksum() {
    let s = server_with_limit(MAX_BIG_STATE).await;
    let body = big_state(1, "L", 6 * MIB);
    let (first, last) = body.as_bytes().split_at(PART);
    let id = s.create_upload(KEY).await;
    let target = |n: u32| format!("{KEY}?partNumber={n}&uploadId={id}");

    let wrong = STANDARD.encode(Sha256::digest(b"x"));
    let (status, reply) = chunked_put_to(s.addr, &target(1), first, &wrong).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("BadDigest"), "{reply}");
    assert_eq!(s.open_upload_objects().await.len(), 1, "only the manifest");

    let mut completed = Vec::new();
    for (n, part) in [(1, first), (2, last)] {
        let sha = STANDARD.encode(Sha256::digest(part));
        let (status, reply) = chunked_put_to(s.addr, &target(n), part, &sha).await;
        assert_eq!(status, 200, "{reply}");
        let etag = format!("\"{:x}\"", md5::Md5::digest(part));
        assert!(reply.contains(&etag), "{reply}");
        completed.push(
            Completed::builder()
                .part_number(n as i32)
                .e_tag(etag)
                .build(),
        );
    }
    s.complete(KEY, &id, completed).await.unwrap();
    assert_eq!(s.stored(KEY).await.unwrap(), body.as_bytes());
}
