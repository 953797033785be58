//! Helpers for the in-process HTTP tests: requests through `tower::ServiceExt::oneshot` and
//! their replies (all test files), and replicas (routers) over one shared store with lock
//! holders (the lock-queue and stuck-lock tests).

#![allow(dead_code)] // each test file uses a different subset

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_http::{AppState, HttpConfig, LockPolicy, router};
use statelock_lock::LockClient;
use statelock_store::{MemoryStore, ObjectStore};
use tower::ServiceExt;

pub const KEY: &str = "team-a/prod/terraform.tfstate";
pub const URL: &str = "/v1/states/team-a/prod/terraform.tfstate";
pub const BUCKET: &str = "mybucket";

/// One server replica.
#[derive(Clone)]
pub struct Replica {
    pub state: AppState,
    pub app: Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.text()))
    }

    pub fn explanation(&self) -> String {
        self.headers
            .get("statelock-error")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// One request with `body` through `app`.
pub async fn call(app: &Router, method: &str, uri: &str, body: impl Into<Bytes>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.into()))
        .unwrap();
    send(app, request).await
}

/// One prepared request through `app`.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    }
}

/// A lock record as Terraform 1.0.3 sends it in a LOCK body (`Path` empty).
pub fn record(id: &str, who: &str) -> LockInfo {
    LockInfo {
        id: id.to_owned(),
        operation: "OperationTypeApply".to_owned(),
        info: String::new(),
        who: who.to_owned(),
        version: "1.0.3".to_owned(),
        created: Timestamp::parse_rfc3339("2024-12-02T09:15:27.402913Z").unwrap(),
        path: String::new(),
    }
}

pub fn memory_store() -> Arc<dyn ObjectStore> {
    Arc::new(MemoryStore::new())
}

impl Replica {
    pub fn new(store: Arc<dyn ObjectStore>, locking: LockPolicy) -> Replica {
        let mut config = HttpConfig::new(BUCKET);
        config.locking = locking;
        let state = AppState::new(store, config);
        Replica {
            app: router(state.clone()),
            state,
        }
    }

    pub async fn call(&self, method: &str, uri: &str, body: impl Into<Bytes>) -> Reply {
        call(&self.app, method, uri, body).await
    }

    pub async fn lock(&self, who: &Holder, query: &str) -> Reply {
        self.call("LOCK", &format!("{URL}{query}"), who.body())
            .await
    }

    pub async fn unlock(&self, who: &Holder) -> Reply {
        self.call("UNLOCK", URL, who.body()).await
    }

    pub async fn write(&self, who: &Holder, serial: u64) -> Reply {
        let uri = format!("{URL}?ID={}", who.info.id);
        self.call("POST", &uri, state(serial)).await
    }

    /// Waits until `n` LOCKs queue on this replica, so tests know the order they arrived in.
    pub async fn until_waiters(&self, n: usize) {
        let key = StateKey::parse(KEY).unwrap();
        for _ in 0..2000 {
            if self.state.lock_waiters(&key) == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!(
            "expected {n} waiters, have {}",
            self.state.lock_waiters(&key)
        );
    }
}

/// A lock client (a Terraform process, say) with its own record.
#[derive(Clone)]
pub struct Holder {
    pub info: LockInfo,
}

impl Holder {
    pub fn new(who: &str) -> Holder {
        Holder {
            info: LockInfo::new("OperationTypeApply", who, "1.0.3"),
        }
    }

    pub fn body(&self) -> String {
        self.info.encode()
    }

    /// The record as the server stores it and returns it in a 423.
    pub fn stored(&self) -> String {
        LockInfo {
            path: format!("{BUCKET}/{KEY}"),
            ..self.info.clone()
        }
        .encode()
    }
}

/// A direct store client, as another replica or Terraform's S3 backend would be.
pub fn direct_client(store: Arc<dyn ObjectStore>) -> LockClient {
    LockClient::new(store, BUCKET)
}

pub fn state(serial: u64) -> String {
    format!(
        "{{\"version\":4,\"terraform_version\":\"1.0.3\",\"serial\":{serial},\"lineage\":\"L1\",\"outputs\":{{\"n\":{{\"value\":{serial},\"type\":\"number\"}}}},\"resources\":[]}}\n"
    )
}
