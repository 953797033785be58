//! The HTTP API in-process (`tower::ServiceExt::oneshot`) over the memory store.
//!
//! Index:
//! - state: GET/POST/PUT/DELETE, 404, malformed bodies, 413 both ways
//! - keys: traversal and lock-suffix keys refused with the rule named, nothing stored
//! - locks: 423 with the holder's exact record, idempotent LOCK, UNLOCK forms, plain-method alias
//! - fencing: writes under a wrong ID, without ID, after the lock is gone
//! - guard: foreign lineage, stale serial, identical bytes, switched off
//! - store trouble: outage as 503, a lost compare-and-swap as 409

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use common::{KEY, Reply, URL, call, record, send};
use statelock_core::{LockInfo, StateKey};
use statelock_http::{AppState, HttpConfig, router};
use statelock_store::{
    Fault, FaultyStore, MemoryStore, ObjectStore, ObjectStoreExt, Op, PutMode, PutOptions,
};

const ID_A: &str = "5d109c26-30ce-86f3-fc6f-336cd8db7a28";
const ID_B: &str = "0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f";

struct Api {
    store: Arc<FaultyStore>,
    app: Router,
}

impl Api {
    fn new() -> Api {
        Api::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut HttpConfig)) -> Api {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let mut config = HttpConfig::new("mybucket");
        tweak(&mut config);
        let app = router(AppState::new(store.clone(), config));
        Api { store, app }
    }

    async fn call(&self, method: &str, uri: &str, body: impl Into<Bytes>) -> Reply {
        call(&self.app, method, uri, body).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.app, request).await
    }

    /// Keys of states and locks; the history under `.statelock/` is tested in `history.rs`.
    async fn keys(&self) -> Vec<String> {
        let all = self.store.list_all("").await.unwrap();
        all.into_iter()
            .map(|m| m.key)
            .filter(|k| !k.starts_with(".statelock/"))
            .collect()
    }

    async fn stored(&self, key: &str) -> Option<Bytes> {
        self.store.get_if_exists(key).await.unwrap().map(|f| f.body)
    }

    async fn lock(&self, id: &str, who: &str) -> Reply {
        self.call("LOCK", URL, record(id, who).encode()).await
    }
}

fn state(lineage: &str, serial: u64, value: u64) -> String {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.0.3\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{\"n\": {{\"value\": {value}, \"type\": \"number\"}}}},\n  \"resources\": []\n}}\n"
    )
}

/// The record the server stores and returns: the client's, with `Path` as the S3 backend sets it.
fn stored_record(id: &str, who: &str) -> String {
    LockInfo {
        path: format!("mybucket/{KEY}"),
        ..record(id, who)
    }
    .encode()
}

// ---- state ----

#[tokio::test]
async fn get_is_404_until_a_write_then_returns_the_exact_bytes() {
    let api = Api::new();
    let r = api.call("GET", URL, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.text(), format!("no state is stored at {KEY}\n"));

    let body = state("L1", 0, 1);
    assert_eq!(
        api.call("POST", URL, body.clone()).await.status,
        StatusCode::OK
    );
    let r = api.call("GET", URL, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, body.as_bytes());
    assert_eq!(r.headers["content-type"], "application/json");

    // PUT writes too.
    let next = state("L1", 1, 2);
    assert_eq!(
        api.call("PUT", URL, next.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(api.stored(KEY).await.unwrap(), next.as_bytes());
}

#[tokio::test]
async fn delete_removes_the_state_and_404s_when_absent() {
    let api = Api::new();
    assert_eq!(
        api.call("DELETE", URL, "").await.status,
        StatusCode::NOT_FOUND
    );
    api.call("POST", URL, state("L1", 0, 1)).await;
    let r = api.call("DELETE", URL, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(api.keys().await.is_empty());
}

#[tokio::test]
async fn malformed_state_is_400_and_nothing_is_stored() {
    let api = Api::new();
    for bad in ["", "not json", "[1,2]", r#"{"serial":"one"}"#] {
        let r = api.call("POST", URL, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(
            r.text().starts_with("the body is not a state document: "),
            "{}",
            r.text()
        );
    }
    assert!(api.keys().await.is_empty());
}

#[tokio::test]
async fn oversized_state_is_413_naming_the_limit_with_or_without_content_length() {
    let api = Api::with(|c| c.max_state_size = 100);
    let big = state("L1", 0, 1) + &" ".repeat(200);
    // Without Content-Length the body is cut off while it is read.
    let r = api.call("POST", URL, big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.text(),
        "the state is larger than the limit of 100 bytes\n"
    );
    // With it, the request is refused before reading.
    let request = Request::builder()
        .method("POST")
        .uri(URL)
        .header("content-length", big.len())
        .body(Body::from(big))
        .unwrap();
    assert_eq!(
        api.send(request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(api.keys().await.is_empty());
    // At the limit is fine.
    let api = Api::with(|c| c.max_state_size = 100);
    let fits = r#"{"serial":0,"lineage":"L"}"#;
    assert_eq!(api.call("POST", URL, fits).await.status, StatusCode::OK);
}

// ---- keys ----

#[tokio::test]
async fn bad_keys_are_400_naming_the_rule_and_touch_nothing() {
    let api = Api::new();
    let cases = [
        (
            "/v1/states/a/../b",
            "must not contain a '.' or '..' path segment",
        ),
        (
            "/v1/states/a/%2e%2e/%2e%2e/etc",
            "must not contain a '.' or '..' path segment",
        ),
        ("/v1/states/x.tfstate.tflock", "must not end with '.tflock'"),
        ("/v1/states/a//b", "must not contain '//'"),
        ("/v1/states/a%0Ab", "control character"),
        (
            "/v1/locks/a/./b",
            "must not contain a '.' or '..' path segment",
        ),
    ];
    for (uri, rule) in cases {
        for method in ["GET", "POST", "LOCK", "UNLOCK"] {
            let body = if method == "POST" {
                state("L", 0, 1)
            } else {
                record(ID_A, "a@h").encode()
            };
            let r = api.call(method, uri, body).await;
            assert!(
                r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}: {}",
                r.status
            );
            if r.status == StatusCode::BAD_REQUEST {
                assert!(r.text().starts_with("invalid state key: "), "{}", r.text());
                assert!(r.text().contains(rule), "{uri}: {}", r.text());
            }
        }
    }
    let long = format!("/v1/states/{}", "k".repeat(1025));
    let r = api.call("GET", &long, "").await;
    assert_eq!(
        r.text(),
        "invalid state key: state key is 1025 bytes long; the limit is 1024\n"
    );
    assert!(api.keys().await.is_empty());
}

#[tokio::test]
async fn unknown_paths_and_methods_say_where_to_go() {
    let api = Api::new();
    let r = api.call("GET", "/v2/x", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("states live at /v1/states/<key>"));
    let r = api.call("PATCH", URL, "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, POST, PUT, DELETE, LOCK, UNLOCK");
}

// ---- locks ----

#[tokio::test]
async fn lock_stores_the_s3_backend_record_and_conflicts_with_423_and_the_holder() {
    let api = Api::new();
    let r = api.lock(ID_A, "alice@ci").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), stored_record(ID_A, "alice@ci"));
    let lock_key = StateKey::parse(KEY).unwrap().lock_key();
    assert_eq!(api.keys().await, vec![lock_key.clone()]);
    assert_eq!(
        api.stored(&lock_key).await.unwrap(),
        stored_record(ID_A, "alice@ci").as_bytes()
    );

    let r = api.lock(ID_B, "bob@laptop").await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert_eq!(r.text(), stored_record(ID_A, "alice@ci"));
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.headers["statelock-error"],
        format!("state {KEY} is locked by alice@ci (lock ID {ID_A})").as_str()
    );
}

#[tokio::test]
async fn lock_is_idempotent_for_the_same_id() {
    let api = Api::new();
    assert_eq!(api.lock(ID_A, "alice@ci").await.status, StatusCode::OK);
    let again = api.lock(ID_A, "alice@ci").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), stored_record(ID_A, "alice@ci"));
}

#[tokio::test]
async fn malformed_lock_bodies_are_400_and_change_nothing() {
    let api = Api::new();
    api.lock(ID_A, "alice@ci").await;
    let before = api.stored(&format!("{KEY}.tflock")).await;
    for (method, body) in [
        ("LOCK", "{not json"),
        ("LOCK", r#"{"ID":"x","Created":"yesterday"}"#),
        ("LOCK", ""),
        ("LOCK", r#"{"Who":"no id"}"#),
        ("UNLOCK", r#"{"ID":7}"#),
        ("UNLOCK", "[]"),
    ] {
        let r = api.call(method, URL, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {body}: {}",
            r.text()
        );
    }
    assert_eq!(api.stored(&format!("{KEY}.tflock")).await, before);
}

#[tokio::test]
async fn unlock_with_the_lock_body_releases_and_a_foreign_id_is_409_with_the_holder() {
    let api = Api::new();
    api.lock(ID_A, "alice@ci").await;
    let r = api
        .call("UNLOCK", URL, record(ID_B, "bob@laptop").encode())
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.text(), stored_record(ID_A, "alice@ci"));
    assert_eq!(api.keys().await.len(), 1);

    // Terraform echoes the exact LOCK bytes, whose Path is empty: matched by ID.
    let r = api
        .call("UNLOCK", URL, record(ID_A, "alice@ci").encode())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(api.keys().await.is_empty());
    // A retried UNLOCK whose first attempt landed still succeeds.
    let r = api
        .call("UNLOCK", URL, record(ID_A, "alice@ci").encode())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), format!("state {KEY} was not locked\n"));
}

#[tokio::test]
async fn terraform_force_unlock_with_an_empty_body_removes_any_lock() {
    let api = Api::new();
    api.lock(ID_A, "alice@ci").await;
    let r = api.call("UNLOCK", URL, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(api.keys().await.is_empty());

    // Also an unreadable lock object, which no ID can match.
    api.store
        .put(
            &format!("{KEY}.tflock"),
            Bytes::from_static(b"garbage"),
            PutOptions::new(PutMode::Create),
        )
        .await
        .unwrap();
    let r = api.lock(ID_B, "bob@laptop").await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert!(r.text().contains("unreadable lock object"), "{}", r.text());
    assert_eq!(api.call("UNLOCK", URL, "").await.status, StatusCode::OK);
    assert_eq!(api.lock(ID_B, "bob@laptop").await.status, StatusCode::OK);
}

#[tokio::test]
async fn opentofu_force_unlock_with_an_id_only_body_needs_the_right_id() {
    let api = Api::new();
    api.lock(ID_A, "alice@ci").await;
    let wrong = api
        .call("UNLOCK", URL, LockInfo::id_only(ID_B).encode())
        .await;
    assert_eq!(wrong.status, StatusCode::CONFLICT);
    assert_eq!(wrong.text(), stored_record(ID_A, "alice@ci"));
    let right = api
        .call("UNLOCK", URL, LockInfo::id_only(ID_A).encode())
        .await;
    assert_eq!(right.status, StatusCode::OK);
    assert!(api.keys().await.is_empty());
}

#[tokio::test]
async fn plain_method_lock_alias_shares_the_same_lock() {
    let api = Api::new();
    let locks = "/v1/locks/team-a/prod/terraform.tfstate";
    assert_eq!(
        api.call("PUT", locks, record(ID_A, "a@h").encode())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(api.lock(ID_B, "b@h").await.status, StatusCode::LOCKED);
    assert_eq!(
        api.call("POST", locks, record(ID_B, "b@h").encode())
            .await
            .status,
        StatusCode::LOCKED
    );
    assert_eq!(
        api.call("DELETE", locks, record(ID_A, "a@h").encode())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(api.lock(ID_B, "b@h").await.status, StatusCode::OK);
}

// ---- fencing ----

#[tokio::test]
async fn writes_are_fenced_by_the_lock_holder() {
    let api = Api::new();
    api.call("POST", URL, state("L1", 0, 1)).await;
    api.lock(ID_A, "alice@ci").await;

    let r = api
        .call("POST", &format!("{URL}?ID={ID_B}"), state("L1", 1, 2))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.text(), stored_record(ID_A, "alice@ci"));

    let r = api.call("POST", URL, state("L1", 1, 2)).await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert_eq!(r.text(), stored_record(ID_A, "alice@ci"));

    let r = api.call("DELETE", URL, "").await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert_eq!(api.stored(KEY).await.unwrap(), state("L1", 0, 1).as_bytes());

    // Terraform sorts the query, so other parameters may come after ID.
    let r = api
        .call(
            "POST",
            &format!("{URL}?ID={ID_A}&env=prod"),
            state("L1", 1, 2),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(api.stored(KEY).await.unwrap(), state("L1", 1, 2).as_bytes());

    // Once the lock is gone, its old ID no longer writes.
    api.call("UNLOCK", URL, "").await;
    let r = api
        .call("POST", &format!("{URL}?ID={ID_A}"), state("L1", 2, 3))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("is not locked"), "{}", r.text());
    assert_eq!(api.stored(KEY).await.unwrap(), state("L1", 1, 2).as_bytes());
}

// ---- guard ----

#[tokio::test]
async fn guard_refuses_foreign_lineage_and_stale_serials_with_409() {
    let api = Api::new();
    api.call("POST", URL, state("L1", 5, 1)).await;
    let r = api.call("POST", URL, state("L2", 9, 1)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.text().contains(
            r#"cannot write state with lineage "L2" over unrelated state with lineage "L1""#
        ),
        "{}",
        r.text()
    );
    let r = api.call("POST", URL, state("L1", 5, 2)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.text()
            .contains("serial 5 is not newer than the stored state with serial 5"),
        "{}",
        r.text()
    );
    assert_eq!(api.stored(KEY).await.unwrap(), state("L1", 5, 1).as_bytes());
    // Identical bytes are accepted (a retried write).
    assert_eq!(
        api.call("POST", URL, state("L1", 5, 1)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn guard_can_be_switched_off() {
    let api = Api::with(|c| c.stale_write_guard = false);
    api.call("POST", URL, state("L1", 5, 1)).await;
    assert_eq!(
        api.call("POST", URL, state("L2", 0, 1)).await.status,
        StatusCode::OK
    );
    assert_eq!(api.stored(KEY).await.unwrap(), state("L2", 0, 1).as_bytes());
}

// ---- store trouble ----

#[tokio::test]
async fn store_outage_is_503_with_the_store_error() {
    let api = Api::new();
    api.store.inject(Op::Get, Fault::Error);
    let r = api.call("GET", URL, "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.text().starts_with("the store is unavailable: "),
        "{}",
        r.text()
    );
    // The lock client retries a failed create twice before giving up.
    for _ in 0..3 {
        api.store.inject(Op::Put, Fault::Error);
    }
    let r = api.lock(ID_A, "a@h").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_loses_the_compare_and_swap_is_409_and_does_not_overwrite() {
    let api = Arc::new(Api::new());
    api.call("POST", URL, state("L1", 1, 1)).await;
    // The write's put is held back after its guard read, while another writer replaces the
    // state underneath.
    api.store
        .inject(Op::Put, Fault::Delay(Duration::from_millis(300)));
    let slow = tokio::spawn({
        let api = api.clone();
        async move { api.call("POST", URL, state("L1", 2, 2)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sneaky = state("L1", 7, 7);
    api.store
        .put(
            KEY,
            Bytes::from(sneaky.clone()),
            PutOptions::new(PutMode::Overwrite),
        )
        .await
        .unwrap();
    let r = slow.await.unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.text().contains("was changed by another writer"),
        "{}",
        r.text()
    );
    assert_eq!(api.stored(KEY).await.unwrap(), sneaky.as_bytes());
}
