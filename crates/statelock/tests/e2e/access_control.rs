//! Access control end to end, with real Terraform (1.0.3 and 1.15.5) logging in with
//! `username`/`password` (the token in `TF_HTTP_PASSWORD`), principals made by
//! `statelock token create`, and the server reloading them on SIGHUP.
//!
//! Index:
//! - `terraform_with_principals_*`: a writer applies; a `lock:` principal (what iam-policy calls
//!   read-only) plans but its apply is refused with 403; a `read:` principal plans with
//!   -lock=false only; a team-a principal cannot touch team-b; no or a wrong password is 401;
//!   no token appears in the server's log
//!   nor in the audit trail, which records each lock, write, unlock and refusal; /metrics
//!   counts the refusals
//! - `sighup_loads_new_tokens`: a token created while the server runs works after SIGHUP
//! - `refuses_to_serve_the_network_without_principals`: 0.0.0.0 without principals
//! - `principals_on_the_s3_front_1_15_5`: Terraform 1.15.5's `backend "s3"` signing with the
//!   credentials `statelock token s3` prints: a writer applies (workspaces too) and the audit
//!   trail names it; another team's principal is refused (403 AccessDenied), a wrong secret
//!   (SignatureDoesNotMatch) and an unknown access key are refused, and nothing changes;
//!   while its apply holds the lock, another principal of the same team cannot write the
//!   state (`-lock=false`), the refusal naming the principal that holds it

use std::process::Command;

use statelock_test_support::Terraform;

use crate::harness::auth::{basic, create_token, request_as, s3_credentials, workdir_as};
use crate::harness::{PendingApply, S3Locking, Server, Workdir, text};

const TEAM_A: &str = "team-a/prod/terraform.tfstate";
const TEAM_B: &str = "team-b/prod/terraform.tfstate";

#[test]
fn terraform_with_principals_1_0_3() {
    terraform_with_principals(Terraform::V1_0_3);
}

#[test]
fn terraform_with_principals_1_15_5() {
    terraform_with_principals(Terraform::V1_15_5);
}

fn terraform_with_principals(tf: Terraform) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("principals.toml");
    let writer = create_token(&file, "ci-team-a", &["write:team-a/**"]);
    let planner = create_token(&file, "planner", &["lock:**"]);
    let reader = create_token(&file, "reader", &["read:**"]);
    let admin = create_token(&file, "root", &["admin:**"]);
    let audit = dir.path().join("audit.log");
    let server = Server::start_with(
        &[
            "--principals",
            file.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
        &[("STATELOCK_LOG", "debug")],
    );

    let w = workdir_as(tf, &server, TEAM_A, "ci-team-a", &writer, "");
    w.ok(&["init", "-input=false"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=1"]);
    let (status, _, body) = request_as(
        &server.addr,
        Some(&basic("root", &admin)),
        "GET",
        &format!("/v1/states/{TEAM_A}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let stored = body;

    // The planner locks and reads, so plan works; apply's write is refused, and Terraform
    // shows the 403.
    let p = workdir_as(tf, &server, TEAM_A, "planner", &planner, "");
    p.ok(&["init", "-input=false"]);
    let plan = p.run(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=1"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let apply = p.fails(&["apply", "-input=false", "-auto-approve", "-var", "n=2"]);
    println!("{tf} apply as a lock-only principal printed:\n{apply}");
    assert!(apply.contains("HTTP error: 403"), "{apply}");
    let (_, _, after) = request_as(
        &server.addr,
        Some(&basic("root", &admin)),
        "GET",
        &format!("/v1/states/{TEAM_A}"),
        "",
    );
    assert_eq!(after, stored, "a refused apply changed the state");
    assert!(
        server.log().contains(
            "\"planner\" lacks the write permission on state team-a/prod/terraform.tfstate"
        ),
        "{}",
        server.log()
    );

    // A read-only principal cannot even take plan's lock, only plan with -lock=false.
    let r = workdir_as(tf, &server, TEAM_A, "reader", &reader, "");
    r.ok(&["init", "-input=false"]);
    let locked_plan = r.fails(&["plan", "-input=false", "-var", "n=1"]);
    println!("{tf} plan as a read-only principal printed:\n{locked_plan}");
    assert!(locked_plan.contains("invalid auth"), "{locked_plan}");
    r.ok(&["plan", "-input=false", "-lock=false", "-var", "n=1"]);

    // team-a's principal on team-b's state: refused from the first read.
    let b = workdir_as(tf, &server, TEAM_B, "ci-team-a", &writer, "");
    let init = b.run(&["init", "-input=false"]);
    let output = format!(
        "{}{}",
        text(&init),
        if init.status.success() {
            b.fails(&["apply", "-input=false", "-auto-approve", "-var", "n=1"])
        } else {
            String::new()
        }
    );
    println!("{tf} on team-b as the team-a principal printed:\n{output}");
    assert!(output.contains("invalid auth"), "{output}");
    assert!(
        server.log().contains(
            "\"ci-team-a\" lacks the read permission on state team-b/prod/terraform.tfstate"
        ),
        "{}",
        server.log()
    );
    let (status, _, _) = request_as(
        &server.addr,
        Some(&basic("root", &admin)),
        "GET",
        &format!("/v1/states/{TEAM_B}"),
        "",
    );
    assert_eq!(status, 404, "nothing was written to team-b");

    // No password, and a wrong one: 401, which Terraform reports as "requires auth".
    let anonymous =
        crate::harness::Workdir::uninitialised(tf, &server.url(TEAM_A), "", "", Vec::new());
    let refused = anonymous.fails(&["init", "-input=false"]);
    assert!(refused.contains("requires auth"), "{refused}");
    let wrong = workdir_as(tf, &server, TEAM_A, "ci-team-a", "slt_not-the-token", "");
    let refused = wrong.fails(&["init", "-input=false"]);
    assert!(refused.contains("requires auth"), "{refused}");

    // The audit trail: the writer's apply, the planner's refused write, the anonymous init.
    let trail = std::fs::read_to_string(&audit).unwrap();
    println!("audit trail:\n{trail}");
    let events: Vec<(String, String, String)> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            (
                e["principal"].as_str().unwrap_or("-").to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["key"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let has = |who: &str, action: &str, key: &str| {
        events.contains(&(who.to_owned(), action.to_owned(), key.to_owned()))
    };
    assert!(
        has("ci-team-a", "lock", TEAM_A)
            && has("ci-team-a", "write", TEAM_A)
            && has("ci-team-a", "unlock", TEAM_A),
        "{trail}"
    );
    assert!(
        has("planner", "lock", TEAM_A) && has("planner", "denied", TEAM_A),
        "{trail}"
    );
    assert!(
        has("ci-team-a", "denied", TEAM_B) && has("-", "denied", "-"),
        "{trail}"
    );
    assert!(
        !events.iter().any(|e| e.0 == "planner" && e.1 == "write"),
        "{trail}"
    );

    // /metrics needs no credentials and counts the refusals by operation and status.
    let (status, _, metrics) = request_as(&server.addr, None, "GET", "/metrics", "");
    assert_eq!(status, 200, "{metrics}");
    for line in [
        "statelock_requests_total{operation=\"write\",status=\"403\"} 1",
        "statelock_requests_total{operation=\"lock\",status=\"403\"} 1",
        "statelock_requests_total{operation=\"read\",status=\"401\"} 2",
        "statelock_requests_total{operation=\"write\",status=\"200\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains("team-a"), "metrics never name keys");

    let log = server.log();
    assert!(log.contains("request refused: not authenticated"), "{log}");
    for (name, token) in [
        ("ci-team-a", &writer),
        ("planner", &planner),
        ("reader", &reader),
        ("root", &admin),
    ] {
        assert!(
            !log.contains(token.as_str()),
            "a token is in the server log:\n{log}"
        );
        assert!(
            !log.contains(&basic(name, token)["Basic ".len()..]),
            "a Basic header is in the server log"
        );
        assert!(
            !trail.contains(token.as_str()),
            "a token is in the audit trail"
        );
    }
}

#[test]
fn sighup_loads_new_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("principals.toml");
    let first = create_token(&file, "ops", &["admin:**"]);
    let server = Server::start_with(&["--principals", file.to_str().unwrap()], &[]);
    let list = |token: &str| {
        request_as(
            &server.addr,
            Some(&format!("Bearer {token}")),
            "GET",
            "/v1/api/states",
            "",
        )
        .0
    };
    assert_eq!(list(&first), 200);

    let second = create_token(&file, "ops", &[]);
    assert_eq!(list(&second), 401, "not loaded before SIGHUP");
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut status = 0;
    for _ in 0..100 {
        status = list(&second);
        if status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 200, "{}", server.log());
    assert_eq!(list(&first), 200, "the first token still works");
    assert!(
        server.log().contains("SIGHUP: principals reloaded"),
        "{}",
        server.log()
    );
}

#[test]
fn refuses_to_serve_the_network_without_principals() {
    let out = crate::harness::statelock_command()
        .args(["serve", "--listen", "0.0.0.0:0", "--store", "memory://"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
}

/// A `backend "s3"` working directory on `server`'s S3 front signing as `id`/`secret`.
fn s3_workdir_as(server: &Server, key: &str, id: &str, secret: &str) -> Workdir {
    let mut w = Workdir::s3_front_uninitialised(
        Terraform::V1_15_5,
        server,
        "data",
        key,
        &S3Locking::lockfile(),
    );
    w.env
        .retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && k != "AWS_SECRET_ACCESS_KEY");
    w.env.push(("AWS_ACCESS_KEY_ID".to_owned(), id.to_owned()));
    w.env
        .push(("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()));
    w
}

#[test]
fn principals_on_the_s3_front_1_15_5() {
    let dir = tempfile::tempdir().unwrap();
    let principals = dir.path().join("principals.toml");
    let key_file = dir.path().join("s3.key");
    create_token(
        &principals,
        "ci-a",
        &["write:team-a/**", "write:env:/*/team-a/**"],
    );
    create_token(&principals, "ci-b", &["write:team-b/**"]);
    let (id_a, secret_a) = s3_credentials(&principals, &key_file, "ci-a");
    let (id_b, secret_b) = s3_credentials(&principals, &key_file, "ci-b");
    assert_eq!(id_a, "ci-a");
    assert_ne!(secret_a, secret_b);
    assert!(
        !std::fs::read_to_string(&principals)
            .unwrap()
            .contains(&secret_a)
    );
    let audit = dir.path().join("audit.log");
    let server = Server::start_with(
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--s3-secret-key-file",
            key_file.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
        &[],
    );

    let writer = s3_workdir_as(&server, TEAM_A, &id_a, &secret_a);
    writer.ok(&["init", "-input=false"]);
    writer.apply_ok(1);
    writer.ok(&["workspace", "new", "dev"]);
    writer.apply_ok(2);
    let trail = std::fs::read_to_string(&audit).unwrap();
    let writes: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["action"] == "write")
        .collect();
    // `workspace new` writes the new workspace's empty state, then the two applies.
    assert_eq!(writes.len(), 3, "{trail}");
    assert!(writes.iter().all(|l| l["principal"] == "ci-a"), "{trail}");
    assert!(writes.iter().all(|l| l["remote"].is_string()), "{trail}");
    assert!(!trail.contains(&secret_a));

    // Team b's principal may not touch team a's state.
    let other = s3_workdir_as(&server, TEAM_A, &id_b, &secret_b);
    let refused = other.run(&["init", "-input=false"]);
    let refused = if refused.status.success() {
        other.fails(&["apply", "-input=false", "-auto-approve", "-var", "n=9"])
    } else {
        text(&refused)
    };
    assert!(
        refused.contains("AccessDenied") || refused.contains("403"),
        "{refused}"
    );

    // A wrong secret and an unknown access key are refused before anything is looked at.
    let forged = s3_workdir_as(&server, TEAM_A, &id_a, &secret_b);
    let refused = text(&forged.run(&["init", "-input=false"]));
    assert!(refused.contains("SignatureDoesNotMatch"), "{refused}");
    let unknown = s3_workdir_as(&server, TEAM_A, "nobody", &secret_a);
    let refused = text(&unknown.run(&["init", "-input=false"]));
    assert!(refused.contains("InvalidAccessKeyId"), "{refused}");

    // Nothing changed: team a's state is still the writer's.
    let pulled: serde_json::Value = serde_json::from_str(&writer.ok(&["state", "pull"])).unwrap();
    assert_eq!(pulled["outputs"]["n"]["value"], "2");
    writer.ok(&["workspace", "select", "default"]);
    let pulled: serde_json::Value = serde_json::from_str(&writer.ok(&["state", "pull"])).unwrap();
    assert_eq!(pulled["outputs"]["n"]["value"], "1");

    // Fencing by principal: while ci-a's apply holds the lock, another principal with the
    // same grants cannot write the state, not even with -lock=false; ci-a's apply then lands.
    create_token(&principals, "ci-a2", &["write:team-a/**"]);
    let reload = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(reload.success());
    let (id_a2, secret_a2) = s3_credentials(&principals, &key_file, "ci-a2");
    let colleague = s3_workdir_as(&server, TEAM_A, &id_a2, &secret_a2);
    let locks_before = server.log().matches("lock acquired").count();
    let mut pending = PendingApply::start(&writer, 3);
    pending.wait_until("ci-a holds the lock", || {
        server.log().matches("lock acquired").count() > locks_before
    });
    // The reload is asynchronous: wait until ci-a2 is known (a listing needs no grant).
    let mut init = colleague.run(&["init", "-input=false"]);
    for _ in 0..50 {
        if init.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        init = colleague.run(&["init", "-input=false"]);
    }
    assert!(init.status.success(), "{}", text(&init));
    let refused = colleague.fails(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-lock=false",
        "-var",
        "n=8",
    ]);
    assert!(
        refused.contains("PreconditionFailed") && refused.contains("taken by principal ci-a"),
        "{refused}"
    );
    pending.answer("yes");
    let pulled: serde_json::Value = serde_json::from_str(&writer.ok(&["state", "pull"])).unwrap();
    assert_eq!(pulled["outputs"]["n"]["value"], "3");
    colleague.apply_ok(4);
}
