//! Authentication and grants, in process: 401 and 403 with what they must say, which request
//! needs which permission, SIGHUP-style reloads, and that a refused request reaches no store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use common::{Holder, KEY, Reply, URL, memory_store, send, state};
use statelock_http::auth::{Authenticator, TokenHash};
use statelock_http::{AppState, HttpConfig, LockPolicy, router};
use statelock_store::{FaultyStore, ObjectStore};

/// (name, token, grants)
const PRINCIPALS: [(&str, &str, &str); 4] = [
    ("ci-a", "slt_ci_a_token", r#""write:team-a/**""#),
    ("viewer", "slt_viewer_token", r#""lock:**""#),
    ("reader", "slt_reader_token", r#""read:team-a/**""#),
    ("root", "slt_root_token", r#""admin:**""#),
];

fn principals_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for (name, token, grants) in PRINCIPALS {
        text.push_str(&format!(
            "[[principal]]\nname = \"{name}\"\ngrants = [{grants}]\n[[token]]\nprincipal = \"{name}\"\nsha256 = \"{}\"\n",
            TokenHash::of(token).to_hex()
        ));
    }
    let path = dir.join("principals.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Server {
    app: Router,
    auth: Arc<Authenticator>,
    _dir: tempfile::TempDir,
}

fn server(store: Arc<dyn ObjectStore>, locking: LockPolicy) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let auth = Arc::new(Authenticator::load(&principals_file(dir.path())).unwrap());
    let mut config = HttpConfig::new(common::BUCKET);
    config.auth = Some(auth.clone());
    config.locking = locking;
    Server {
        app: router(AppState::new(store, config)),
        auth,
        _dir: dir,
    }
}

fn basic(name: &str, token: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{token}"));
    format!("Basic {pair}")
}

async fn call_as(app: &Router, auth: Option<&str>, method: &str, uri: &str, body: String) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    send(app, request.body(Body::from(body)).unwrap()).await
}

async fn as_principal(app: &Router, name: &str, method: &str, uri: &str, body: String) -> Reply {
    let token = PRINCIPALS.iter().find(|p| p.0 == name).unwrap().1;
    call_as(app, Some(&basic(name, token)), method, uri, body).await
}

#[tokio::test]
async fn refused_requests_are_401_or_403_and_reach_no_store() {
    let counting = Arc::new(FaultyStore::new(memory_store()));
    let s = server(counting.clone(), LockPolicy::default());
    let team_b = "/v1/states/team-b/prod/terraform.tfstate";
    let rollback = format!("/v1/api/states/{KEY}/rollback?to=x");

    let cases: Vec<(Option<String>, &str, &str, StatusCode, &str)> = vec![
        (None, "GET", URL, StatusCode::UNAUTHORIZED, "no credentials"),
        (
            Some(basic("ci-a", "slt_wrong")),
            "GET",
            URL,
            StatusCode::UNAUTHORIZED,
            "unknown principal or wrong token",
        ),
        (
            Some(basic("nobody", "slt_ci_a_token")),
            "GET",
            URL,
            StatusCode::UNAUTHORIZED,
            "unknown principal or wrong token",
        ),
        (
            Some("Basic !!notbase64".into()),
            "GET",
            URL,
            StatusCode::UNAUTHORIZED,
            "not valid base64",
        ),
        (
            Some("Digest abc".into()),
            "GET",
            URL,
            StatusCode::UNAUTHORIZED,
            "unsupported Authorization scheme",
        ),
        (
            Some("Bearer slt_wrong".into()),
            "GET",
            "/v1/api/states",
            StatusCode::UNAUTHORIZED,
            "wrong token",
        ),
        (
            Some(basic("ci-a", "slt_ci_a_token")),
            "POST",
            team_b,
            StatusCode::FORBIDDEN,
            "lacks the write permission on state team-b/prod/terraform.tfstate",
        ),
        (
            Some(basic("ci-a", "slt_ci_a_token")),
            "GET",
            team_b,
            StatusCode::FORBIDDEN,
            "lacks the read permission",
        ),
        (
            Some(basic("ci-a", "slt_ci_a_token")),
            "LOCK",
            team_b,
            StatusCode::FORBIDDEN,
            "lacks the lock permission",
        ),
        (
            Some(basic("viewer", "slt_viewer_token")),
            "POST",
            URL,
            StatusCode::FORBIDDEN,
            "\"viewer\" lacks the write permission",
        ),
        (
            Some(basic("viewer", "slt_viewer_token")),
            "DELETE",
            URL,
            StatusCode::FORBIDDEN,
            "lacks the write permission",
        ),
        (
            Some(basic("reader", "slt_reader_token")),
            "LOCK",
            URL,
            StatusCode::FORBIDDEN,
            "lacks the lock permission",
        ),
        (
            Some(basic("ci-a", "slt_ci_a_token")),
            "UNLOCK",
            URL,
            StatusCode::FORBIDDEN,
            "lacks the admin permission",
        ),
        (
            Some(basic("ci-a", "slt_ci_a_token")),
            "POST",
            &rollback,
            StatusCode::FORBIDDEN,
            "lacks the admin permission",
        ),
    ];
    for (auth, method, uri, status, needle) in cases {
        // An empty UNLOCK body is a force-unlock.
        let body = if method == "UNLOCK" {
            String::new()
        } else {
            state(1)
        };
        let reply = call_as(&s.app, auth.as_deref(), method, uri, body).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.text());
        assert!(
            reply.text().contains(needle),
            "{method} {uri}: {}",
            reply.text()
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenges: Vec<_> = reply
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .collect();
            assert!(
                challenges[0]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic realm=\"statelock\""),
                "{challenges:?}"
            );
            assert_eq!(
                challenges.len(),
                if uri.starts_with("/v1/api/") { 2 } else { 1 },
                "{challenges:?}"
            );
        }
        // Tokens never come back in an answer.
        assert!(!reply.text().contains("slt_"), "{}", reply.text());
    }
    let calls: usize = counting.call_counts().iter().map(|(_, n)| n).sum();
    assert_eq!(
        calls,
        0,
        "refused requests reached the store: {:?}",
        counting.call_counts()
    );
}

#[tokio::test]
async fn each_permission_allows_its_requests() {
    let s = server(memory_store(), LockPolicy::default());
    let ci = Holder::new("ci@runner");
    let lock_uri = URL;
    // write implies lock: the whole Terraform apply sequence.
    assert_eq!(
        as_principal(&s.app, "ci-a", "LOCK", lock_uri, ci.body())
            .await
            .status,
        StatusCode::OK
    );
    let write = format!("{URL}?ID={}", ci.info.id);
    assert_eq!(
        as_principal(&s.app, "ci-a", "POST", &write, state(1))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        as_principal(&s.app, "ci-a", "UNLOCK", URL, ci.body())
            .await
            .status,
        StatusCode::OK
    );

    // lock implies read; plan's sequence works, its UNLOCK with its own record too.
    let viewer = Holder::new("viewer@laptop");
    assert_eq!(
        as_principal(&s.app, "viewer", "GET", URL, String::new())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        as_principal(&s.app, "viewer", "LOCK", URL, viewer.body())
            .await
            .status,
        StatusCode::OK
    );
    // Force-unlock (empty body, and ID-only) needs admin, even for the holder's own lock.
    assert_eq!(
        as_principal(&s.app, "viewer", "UNLOCK", URL, String::new())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let id_only = format!(r#"{{"ID":"{}"}}"#, viewer.info.id);
    assert_eq!(
        as_principal(&s.app, "viewer", "UNLOCK", URL, id_only)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_principal(&s.app, "root", "UNLOCK", URL, String::new())
            .await
            .status,
        StatusCode::OK
    );

    // The Bearer form works on the API; the listing shows only what the caller may read.
    let other = "/v1/states/team-b/x.tfstate";
    assert_eq!(
        as_principal(&s.app, "root", "POST", other, state(1))
            .await
            .status,
        StatusCode::OK
    );
    let listed = |reply: Reply| -> Vec<String> {
        reply.json()["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let root = call_as(
        &s.app,
        Some("Bearer slt_root_token"),
        "GET",
        "/v1/api/states",
        String::new(),
    )
    .await;
    assert_eq!(
        listed(root),
        vec![KEY.to_owned(), "team-b/x.tfstate".to_owned()]
    );
    let reader = call_as(
        &s.app,
        Some("Bearer slt_reader_token"),
        "GET",
        "/v1/api/states",
        String::new(),
    )
    .await;
    assert_eq!(listed(reader), vec![KEY.to_owned()]);
    let versions = format!("/v1/api/states/{KEY}/versions");
    let versions = call_as(
        &s.app,
        Some("Bearer slt_reader_token"),
        "GET",
        &versions,
        String::new(),
    )
    .await;
    assert_eq!(versions.status, StatusCode::OK, "{}", versions.text());
    let id = versions.json()["versions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rollback = format!("/v1/api/states/{KEY}/rollback?to={id}");
    assert_eq!(
        as_principal(&s.app, "root", "POST", &rollback, String::new())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn taking_over_an_idle_lock_needs_admin() {
    let policy = LockPolicy {
        ttl: Some(Duration::from_millis(100)),
        ..LockPolicy::default()
    };
    let s = server(memory_store(), policy);
    let crashed = Holder::new("crashed@ci");
    assert_eq!(
        as_principal(&s.app, "ci-a", "LOCK", URL, crashed.body())
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let next = Holder::new("next@ci");
    let refused = as_principal(&s.app, "ci-a", "LOCK", URL, next.body()).await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.text());
    assert_eq!(refused.text(), crashed.stored());
    let admin = as_principal(&s.app, "root", "LOCK", URL, next.body()).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.text());
}

#[tokio::test]
async fn reload_replaces_principals_and_a_broken_file_keeps_the_old_ones() {
    let s = server(memory_store(), LockPolicy::default());
    assert_eq!(
        get(&s.app, basic("root", "slt_root_token")).await.status,
        StatusCode::OK
    );
    std::fs::write(
        s.auth.path(),
        "[[principal]]\nname = \"root\"\ncolour = 1\n",
    )
    .unwrap();
    assert!(s.auth.reload().is_err());
    assert_eq!(
        get(&s.app, basic("root", "slt_root_token")).await.status,
        StatusCode::OK
    );
    let rotated = format!(
        "[[principal]]\nname = \"root\"\ngrants = [\"admin:**\"]\n[[token]]\nprincipal = \"root\"\nsha256 = \"{}\"\n",
        TokenHash::of("slt_new_root").to_hex()
    );
    std::fs::write(s.auth.path(), rotated).unwrap();
    assert_eq!(s.auth.reload().unwrap(), 1);
    assert_eq!(
        get(&s.app, basic("root", "slt_root_token")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&s.app, basic("root", "slt_new_root")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&s.app, basic("ci-a", "slt_ci_a_token")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn get(app: &Router, auth: String) -> Reply {
    call_as(app, Some(&auth), "GET", "/v1/api/states", String::new()).await
}
