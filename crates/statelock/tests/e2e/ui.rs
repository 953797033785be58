//! The web UI in a real browser (Debian's chromium through playwright-core, `ui/driver.rs`)
//! against a real `statelock serve`, with real Terraform applies: the states list and the
//! timeline, a held lock that disappears live when Terraform releases it, force-unlock,
//! a rollback from the timeline, sensitive outputs never on a page, cross-site POSTs
//! refused, and sessions with principals (an admin may, a read-only principal may not).
//! The screenshots the README shows are written here (`driver::screenshot_dir`).
//!
//! Cost: two servers, four Terraform runs and one chromium, about 20 s.

mod driver;

use serde_json::json;
use statelock_test_support::{Terraform, free_port};

use crate::harness::auth::{basic, create_token, request_as};
use crate::harness::{PendingApply, SECRET_PREFIX, Server, Workdir};
use driver::Browser;

const HOLDER: &str = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"alice@laptop","Version":"1.15.5","Created":"2026-01-01T00:00:00Z","Path":""}"#;

fn ui(server: &Server, page: &str) -> String {
    format!("http://{}/ui/{page}", server.addr)
}

/// The lock holder's `Who` from the JSON API's listing, if `key` is locked.
fn lock_holder(server: &Server, key: &str) -> Option<String> {
    let (status, body) = server.request_path("GET", "/v1/api/states", "");
    holder_in_listing(status, &body, key)
}

/// The `Who` of `key`'s lock in a `GET /v1/api/states` answer, which must be a 200.
fn holder_in_listing(status: u16, body: &str, key: &str) -> Option<String> {
    assert_eq!(status, 200, "{body}");
    let listing: serde_json::Value = serde_json::from_str(body).unwrap();
    listing["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .and_then(|s| s["lock"]["who"].as_str().map(str::to_owned))
}

fn history_ids(server: &Server, key: &str) -> Vec<String> {
    let (status, body) = server.request_path("GET", &format!("/v1/api/states/{key}/versions"), "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn applies_show_up_a_lock_goes_live_and_rollback_and_force_unlock_work() {
    let server = Server::start_with(&["--no-s3-front", "--audit-store"], &[]);
    let mut b = Browser::start();

    // Nothing yet: the page says what to do, with the backend block for this server.
    assert_eq!(b.goto(&ui(&server, "")), 200);
    let empty = b.text("#empty");
    assert!(
        empty.contains("No states yet: point Terraform here"),
        "{empty}"
    );
    assert!(empty.contains(&server.url("terraform.tfstate")), "{empty}");
    b.screenshot("empty", false);

    // Terraform 1.0.3 applies twice, 1.15.5 once, each on its own state.
    let app = Workdir::new(Terraform::V1_0_3, &server, "team/app.tfstate");
    app.apply_ok(1);
    app.apply_ok(2);
    let web = Workdir::new(Terraform::V1_15_5, &server, "team/web.tfstate");
    web.apply_ok(7);

    b.goto(&ui(&server, ""));
    let rows = b.texts("#states tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("team/web.tfstate"),
        "newest change first: {rows:?}"
    );
    let app_row = b.text(r#"#states tr[data-key="team/app.tfstate"]"#);
    assert!(app_row.contains("unlocked"), "{app_row}");
    assert!(
        app_row.contains(&server.serial("team/app.tfstate").to_string()),
        "{app_row}"
    );
    b.screenshot("states", false);
    b.context_sized("phone", 390, 844);
    b.goto(&ui(&server, ""));
    b.screenshot("states-phone", false);
    b.context("main");

    // One state: outputs without the sensitive value, the timeline with every version.
    b.goto(&ui(&server, "state?key=team%2Fapp.tfstate"));
    let page = b.html();
    assert!(
        !page.contains(SECRET_PREFIX),
        "a sensitive value is on the page"
    );
    let outputs = b.text("#outputs-table");
    assert!(outputs.contains("sensitive"), "{outputs}");
    assert!(b.text("#serial") == server.serial("team/app.tfstate").to_string());
    let ids = history_ids(&server, "team/app.tfstate");
    let shown = b.texts("#timeline li[data-version]");
    assert_eq!(shown.len(), ids.len(), "{shown:?}");
    assert!(shown[0].contains("current"), "{shown:?}");
    assert!(
        b.text("#timeline").contains("unlock"),
        "audit lock events on the timeline"
    );
    b.screenshot("state", true);

    // The newest version against the one before: output n went from 1 to 2.
    b.click(&format!(
        r#"li[data-version="{}"] a:text("what changed")"#,
        ids[0]
    ));
    let diff = b.text("#output-diff");
    assert!(diff.contains("\"1\"") && diff.contains("\"2\""), "{diff}");
    assert!(diff.contains("sensitive"), "{diff}");
    assert!(!b.html().contains(SECRET_PREFIX));
    b.screenshot("diff", false);

    // The raw JSON of the current state, byte for byte.
    b.goto(&ui(&server, "state?key=team%2Fapp.tfstate"));
    let (name, text) = b.download(r#"a:text("current state (JSON)")"#);
    assert!(name.ends_with(".json"), "{name}");
    assert_eq!(text, server.request("GET", "team/app.tfstate", "").1);

    // A held lock shows its holder, then disappears without a reload when released.
    let mut pending = PendingApply::start(&app, 3);
    pending.wait_until("the apply holds the lock", || {
        lock_holder(&server, "team/app.tfstate").is_some()
    });
    b.goto(&ui(&server, "locks"));
    let row = b.text(r#"#locks tr[data-key="team/app.tfstate"]"#);
    assert!(row.contains("Apply") && row.contains("1.0.3"), "{row}");
    b.screenshot("locks", false);
    b.eval("window.__same_page = 1");
    pending.answer("no");
    assert_eq!(lock_holder(&server, "team/app.tfstate"), None);
    b.wait(
        r#"#locks tr[data-key="team/app.tfstate"]"#,
        "detached",
        15_000,
    )
    .expect("the released lock leaves the open page");
    assert_eq!(
        b.eval("window.__same_page"),
        json!(1),
        "updated in place, not reloaded"
    );
    assert!(b.text("#no-locks").contains("No state is locked"));

    // Rollback from the timeline to the first version: a new serial with its content.
    let before = server.serial("team/app.tfstate");
    let first = server.state("team/app.tfstate");
    let oldest = ids.last().unwrap().clone();
    b.goto(&ui(&server, "state?key=team%2Fapp.tfstate"));
    b.click(&format!(
        r#"li[data-version="{oldest}"] a:text("roll back to this")"#
    ));
    let plan = b.text("#plan");
    assert!(plan.contains(&format!("{}", before + 1)), "{plan}");
    b.screenshot("rollback", false);
    assert_eq!(b.click("#confirm-rollback button"), Some(200));
    let after = server.state("team/app.tfstate");
    let done = b.text("#done");
    assert!(done.contains(&after["serial"].to_string()), "{done}");
    assert_eq!(after["serial"], before + 1);
    assert_eq!(after["lineage"], first["lineage"]);
    let (_, oldest_body) = server.request_path(
        "GET",
        &format!("/v1/api/states/team/app.tfstate/versions/{oldest}"),
        "",
    );
    let oldest: serde_json::Value = serde_json::from_str(&oldest_body).unwrap();
    assert_eq!(after["outputs"]["n"], oldest["outputs"]["n"]);
    assert_ne!(
        after["outputs"]["n"], first["outputs"]["n"],
        "the content changed back"
    );

    // Force-unlock from the locks page, confirmed by name (no principals: loopback).
    assert_eq!(server.request("LOCK", "team/web.tfstate", HOLDER).0, 200);
    b.goto(&ui(&server, "locks"));
    b.click(r#"tr[data-key="team/web.tfstate"] a:text("Force-unlock")"#);
    let holder = b.text("#holder");
    assert!(
        holder.contains("alice@laptop") && holder.contains("11111111-"),
        "{holder}"
    );
    b.screenshot("unlock", false);
    b.click("#confirm-unlock button");
    assert!(b.text("#done").contains("team/web.tfstate"));
    assert_eq!(lock_holder(&server, "team/web.tfstate"), None);

    // A page on another site that posts the same form is refused and changes nothing.
    assert_eq!(server.request("LOCK", "team/web.tfstate", HOLDER).0, 200);
    let target = ui(&server, "unlock");
    let origin = format!("http://localhost:{}", free_port());
    let (status, body) = b.cross_site_post(
        &origin,
        &target,
        json!({"key": "team/web.tfstate", "id": "11111111-2222-3333-4444-555555555555", "csrf": "guess"}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cross-site request refused"), "{body}");
    assert_eq!(
        lock_holder(&server, "team/web.tfstate").as_deref(),
        Some("alice@laptop")
    );

    // The audit trail kept in the store, filtered by action.
    b.goto(&ui(&server, "audit?action=force-unlock"));
    let audit = b.text("#audit");
    assert!(audit.contains("team/web.tfstate"), "{audit}");
    b.goto(&ui(&server, "audit"));
    b.screenshot("audit", false);
}

#[test]
fn with_principals_a_session_is_needed_and_only_admins_may_force_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("principals.toml");
    let ops = create_token(&file, "ops", &["admin:**"]);
    let viewer = create_token(&file, "viewer", &["read:**"]);
    let principals = file.to_str().unwrap();
    let server = Server::start_with(&["--no-s3-front", "--principals", principals], &[]);
    let key = "prod/net.tfstate";
    let auth = basic("ops", &ops);
    let state = r#"{"version":4,"serial":1,"lineage":"L","outputs":{"pw":{"value":"s3cr3t-value-x","type":"string","sensitive":true}},"resources":[]}"#;
    let (status, _, body) = request_as(
        &server.addr,
        Some(&auth),
        "POST",
        &format!("/v1/states/{key}"),
        state,
    );
    assert_eq!(status, 200, "{body}");
    let lock = |_: ()| {
        request_as(
            &server.addr,
            Some(&auth),
            "LOCK",
            &format!("/v1/states/{key}"),
            HOLDER,
        )
        .0
    };
    assert_eq!(lock(()), 200);

    let mut b = Browser::start();
    // No session: the login page, which leads back to where the browser was going.
    b.goto(&ui(&server, "locks"));
    assert!(b.url().contains("/ui/login?next="), "{}", b.url());
    b.fill(r#"input[name="token"]"#, "slt_wrong");
    assert_eq!(b.click(r#"form.login button"#), Some(401));
    assert!(b.text(".error").contains("wrong token"));
    b.screenshot("login", false);
    b.fill(r#"input[name="token"]"#, &viewer);
    b.click(r#"form.login button"#);
    assert!(b.url().ends_with("/ui/locks"), "{}", b.url());
    let cookie = b
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "statelock_session")
        .expect("the session cookie");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    assert_eq!(cookie["secure"], false, "no TLS here");
    assert_eq!(cookie["path"], "/ui/");
    // The viewer sees the lock but may not remove it, even with a same-origin POST that
    // carries the session's own CSRF token.
    let row = b.text(&format!(r#"#locks tr[data-key="{key}"]"#));
    assert!(
        row.contains("alice@laptop") && row.contains("needs admin"),
        "{row}"
    );
    let refused = b.eval(&format!(
        r#"(async () => {{
            const csrf = document.querySelector('form.who input[name="csrf"]').value;
            const r = await fetch('/ui/unlock', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
                body: 'key={key}&id=11111111-2222-3333-4444-555555555555&csrf=' + csrf}});
            return r.status;
        }})()"#
    ));
    assert_eq!(refused, json!(403));
    assert_eq!(
        lock_holder_as(&server, &auth, key).as_deref(),
        Some("alice@laptop")
    );
    b.goto(&ui(&server, &format!("state?key={key}")));
    assert!(!b.html().contains(SECRET_PREFIX));
    // The cookie is a credential on the UI's paths only, never for the API or the backend.
    let session = format!("statelock_session={}", cookie["value"].as_str().unwrap());
    assert_eq!(get_with_cookie(&server.addr, "/ui/locks", &session), 200);
    assert_eq!(
        get_with_cookie(&server.addr, "/v1/api/states", &session),
        401
    );
    assert_eq!(
        get_with_cookie(&server.addr, &format!("/v1/states/{key}"), &session),
        401
    );

    // The admin, in a browser of its own, may.
    b.context("ops");
    b.goto(&ui(&server, &format!("unlock?key={key}")));
    b.fill(r#"input[name="token"]"#, &ops);
    b.fill(r#"input[name="principal"]"#, "ops");
    b.click(r#"form.login button"#);
    assert!(b.text("#holder").contains("alice@laptop"));
    b.click("#confirm-unlock button");
    assert!(b.text("#done").contains(key));
    assert_eq!(lock_holder_as(&server, &auth, key), None);
    // Signing out ends the session.
    b.click(r#"form.who button"#);
    b.goto(&ui(&server, "locks"));
    assert!(b.url().contains("/ui/login"), "{}", b.url());
}

fn lock_holder_as(server: &Server, auth: &str, key: &str) -> Option<String> {
    let (status, _, body) = request_as(&server.addr, Some(auth), "GET", "/v1/api/states", "");
    holder_in_listing(status, &body, key)
}

/// The status of a GET of `path` that carries only `cookie`.
fn get_with_cookie(addr: &str, path: &str, cookie: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply[9..12].parse().unwrap()
}
