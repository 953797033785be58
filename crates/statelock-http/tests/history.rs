//! State history and its JSON API in-process (`tower::ServiceExt::oneshot`), on the memory and
//! local-disk stores.
//!
//! Index:
//! - versions: one per accepted write with its metadata, bodies byte for byte, deletes recorded
//! - retention: oldest pruned, objects removed from the store
//! - crashes: a lost reply on the state put keeps the version; a failed history put refuses the
//!   write and leaves the state alone
//! - diff: resources by address (modules, data sources, index keys), outputs, sensitive values,
//!   encrypted states
//! - rollback: round trip under the lock, 423 while someone else holds it, "no changes" for a
//!   version with the current content, lineage check
//! - keys and listing: the history prefix refused as a state key, states listed with lock holder

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use bytes::Bytes;
use common::{KEY, Reply, URL, call, record};
use serde_json::{Value, json};
use statelock_core::{LockInfo, Timestamp};
use statelock_http::{AppState, HttpConfig, router};
use statelock_store::{
    Fault, FaultyStore, LocalStore, MemoryStore, ObjectStore, ObjectStoreExt, Op,
};

const API: &str = "/v1/api/states/team-a/prod/terraform.tfstate";
const LINEAGE: &str = "3f1c2a9e-7b4d-1e6f-8a2b-5c9d0e1f2a3b";
const ID_A: &str = "5d109c26-30ce-86f3-fc6f-336cd8db7a28";
const ID_B: &str = "0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f";

struct Api {
    store: Arc<FaultyStore>,
    state: AppState,
    app: Router,
    _dir: Option<tempfile::TempDir>,
}

impl Api {
    fn memory(retention: usize) -> Api {
        Api::over(Arc::new(MemoryStore::new()), retention, None)
    }

    fn local(retention: usize) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("data")).unwrap();
        Api::over(Arc::new(store), retention, Some(dir))
    }

    /// Both stores, for the tests that must hold on each.
    fn both() -> [Api; 2] {
        [Api::memory(100), Api::local(100)]
    }

    fn over(inner: Arc<dyn ObjectStore>, retention: usize, dir: Option<tempfile::TempDir>) -> Api {
        let store = Arc::new(FaultyStore::new(inner));
        let mut config = HttpConfig::new("mybucket");
        config.history_retention = retention;
        let state = AppState::new(store.clone(), config);
        let app = router(state.clone());
        Api {
            store,
            state,
            app,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: impl Into<Bytes>) -> Reply {
        call(&self.app, method, uri, body).await
    }

    async fn write(&self, body: &str) {
        let r = self.call("POST", URL, body.to_owned()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    /// The versions listing, newest first.
    async fn versions(&self) -> Vec<Value> {
        let r = self.call("GET", &format!("{API}/versions"), "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["versions"].as_array().unwrap().clone()
    }

    async fn history_objects(&self) -> Vec<String> {
        let all = self.store.list_all(".statelock/history/").await.unwrap();
        all.into_iter().map(|m| m.key).collect()
    }

    async fn stored(&self) -> Option<Bytes> {
        self.store.get_if_exists(KEY).await.unwrap().map(|g| g.body)
    }
}

/// A Terraform 1.0.3-style state with one output `n`.
fn state(lineage: &str, serial: u64, value: u64) -> String {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.0.3\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{\n    \"n\": {{\n      \"value\": {value},\n      \"type\": \"number\"\n    }}\n  }},\n  \"resources\": []\n}}\n"
    )
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- versions ----

#[tokio::test]
async fn each_accepted_write_is_one_version_with_its_metadata() {
    for api in Api::both() {
        // Unlocked: no lock holder and no client address in-process.
        let first = state(LINEAGE, 0, 1);
        api.write(&first).await;
        assert_eq!(
            api.call("LOCK", URL, record(ID_A, "alice@laptop").encode())
                .await
                .status,
            StatusCode::OK
        );
        let second = state(LINEAGE, 1, 2);
        let r = api
            .call("POST", &format!("{URL}?ID={ID_A}"), second.clone())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        // Identical bytes and refused writes add nothing.
        api.call("POST", &format!("{URL}?ID={ID_A}"), second.clone())
            .await;
        let stale = api
            .call("POST", &format!("{URL}?ID={ID_A}"), state(LINEAGE, 1, 3))
            .await;
        assert_eq!(stale.status, StatusCode::CONFLICT);

        let versions = api.versions().await;
        assert_eq!(versions.len(), 2, "{versions:#?}");
        let (newest, oldest) = (&versions[0], &versions[1]);
        assert_eq!(newest["kind"], "write");
        assert_eq!(newest["who"], "alice@laptop");
        assert_eq!(newest["lock_id"], ID_A);
        assert_eq!(newest["serial"], 1);
        assert_eq!(newest["lineage"], LINEAGE);
        assert_eq!(newest["size"], second.len());
        assert_eq!(newest["md5"], md5_hex(second.as_bytes()));
        assert_eq!(oldest["who"], "unknown");
        assert_eq!(oldest["lock_id"], Value::Null);
        assert_eq!(oldest["serial"], 0);
        assert!(newest["id"].as_str().unwrap() > oldest["id"].as_str().unwrap());
        let time = Timestamp::parse_rfc3339(newest["time"].as_str().unwrap()).unwrap();
        assert!(time.age_at(Timestamp::now()) < Duration::from_secs(60));

        for (v, body) in [(newest, &second), (oldest, &first)] {
            let r = api
                .call(
                    "GET",
                    &format!("{API}/versions/{}", v["id"].as_str().unwrap()),
                    "",
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body, body.as_bytes());
        }
        // One object per version (its metadata attached), all under the state's own folder.
        let objects = api.history_objects().await;
        assert_eq!(objects.len(), 2, "{objects:?}");
        assert!(
            objects
                .iter()
                .all(|k| k.starts_with(&format!(".statelock/history/{KEY}/")))
        );
    }
}

#[tokio::test]
async fn delete_is_recorded_with_the_deleted_content() {
    let api = Api::memory(100);
    let body = state(LINEAGE, 4, 1);
    api.write(&body).await;
    assert_eq!(api.call("DELETE", URL, "").await.status, StatusCode::OK);
    assert_eq!(api.stored().await, None);
    let versions = api.versions().await;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["kind"], "delete");
    assert_eq!(versions[0]["md5"], md5_hex(body.as_bytes()));
}

#[tokio::test]
async fn unknown_versions_and_bad_ids_are_named() {
    let api = Api::memory(100);
    api.write(&state(LINEAGE, 0, 1)).await;
    let missing = "20000101T000000.000000000Z-00000000000000000000-00000000";
    let r = api
        .call("GET", &format!("{API}/versions/{missing}"), "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text().contains(&format!("has no version {missing}")),
        "{}",
        r.text()
    );
    let r = api
        .call("GET", &format!("{API}/diff?from=latest"), "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text().contains("\"latest\" is not a version ID"),
        "{}",
        r.text()
    );
    let r = api.call("DELETE", &format!("{API}/versions"), "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = api.call("GET", "/v1/api/nothing", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

// ---- retention ----

#[tokio::test]
async fn retention_prunes_the_oldest_versions() {
    for api in [Api::memory(3), Api::local(3)] {
        for serial in 0..6 {
            api.write(&state(LINEAGE, serial, serial)).await;
        }
        // Pruning runs in the background (every write, for so short a retention).
        api.state.settled().await;
        let serials: Vec<_> = api
            .versions()
            .await
            .iter()
            .map(|v| v["serial"].as_u64().unwrap())
            .collect();
        assert_eq!(serials, [5, 4, 3]);
        assert_eq!(api.history_objects().await.len(), 3);
    }
}

// ---- crashes ----

#[tokio::test]
async fn a_lost_reply_on_the_state_put_keeps_the_accepted_version() {
    let api = Api::memory(100);
    api.write(&state(LINEAGE, 0, 1)).await;
    // The history put goes through; the state put lands but its reply is lost, as when the
    // server dies right after the store applied it.
    api.store
        .inject_for_key(Op::Put, ".statelock/", Fault::Delay(Duration::ZERO));
    api.store.inject_for_key(Op::Put, KEY, Fault::ReplyLost);
    let next = state(LINEAGE, 1, 2);
    let r = api.call("POST", URL, next.clone()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(api.store.pending_faults(), 0);
    // The store accepted it, and its version is there.
    assert_eq!(api.stored().await.unwrap(), next.as_bytes());
    let versions = api.versions().await;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["md5"], md5_hex(next.as_bytes()));
}

#[tokio::test]
async fn a_failed_state_put_after_the_history_write_keeps_history_consistent() {
    let api = Api::memory(100);
    let first = state(LINEAGE, 0, 1);
    api.write(&first).await;
    api.store
        .inject_for_key(Op::Put, ".statelock/", Fault::Delay(Duration::ZERO));
    api.store.inject_for_key(Op::Put, KEY, Fault::Error);
    let r = api.call("POST", URL, state(LINEAGE, 1, 2)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(api.stored().await.unwrap(), first.as_bytes());
    // The accepted version is still there; the attempted one is kept as well, since an
    // ambiguous failure may have landed.
    let md5s: Vec<_> = api
        .versions()
        .await
        .iter()
        .map(|v| v["md5"].clone())
        .collect();
    assert!(md5s.contains(&json!(md5_hex(first.as_bytes()))));
    assert_eq!(md5s.len(), 2);
    // A retry succeeds and lists after both.
    api.write(&state(LINEAGE, 1, 2)).await;
    assert_eq!(api.versions().await[0]["serial"], 1);
}

#[tokio::test]
async fn a_failed_history_write_refuses_the_write_and_leaves_the_state() {
    // One object per version; and the two-object layout (metadata first, then the body) of a
    // version whose metadata is too long to attach (a `Who` of 2000 characters), failing on
    // either put.
    let long_who = "w".repeat(2000);
    for (who, fault_on) in [
        (None, "history/"),
        (Some(&long_who), ".meta.json"),
        (Some(&long_who), "history/"),
    ] {
        let api = Api::memory(100);
        let first = state(LINEAGE, 0, 1);
        api.write(&first).await;
        let url = match who {
            Some(who) => {
                let r = api.call("LOCK", URL, record(ID_A, who).encode()).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                format!("{URL}?ID={ID_A}")
            }
            None => URL.to_owned(),
        };
        if who.is_some() && fault_on == "history/" {
            // Fail the body put: the metadata put before it goes through.
            api.store
                .inject_for_key(Op::Put, ".meta.json", Fault::Delay(Duration::ZERO));
        }
        api.store.inject_for_key(Op::Put, fault_on, Fault::Error);
        let r = api.call("POST", &url, state(LINEAGE, 1, 2)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert!(r.text().contains(".statelock/history/"), "{}", r.text());
        assert_eq!(api.store.pending_faults(), 0, "{fault_on}");
        assert_eq!(api.stored().await.unwrap(), first.as_bytes());
        let versions = api.versions().await;
        assert_eq!(versions.len(), 1, "{fault_on}: {versions:#?}");
        assert_eq!(versions[0]["serial"], 0);
        if who.is_some() {
            // Without the fault the long metadata lands beside the body, and reads back.
            let r = api.call("POST", &url, state(LINEAGE, 1, 2)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let versions = api.versions().await;
            assert_eq!(versions[0]["who"], long_who.as_str());
            assert!(
                api.history_objects()
                    .await
                    .iter()
                    .any(|k| k.ends_with(".meta.json"))
            );
        }
    }
}

// ---- diff ----

fn rich_state(serial: u64, resources: Value, outputs: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "version": 4,
        "terraform_version": "1.0.3",
        "serial": serial,
        "lineage": LINEAGE,
        "outputs": outputs,
        "resources": resources,
        "future_field": {"ignored": true},
    }))
    .unwrap()
}

fn resource(module: Option<&str>, mode: &str, kind: &str, name: &str, instances: Value) -> Value {
    let mut r = json!({
        "mode": mode, "type": kind, "name": name,
        "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
        "instances": instances,
    });
    if let Some(m) = module {
        r["module"] = json!(m);
    }
    r
}

#[tokio::test]
async fn diff_names_resources_by_address_and_compares_outputs() {
    let api = Api::memory(100);
    let inst = |key: Value, ami: &str| json!({"index_key": key, "schema_version": 1, "attributes": {"ami": ami}});
    let before = rich_state(
        1,
        json!([
            resource(
                Some("module.web"),
                "managed",
                "aws_instance",
                "app",
                json!([inst(json!(0), "ami-1"), inst(json!(1), "ami-1")])
            ),
            resource(
                None,
                "data",
                "aws_ami",
                "ubuntu",
                json!([{"attributes": {"id": "ami-1"}}])
            ),
            resource(
                None,
                "managed",
                "aws_s3_bucket",
                "logs",
                json!([{"attributes": {"bucket": "logs"}}])
            ),
        ]),
        json!({
            "url": {"value": "http://a", "type": "string"},
            "password": {"value": "hunter2", "type": "string", "sensitive": true},
            "old": {"value": 1, "type": "number"},
        }),
    );
    let after = rich_state(
        2,
        json!([
            resource(
                Some("module.web"),
                "managed",
                "aws_instance",
                "app",
                json!([inst(json!(0), "ami-2")])
            ),
            resource(
                None,
                "data",
                "aws_ami",
                "ubuntu",
                json!([{"attributes": {"id": "ami-1"}}])
            ),
            resource(
                Some("module.net[\"eu\"]"),
                "managed",
                "aws_vpc",
                "main",
                json!([inst(json!("a"), "x")])
            ),
        ]),
        json!({
            "url": {"value": "http://b", "type": "string"},
            "password": {"value": "swordfish", "type": "string", "sensitive": true},
            "new": {"value": [1, 2], "type": ["list", "number"]},
        }),
    );
    api.write(&before).await;
    api.write(&after).await;
    let versions = api.versions().await;
    let (to, from) = (
        versions[0]["id"].as_str().unwrap(),
        versions[1]["id"].as_str().unwrap(),
    );
    let expected_resources = json!({
        "added": ["module.net[\"eu\"].aws_vpc.main[\"a\"]"],
        "removed": ["aws_s3_bucket.logs", "module.web.aws_instance.app[1]"],
        "changed": ["module.web.aws_instance.app[0]"],
    });
    for target in [to, "current"] {
        let r = api
            .call("GET", &format!("{API}/diff?from={from}&to={target}"), "")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let d = r.json();
        assert_eq!(d["to"], target);
        assert_eq!(d["resources"], expected_resources);
        assert_eq!(
            d["outputs"],
            json!({
                "added": [{"name": "new", "to": [1, 2]}],
                "removed": [{"name": "old", "from": 1}],
                "changed": [
                    {"name": "password", "sensitive": true},
                    {"name": "url", "from": "http://a", "to": "http://b"},
                ],
            })
        );
        assert!(!r.text().contains("hunter2") && !r.text().contains("swordfish"));
    }
    // `to` defaults to the current state; the same version against itself is empty.
    let d = api
        .call("GET", &format!("{API}/diff?from={to}"), "")
        .await
        .json();
    assert_eq!(
        d["resources"],
        json!({"added": [], "removed": [], "changed": []})
    );
}

#[tokio::test]
async fn diff_of_an_encrypted_state_says_it_cannot() {
    let api = Api::memory(100);
    let enc = |serial: u64| {
        format!(
            r#"{{"serial":{serial},"lineage":"{LINEAGE}","meta":{{"key_provider.pbkdf2.k":"e30="}},"encrypted_data":"AAAA","encryption_version":"v0"}}"#
        )
    };
    api.write(&enc(1)).await;
    api.write(&enc(2)).await;
    let from = api.versions().await[1]["id"].as_str().unwrap().to_owned();
    let r = api
        .call("GET", &format!("{API}/diff?from={from}"), "")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().starts_with("encrypted, cannot diff: from"),
        "{}",
        r.text()
    );
    // Rollback is refused too: a new plaintext serial would not match the encrypted one.
    let r = api
        .call("POST", &format!("{API}/rollback?to={from}"), "")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("OpenTofu-encrypted"), "{}", r.text());
    assert_eq!(api.stored().await.unwrap(), enc(2).as_bytes());
}

// ---- rollback ----

#[tokio::test]
async fn rollback_copies_an_old_version_forward_under_the_lock() {
    for api in Api::both() {
        api.write(&state(LINEAGE, 5, 1)).await;
        api.write(&state(LINEAGE, 6, 2)).await;
        api.write(&state(LINEAGE, 7, 3)).await;
        let first = api.versions().await[2]["id"].as_str().unwrap().to_owned();
        let r = api
            .call("POST", &format!("{API}/rollback?to={first}"), "")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["serial"], 8);

        let now: Value = serde_json::from_slice(&api.stored().await.unwrap()).unwrap();
        let old: Value = serde_json::from_str(&state(LINEAGE, 5, 1)).unwrap();
        assert_eq!(now["serial"], 8);
        assert_eq!(now["lineage"], LINEAGE);
        assert_eq!(now["outputs"], old["outputs"]);
        assert_eq!(now["resources"], old["resources"]);
        assert_eq!(now["terraform_version"], old["terraform_version"]);

        let versions = api.versions().await;
        assert_eq!(versions.len(), 4);
        assert_eq!(versions[0]["kind"], "rollback");
        assert!(
            versions[0]["who"]
                .as_str()
                .unwrap()
                .starts_with("statelock-rollback@")
        );
        assert!(versions[0]["lock_id"].is_string());
        // The lock is released again.
        assert!(
            api.store
                .get_if_exists(&format!("{KEY}.tflock"))
                .await
                .unwrap()
                .is_none()
        );
        // Terraform can go on writing on top of it.
        api.write(&state(LINEAGE, 9, 4)).await;
    }
}

#[tokio::test]
async fn rollback_while_someone_else_holds_the_lock_is_423_with_the_holder() {
    let api = Api::memory(100);
    api.write(&state(LINEAGE, 1, 1)).await;
    api.write(&state(LINEAGE, 2, 2)).await;
    let first = api.versions().await[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call("LOCK", URL, record(ID_B, "bob@ci").encode())
            .await
            .status,
        StatusCode::OK
    );
    let r = api
        .call("POST", &format!("{API}/rollback?to={first}"), "")
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let holder = LockInfo::decode(&r.body).unwrap();
    assert_eq!((holder.id.as_str(), holder.who.as_str()), (ID_B, "bob@ci"));
    assert_eq!(api.stored().await.unwrap(), state(LINEAGE, 2, 2).as_bytes());
    assert_eq!(api.versions().await.len(), 2);
}

#[tokio::test]
async fn rollback_to_a_version_with_the_current_content_writes_nothing() {
    let api = Api::memory(100);
    api.write(&state(LINEAGE, 1, 1)).await;
    api.write(&state(LINEAGE, 2, 2)).await;
    // Same outputs and resources as the current state: only serial (and nothing else) differs.
    api.write(&state(LINEAGE, 3, 1)).await;
    let first = api.versions().await[2]["id"].as_str().unwrap().to_owned();
    let before = api.stored().await.unwrap();
    let r = api
        .call("POST", &format!("{API}/rollback?to={first}"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["no_changes"], true, "{}", r.text());
    assert_eq!(api.stored().await.unwrap(), before);
    assert_eq!(api.versions().await.len(), 3, "no version recorded");
    assert!(
        api.store
            .get_if_exists(&format!("{KEY}.tflock"))
            .await
            .unwrap()
            .is_none()
    );
    // force=true writes the copy anyway.
    let r = api
        .call("POST", &format!("{API}/rollback?to={first}&force=true"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["serial"], 4);
}

#[tokio::test]
async fn rollback_across_lineages_needs_force() {
    let api = Api::memory(100);
    api.write(&state("L-old", 3, 1)).await;
    // A different lineage replaces the state only once it is empty.
    api.write(
        "{\"version\":4,\"serial\":4,\"lineage\":\"L-old\",\"outputs\":{},\"resources\":[]}\n",
    )
    .await;
    api.write(&state("L-new", 0, 2)).await;
    let old = api.versions().await[2]["id"].as_str().unwrap().to_owned();
    let r = api
        .call("POST", &format!("{API}/rollback?to={old}"), "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("add force=true"), "{}", r.text());
    assert!(
        api.store
            .get_if_exists(&format!("{KEY}.tflock"))
            .await
            .unwrap()
            .is_none()
    );
    let r = api
        .call("POST", &format!("{API}/rollback?to={old}&force=true"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let now: Value = serde_json::from_slice(&api.stored().await.unwrap()).unwrap();
    assert_eq!(
        (now["lineage"].as_str(), now["serial"].as_u64()),
        (Some("L-new"), Some(1))
    );
    assert_eq!(now["outputs"]["n"]["value"], 1);
}

// ---- keys and listing ----

#[tokio::test]
async fn the_history_prefix_is_not_a_state_key() {
    let api = Api::memory(100);
    for method in ["GET", "POST", "LOCK"] {
        let r = api
            .call(
                method,
                "/v1/states/.statelock/history/x/y.tfstate",
                state(LINEAGE, 0, 1),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method}");
        assert!(
            r.text().contains("reserved for statelock's state history"),
            "{}",
            r.text()
        );
    }
    let r = api
        .call("GET", "/v1/api/states/.statelock/x/versions", "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(api.store.list_all("").await.unwrap().is_empty());
}

#[tokio::test]
async fn states_are_listed_with_their_lock_holder() {
    let api = Api::memory(100);
    api.write(&state(LINEAGE, 0, 1)).await;
    let other = "/v1/states/team-b/terraform.tfstate";
    assert_eq!(
        api.call("POST", other, state(LINEAGE, 0, 1)).await.status,
        StatusCode::OK
    );
    // The age is counted from the record's `Created`.
    let fresh = LockInfo {
        created: Timestamp::now(),
        ..record(ID_A, "alice@laptop")
    };
    api.call("LOCK", URL, fresh.encode()).await;
    let r = api.call("GET", "/v1/api/states", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let states = r.json()["states"].as_array().unwrap().clone();
    let keys: Vec<_> = states.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [KEY, "team-b/terraform.tfstate"]);
    let lock = &states[0]["lock"];
    assert_eq!(lock["id"], ID_A);
    assert_eq!(lock["who"], "alice@laptop");
    assert_eq!(lock["operation"], "OperationTypeApply");
    assert!(lock["age_seconds"].as_u64().unwrap() < 60);
    assert_eq!(states[1]["lock"], Value::Null);
    assert_eq!(states[0]["size"], state(LINEAGE, 0, 1).len());
    assert_eq!(states[0]["exists"], true);

    // A lock on a state not written yet (a first apply) is a row; so is an unreadable one.
    let first = LockInfo {
        created: Timestamp::now(),
        ..record(ID_B, "bob@ci")
    };
    api.call("LOCK", "/v1/states/new/terraform.tfstate", first.encode())
        .await;
    api.store
        .put(
            "junk/terraform.tfstate.tflock",
            bytes::Bytes::from_static(b"not a record"),
            statelock_store::PutOptions::new(statelock_store::PutMode::Create),
        )
        .await
        .unwrap();
    let r = api.call("GET", "/v1/api/states", "").await;
    let states = r.json()["states"].as_array().unwrap().clone();
    let row = |k: &str| {
        states
            .iter()
            .find(|s| s["key"] == k)
            .unwrap_or_else(|| panic!("no row {k}: {states:?}"))
            .clone()
    };
    let new = row("new/terraform.tfstate");
    assert_eq!(
        (new["exists"].as_bool(), new["size"].as_u64()),
        (Some(false), Some(0))
    );
    assert_eq!(new["lock"]["who"], "bob@ci");
    let junk = row("junk/terraform.tfstate");
    assert!(junk["lock"]["unreadable"].is_string(), "{junk}");

    // A lock the store fails to return is reported on its row; the listing still answers.
    api.store
        .inject_for_key(Op::Get, "new/terraform.tfstate.tflock", Fault::Error);
    let r = api.call("GET", "/v1/api/states", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let states = r.json()["states"].as_array().unwrap().clone();
    let new = states
        .iter()
        .find(|s| s["key"] == "new/terraform.tfstate")
        .unwrap();
    assert!(
        new["lock"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("the lock could not be read")),
        "{new}"
    );
    assert_eq!(states.len(), 4, "{states:?}");
}
