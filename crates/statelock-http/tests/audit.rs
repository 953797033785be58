//! The audit trail: one line per action with the fields each needs, the same events as
//! objects under `.statelock/audit/` in the store, and refusals in the file but never in the
//! store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use common::{Holder, KEY, URL, memory_store, send, state};
use serde_json::Value;
use statelock_http::audit::{AUDIT_PREFIX, AuditLog};
use statelock_http::auth::{Authenticator, TokenHash};
use statelock_http::{AppState, HttpConfig, LockPolicy, router};
use statelock_store::ObjectStoreExt;

fn principals(dir: &std::path::Path) -> Arc<Authenticator> {
    let mut text = String::new();
    for (name, grant) in [("ci", "write:team-a/**"), ("root", "admin:**")] {
        text.push_str(&format!(
            "[[principal]]\nname = \"{name}\"\ngrants = [\"{grant}\"]\n[[token]]\nprincipal = \"{name}\"\nsha256 = \"{}\"\n",
            TokenHash::of(&format!("slt_{name}")).to_hex()
        ));
    }
    let path = dir.join("principals.toml");
    std::fs::write(&path, text).unwrap();
    Arc::new(Authenticator::load(&path).unwrap())
}

async fn call(
    app: &Router,
    who: Option<&str>,
    method: &str,
    uri: &str,
    body: String,
) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(who) = who {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{who}:slt_{who}"));
        request = request.header(header::AUTHORIZATION, format!("Basic {pair}"));
    }
    send(app, request.body(Body::from(body)).unwrap())
        .await
        .status
}

#[tokio::test]
async fn every_action_is_audited_with_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("audit.log");
    let store = memory_store();
    let mut config = HttpConfig::new(common::BUCKET);
    config.auth = Some(principals(dir.path()));
    config.audit = Some(Arc::new(AuditLog::open(Some(&log_path), true).unwrap()));
    config.locking = LockPolicy {
        ttl: Some(Duration::from_millis(100)),
        ..LockPolicy::default()
    };
    let app = router(AppState::new(store.clone(), config));

    let ci = Holder::new("ci@runner");
    let write = |serial| (format!("{URL}?ID={}", ci.info.id), state(serial));
    assert_eq!(
        call(&app, Some("ci"), "LOCK", URL, ci.body()).await,
        StatusCode::OK
    );
    let (uri, body) = write(1);
    assert_eq!(
        call(&app, Some("ci"), "POST", &uri, body).await,
        StatusCode::OK
    );
    let (uri, body) = write(2);
    assert_eq!(
        call(&app, Some("ci"), "POST", &uri, body).await,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Some("ci"), "UNLOCK", URL, ci.body()).await,
        StatusCode::OK
    );
    // Refusals: no credentials (401), and ci's force-unlock (403).
    assert_eq!(
        call(&app, None, "GET", URL, String::new()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Some("ci"), "UNLOCK", URL, String::new()).await,
        StatusCode::FORBIDDEN
    );
    // A stuck lock: taken over by root, then force-unlocked.
    let stuck = Holder::new("crashed@ci");
    assert_eq!(
        call(&app, Some("ci"), "LOCK", URL, stuck.body()).await,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let root = Holder::new("root@laptop");
    assert_eq!(
        call(&app, Some("root"), "LOCK", URL, root.body()).await,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Some("root"), "UNLOCK", URL, String::new()).await,
        StatusCode::OK
    );
    // Rollback to the first version, then delete.
    let versions = format!("/v1/api/states/{KEY}/versions");
    let listing = send(
        &app,
        Request::get(&versions)
            .header(header::AUTHORIZATION, "Bearer slt_root")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let first = listing.json()["versions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rollback = format!("/v1/api/states/{KEY}/rollback?to={first}");
    assert_eq!(
        call(&app, Some("root"), "POST", &rollback, String::new()).await,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Some("root"), "DELETE", URL, String::new()).await,
        StatusCode::OK
    );

    let text = std::fs::read_to_string(&log_path).unwrap();
    println!("audit log:\n{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "lock",
            "write",
            "write",
            "unlock",
            "denied",
            "denied",
            "lock",
            "takeover",
            "lock",
            "force-unlock",
            // The rollback runs under its own lock, which the trail shows like any other.
            "lock",
            "rollback",
            "unlock",
            "delete"
        ]
    );
    let principals: Vec<Option<&str>> = lines.iter().map(|l| l["principal"].as_str()).collect();
    assert_eq!(
        principals,
        [
            Some("ci"),
            Some("ci"),
            Some("ci"),
            Some("ci"),
            None,
            Some("ci"),
            Some("ci"),
            Some("root"),
            Some("root"),
            Some("root"),
            Some("root"),
            Some("root"),
            Some("root"),
            Some("root")
        ]
    );
    for line in &lines {
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        if line["action"] != "denied" {
            assert_eq!(line["key"], KEY, "{line}");
        }
    }
    let ci_id = ci.info.id.as_str();
    assert_eq!(lines[0]["lock_id"], ci_id);
    let md5_of = |serial| md5_hex(&state(serial));
    assert_eq!(
        (
            lines[1]["serial_before"].clone(),
            lines[1]["serial_after"].clone()
        ),
        (Value::Null, 1.into())
    );
    assert_eq!(lines[1]["size"], state(1).len());
    assert_eq!(lines[1]["md5"], md5_of(1));
    assert_eq!(
        (
            lines[2]["serial_before"].clone(),
            lines[2]["serial_after"].clone()
        ),
        (1.into(), 2.into())
    );
    assert_eq!(lines[2]["lock_id"], ci_id);
    assert_eq!(lines[3]["lock_id"], ci_id);
    assert_eq!(lines[4]["status"], 401);
    assert_eq!(lines[4]["request"], format!("GET {URL}"));
    assert_eq!(lines[5]["status"], 403);
    assert!(
        lines[5]["reason"]
            .as_str()
            .unwrap()
            .contains("lacks the admin permission"),
        "{}",
        lines[5]
    );
    assert_eq!(lines[7]["lock_id"], root.info.id.as_str());
    assert!(
        lines[7]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("took over lock {} of crashed@ci", stuck.info.id))
    );
    assert_eq!(lines[9]["lock_id"], root.info.id.as_str());
    let rollback_lock = lines[10]["lock_id"].as_str().unwrap();
    assert_eq!(lines[11]["lock_id"], rollback_lock);
    assert_eq!(lines[12]["lock_id"], rollback_lock);
    assert_eq!(
        (
            lines[11]["serial_before"].clone(),
            lines[11]["serial_after"].clone()
        ),
        (2.into(), 3.into())
    );
    assert_eq!(
        (
            lines[13]["serial_before"].clone(),
            lines[13]["serial_after"].clone()
        ),
        (3.into(), Value::Null)
    );

    // The store holds the same events but the refusals, in time order.
    let stored = store.list_all(AUDIT_PREFIX).await.unwrap();
    let mut from_store = Vec::new();
    for object in &stored {
        let body = store.get(&object.key).await.unwrap().body;
        from_store.push(serde_json::from_slice::<Value>(&body).unwrap());
    }
    let expected: Vec<&Value> = lines.iter().filter(|l| l["action"] != "denied").collect();
    assert_eq!(from_store.iter().collect::<Vec<_>>(), expected);
}

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
