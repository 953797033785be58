//! End to end with real Terraform, 1.0.3 and 1.15.5, through `backend "http"` against
//! `statelock serve` on a local-disk store and on SeaweedFS. Outputs-only configurations, so no
//! provider is downloaded. Each scenario runs once per release (`_1_0_3`, `_1_15_5`).
//!
//! Index:
//! - `workflow`: init, apply, plan, output, `state push` refused by the guard, `force-unlock`
//! - `concurrent_applies`: applies started together, without waiting for the lock: they run one
//!   at a time (the server's lock log alternates), each loser names the holder's lock ID
//! - `history_rollback`: two applies leave two versions in the history API; a rollback to the
//!   first brings its output back for `terraform output`

use std::process::Output;

use crate::harness::{
    Server, StoreSpec, Workdir, apply_all_at_once, holder_id, lock_events, log_ids, text,
};
use statelock_test_support::{Terraform, seaweedfs};

const HOLDER_ID: &str = "11111111-2222-3333-4444-555555555555";

#[test]
fn workflow_on_local_disk_1_0_3() {
    workflow(Terraform::V1_0_3, &Server::start());
}

#[test]
fn workflow_on_local_disk_1_15_5() {
    workflow(Terraform::V1_15_5, &Server::start());
}

#[test]
fn workflow_on_seaweedfs_1_0_3() {
    workflow(
        Terraform::V1_0_3,
        &Server::start_on(&StoreSpec::fresh_bucket(seaweedfs()), &[]),
    );
}

#[test]
fn workflow_on_seaweedfs_1_15_5() {
    workflow(
        Terraform::V1_15_5,
        &Server::start_on(&StoreSpec::fresh_bucket(seaweedfs()), &[]),
    );
}

fn workflow(tf: Terraform, server: &Server) {
    let key = "team-a/prod/terraform.tfstate";
    let w = Workdir::new(tf, server, key);

    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=1"]);
    let first = server.state(key);
    assert_eq!(first["outputs"]["n"]["value"], "1");
    let serial = first["serial"].as_u64().unwrap();
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=2"]);
    let second = server.state(key);
    assert_eq!(second["serial"].as_u64().unwrap(), serial + 1);
    assert_eq!(second["lineage"], first["lineage"]);

    let plan = w.run(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=2"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert_eq!(w.ok(&["output", "-raw", "n"]), "2");

    // A foreign lineage: Terraform itself refuses without -force; with -force (invisible on
    // the wire) the server's guard refuses it.
    let foreign = r#"{"version":4,"terraform_version":"1.0.3","serial":100,"lineage":"ffffffff-0000-0000-0000-000000000000","outputs":{},"resources":[]}"#;
    std::fs::write(w.path().join("foreign.tfstate"), foreign).unwrap();
    let before = server.request("GET", key, "").1;
    let client_side = w.fails(&["state", "push", "foreign.tfstate"]);
    assert!(client_side.contains("lineage"), "{client_side}");
    let server_side = w.fails(&["state", "push", "-force", "foreign.tfstate"]);
    assert!(server_side.contains("HTTP error: 409"), "{server_side}");
    assert!(
        server.log().contains("over unrelated state with lineage"),
        "{}",
        server.log()
    );
    assert_eq!(server.request("GET", key, "").1, before);

    // Someone else's lock: plan fails naming it; force-unlock (empty UNLOCK body) removes it.
    let lock = format!(
        r#"{{"ID":"{HOLDER_ID}","Operation":"OperationTypeApply","Info":"","Who":"someone@elsewhere","Version":"1.0.3","Created":"2024-01-01T00:00:00Z","Path":""}}"#
    );
    assert_eq!(server.request("LOCK", key, &lock).0, 200);
    let blocked = w.fails(&["plan", "-input=false", "-var", "n=2"]);
    assert_eq!(holder_id(&blocked).as_deref(), Some(HOLDER_ID), "{blocked}");
    println!("{tf} plan against a held lock printed:\n{blocked}");
    let unlocked = w.ok(&["force-unlock", "-force", HOLDER_ID]);
    assert!(unlocked.contains("successfully unlocked"), "{unlocked}");
    assert!(server.log().contains("force-unlock: lock removed"));
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=3"]);
    assert_eq!(server.state(key)["serial"].as_u64().unwrap(), serial + 2);
}

#[test]
fn concurrent_applies_1_0_3() {
    concurrent_applies(Terraform::V1_0_3);
}

#[test]
fn concurrent_applies_1_15_5() {
    concurrent_applies(Terraform::V1_15_5);
}

fn concurrent_applies(tf: Terraform) {
    const RUNS: usize = 6;
    let server = Server::start();
    let key = "shared.tfstate";
    let dirs: Vec<Workdir> = (0..RUNS).map(|_| Workdir::new(tf, &server, key)).collect();
    dirs[0].ok(&["apply", "-input=false", "-auto-approve", "-var", "n=0"]);
    let start_serial = server.state(key)["serial"].as_u64().unwrap();

    let outputs = apply_all_at_once(&dirs, &["-lock-timeout=0s"]);

    let log = server.log();
    let acquired: Vec<String> = log_ids(&log, "lock acquired");
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    let losers: Vec<&Output> = outputs.iter().filter(|o| !o.status.success()).collect();
    println!(
        "{tf}: {winners} of {RUNS} concurrent applies won; {} lost",
        losers.len()
    );
    assert!(winners >= 1, "no apply succeeded");
    assert!(
        !losers.is_empty(),
        "no apply overlapped another: the test proved nothing"
    );
    for loser in &losers {
        let stderr = String::from_utf8_lossy(&loser.stderr);
        let id = holder_id(&stderr).unwrap_or_else(|| panic!("no holder ID in:\n{stderr}"));
        assert!(
            acquired.contains(&id),
            "{id} was never a holder; server log:\n{log}"
        );
    }
    if let Some(loser) = losers.first() {
        println!(
            "a loser's stderr:\n{}",
            String::from_utf8_lossy(&loser.stderr)
        );
    }

    // One holder at a time: every acquire after the first follows a release.
    let events = lock_events(&log);
    assert!(
        events.chunks(2).all(|p| p == ["acquire", "release"]),
        "lock events do not alternate: {events:?}"
    );
    assert_eq!(acquired.len(), 1 + winners, "{events:?}");
    assert_eq!(
        server.state(key)["serial"].as_u64().unwrap(),
        start_serial + winners as u64
    );
}

#[test]
fn history_rollback_1_0_3() {
    history_rollback(Terraform::V1_0_3);
}

#[test]
fn history_rollback_1_15_5() {
    history_rollback(Terraform::V1_15_5);
}

fn history_rollback(tf: Terraform) {
    let server = Server::start();
    let key = "team-h/terraform.tfstate";
    let w = Workdir::new(tf, &server, key);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=1"]);
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=2"]);
    let serial = server.state(key)["serial"].as_u64().unwrap();

    let (status, body) = server.request_path("GET", &format!("/v1/api/states/{key}/versions"), "");
    assert_eq!(status, 200, "{body}");
    let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
    let versions = listing["versions"].as_array().unwrap();
    assert!(versions.len() >= 2, "{body}");
    // Applies write under their lock, so the holder's `Who` is recorded.
    assert!(
        versions
            .iter()
            .all(|v| v["kind"] == "write" && v["who"] != "unknown"),
        "{body}"
    );
    let first = versions
        .iter()
        .rev()
        .find(|v| {
            let (_, b) = server.request_path(
                "GET",
                &format!(
                    "/v1/api/states/{key}/versions/{}",
                    v["id"].as_str().unwrap()
                ),
                "",
            );
            serde_json::from_str::<serde_json::Value>(&b).unwrap()["outputs"]["n"]["value"] == "1"
        })
        .expect("a version with n = 1");

    let (status, body) = server.request_path(
        "POST",
        &format!(
            "/v1/api/states/{key}/rollback?to={}",
            first["id"].as_str().unwrap()
        ),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.state(key)["serial"].as_u64().unwrap(), serial + 1);
    assert_eq!(w.ok(&["output", "-raw", "n"]), "1");
    // Terraform carries on from the rolled-back state.
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=3"]);
    assert_eq!(server.state(key)["serial"].as_u64().unwrap(), serial + 2);
}
