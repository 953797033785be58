//! `statelock serve --dynamodb-table`: Terraform 1.0.3 through the server and Terraform 1.0.3
//! on `backend "s3"` with `dynamodb_table` exclude each other in both directions, the server
//! keeps the `-md5` digest current for the latter, and `migrate dynamodb ... usage` tells
//! their DynamoDB use apart from the server's, on moto (S3 and DynamoDB on one port).

use std::time::{Duration, Instant};

use crate::harness::PendingApply;
use crate::harness::dynamo::Setup;
use crate::harness::{Server, StoreSpec, Workdir, holder_id, text};
use statelock_test_support::{Terraform, moto};

fn start_server(setup: &Setup, dual: bool) -> Server {
    let store = StoreSpec::S3 {
        server: setup.server,
        bucket: setup.bucket.clone(),
    };
    let endpoint = setup.server.endpoint.clone();
    let mut extra = vec![];
    if dual {
        extra = vec![
            "--dynamodb-table",
            &setup.table,
            "--dynamodb-endpoint",
            &endpoint,
        ];
    }
    Server::start_on(&store, &extra)
}

fn apply_ok(w: &Workdir, n: usize) {
    let out = w.apply(n);
    assert!(
        out.status.success(),
        "terraform apply failed:\n{}",
        text(&out)
    );
}

/// The ID in the DynamoDB lock item of `key`, once a client holds it.
fn wait_for_dynamodb_lock(setup: &Setup, key: &str) -> String {
    let lock_id = format!("{}/{key}", setup.bucket);
    setup.wait_for_items("the DynamoDB lock", |items| {
        items
            .iter()
            .any(|i| i["LockID"] == lock_id.as_str() && i.get("Info").is_some())
    });
    let info = setup.item(&lock_id).unwrap()["Info"]
        .as_str()
        .unwrap()
        .to_owned();
    let record: serde_json::Value = serde_json::from_str(&info).unwrap();
    record["ID"].as_str().unwrap().to_owned()
}

#[test]
fn terraform_through_the_server_and_terraform_on_dynamodb_exclude_each_other() {
    let setup = Setup::new(moto());
    let server = start_server(&setup, true);
    let via_server = Workdir::new(Terraform::V1_0_3, &server, "app.tfstate");
    let direct = setup.terraform(Terraform::V1_0_3, "app.tfstate");
    apply_ok(&via_server, 1);

    // 1. Terraform through the server holds the lock: both objects exist, and Terraform on
    // `dynamodb_table` is refused, naming that holder.
    let pending = PendingApply::start(&via_server, 2);
    let id = wait_for_dynamodb_lock(&setup, "app.tfstate");
    let tflock = setup
        .object("app.tfstate.tflock")
        .expect("the .tflock lock");
    assert!(tflock.contains(&id), "{tflock}");
    let refused = direct.fails(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-lock-timeout=0s",
        "-var",
        "n=9",
    ]);
    println!("terraform on dynamodb_table while the server's client holds the lock:\n{refused}");
    assert!(
        refused.contains("Error acquiring the state lock"),
        "{refused}"
    );
    assert!(
        refused.contains(&id),
        "the holder's ID {id} is not named:\n{refused}"
    );
    pending.answer("yes");
    assert_eq!(
        setup.item(&format!("{}/app.tfstate", setup.bucket)),
        None,
        "UNLOCK must release DynamoDB too"
    );
    assert_eq!(setup.object("app.tfstate.tflock"), None);

    // 2. Terraform on `dynamodb_table` holds the lock: the server takes the .tflock lock,
    // finds the DynamoDB item held, rolls the .tflock back and answers 423 with the holder.
    let pending = PendingApply::start(&direct, 3);
    let id = wait_for_dynamodb_lock(&setup, "app.tfstate");
    let refused = via_server.apply(9);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!(
        "terraform through the server while terraform on dynamodb_table holds the lock:\n{stderr}"
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert_eq!(holder_id(&stderr).as_deref(), Some(id.as_str()), "{stderr}");
    assert_eq!(
        setup.object("app.tfstate.tflock"),
        None,
        "the .tflock lock must be rolled back"
    );
    assert!(server.log().contains("DynamoDB table"), "{}", server.log());
    pending.answer("yes");

    let out = via_server.ok(&["output", "-raw", "n"]);
    assert_eq!(out.trim(), "3");
}

#[test]
fn server_writes_keep_the_digest_for_clients_on_dynamodb() {
    let setup = Setup::new(moto());
    let server = start_server(&setup, true);
    let via_server = Workdir::new(Terraform::V1_0_3, &server, "env/prod.tfstate");
    let direct = setup.terraform(Terraform::V1_0_3, "env/prod.tfstate");
    for n in [4, 5] {
        apply_ok(&via_server, n);
        let digest = setup
            .item(&format!("{}/env/prod.tfstate-md5", setup.bucket))
            .unwrap();
        let body = setup.object("env/prod.tfstate").unwrap();
        assert_eq!(
            digest["Digest"],
            statelock_dynamodb::md5_hex(body.as_bytes()).as_str()
        );
        assert_eq!(digest["WrittenBy"], "statelock");

        let start = Instant::now();
        let out = direct.run(&["output", "-raw", "n"]);
        println!(
            "terraform output on dynamodb_table after a server write took {:.1?}",
            start.elapsed()
        );
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.to_string());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("expected content"));
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "Terraform waited for the digest"
        );
    }
    // And the other way round: Terraform on DynamoDB writes, the server reads and locks.
    direct.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=6"]);
    assert_eq!(via_server.ok(&["output", "-raw", "n"]).trim(), "6");
    apply_ok(&via_server, 7);
    assert_eq!(direct.ok(&["output", "-raw", "n"]).trim(), "7");

    // A rollback (to the oldest write, n = 4) through the API is a state write too: the
    // digest follows it.
    let (status, body) = server.request_path("GET", "/v1/api/states/env/prod.tfstate/versions", "");
    assert_eq!(status, 200, "{body}");
    let versions: serde_json::Value = serde_json::from_str(&body).unwrap();
    let oldest = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|v| v["kind"] == "write")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = server.request_path(
        "POST",
        &format!("/v1/api/states/env/prod.tfstate/rollback?to={oldest}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    assert_eq!(direct.ok(&["output", "-raw", "n"]).trim(), "4");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "Terraform waited for the digest"
    );

    // Deleting the state deletes its digest, as Terraform's workspace delete does.
    let (status, body) = server.request("DELETE", "env/prod.tfstate", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        setup.item(&format!("{}/env/prod.tfstate-md5", setup.bucket)),
        None
    );
}

#[test]
fn the_usage_check_reports_terraform_on_dynamodb_and_is_silent_after_cut_over() {
    let setup = Setup::new(moto());
    let since = statelock_core::Timestamp::now().to_rfc3339();
    let usage = |setup: &Setup| {
        let out = setup.migrate(&["usage", "--since", &since]);
        println!("usage: {}", text(&out));
        out
    };
    let server = start_server(&setup, true);
    let via_server = Workdir::new(Terraform::V1_0_3, &server, "app.tfstate");
    apply_ok(&via_server, 1);
    let out = usage(&setup);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the server's own writes must not count"
    );

    let direct = setup.terraform(Terraform::V1_0_3, "app.tfstate");
    direct.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=2"]);
    let out = usage(&setup);
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("app.tfstate") && stdout.contains("digest"),
        "{stdout}"
    );

    // A lock held right now by Terraform on DynamoDB is reported with its holder.
    let pending = PendingApply::start(&direct, 3);
    wait_for_dynamodb_lock(&setup, "app.tfstate");
    let out = usage(&setup);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Terraform/OpenTofu 1.0.3"),
        "{}",
        text(&out)
    );
    pending.answer("no");
    // Terraform 1.0.3 leaves nothing behind when the apply is declined.
    assert_eq!(setup.item(&format!("{}/app.tfstate", setup.bucket)), None);

    // Cut-over: nobody uses the table any more; the next write leaves the digest stale.
    drop(server);
    let server = start_server(&setup, false);
    apply_ok(&Workdir::new(Terraform::V1_0_3, &server, "app.tfstate"), 4);
    let out = usage(&setup);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No client has written"));
}

/// The three kinds of client of a migration in progress, on one state: Terraform 1.15.5 with
/// `use_lockfile` and `dynamodb_table` (its own dual locking, spec §2.7), Terraform 1.0.3 on
/// `dynamodb_table` only, and Terraform 1.0.3 through the dual-lock server. Whichever holds
/// the lock, the other two are refused and name it; `migrate dynamodb` sees the 1.15.5 lock
/// and refuses to cut over while it is held; applies started together land one at a time
/// (1.15.5's may lose its retry to its own read-back race, which the test names).
#[test]
fn a_migration_in_progress_never_has_two_holders() {
    let setup = Setup::new(moto());
    let server = start_server(&setup, true);
    let key = "mixed.tfstate";
    let dual = setup.terraform(Terraform::V1_15_5, key);
    let old = setup.terraform(Terraform::V1_0_3, key);
    let via = Workdir::new(Terraform::V1_0_3, &server, key);
    dual.apply_ok(1);
    let clients = [
        (
            "Terraform 1.15.5 with use_lockfile and dynamodb_table",
            &dual,
        ),
        ("Terraform 1.0.3 on dynamodb_table", &old),
        ("Terraform 1.0.3 through the dual-lock server", &via),
    ];
    let tflock = format!("{key}.tflock");

    for (holder, (holder_name, holder_dir)) in clients.iter().enumerate() {
        let pending = PendingApply::start(holder_dir, 10 + holder);
        let id = wait_for_dynamodb_lock(&setup, key);
        // The 1.15.5 client and the server take the `.tflock` lock first, then DynamoDB.
        let file_lock = setup.object(&tflock);
        assert_eq!(
            file_lock.is_some(),
            holder != 1,
            "{holder_name}: .tflock {file_lock:?}"
        );
        if holder == 0 {
            let survey = setup.migrate(&["--json"]);
            assert_eq!(survey.status.code(), Some(0), "{}", text(&survey));
            let survey = String::from_utf8_lossy(&survey.stdout);
            assert!(
                survey.contains(&id) && survey.contains("1.15.5"),
                "{survey}"
            );
            let cut_over = setup.migrate(&["--apply"]);
            assert_eq!(cut_over.status.code(), Some(2), "{}", text(&cut_over));
        }
        for (other, (other_name, other_dir)) in clients.iter().enumerate() {
            if other == holder {
                continue;
            }
            let refused = other_dir.apply_with(20 + other, &["-lock-timeout=0s"]);
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                !refused.status.success(),
                "{other_name} applied while {holder_name} held the lock:\n{}",
                text(&refused)
            );
            assert!(
                stderr.contains(&id),
                "{other_name} does not name {holder_name} ({id}):\n{stderr}"
            );
            println!("{other_name} while {holder_name} holds the lock: refused, naming {id}");
        }
        pending.answer("yes");
        assert_eq!(setup.item(&format!("{}/{key}", setup.bucket)), None);
        assert_eq!(setup.object(&tflock), None, "{holder_name} left a .tflock");
        assert_eq!(dual.ok(&["output", "-raw", "n"]), (10 + holder).to_string());
    }

    // All three at once, each waiting its own way (Terraform's retries, the server's queue):
    // every apply lands, one after another.
    let queued = Workdir::with_lock_query(Terraform::V1_0_3, &server, key, "?wait=5m");
    let clients = [&dual, &old, &queued];
    let serial = |setup: &Setup| -> u64 {
        let state: serde_json::Value = serde_json::from_str(&setup.object(key).unwrap()).unwrap();
        state["serial"].as_u64().unwrap()
    };
    let before = serial(&setup);
    let outputs = std::thread::scope(|scope| {
        let runs: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, w)| scope.spawn(move || w.apply_with(30 + i, &["-lock-timeout=2m"])))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    // Both clients have a lock race of their own, in which a free lock makes the run fail
    // without a holder's record, so `-lock-timeout` does not retry: Terraform 1.15.5's
    // lockfile create is refused (412) and the holder releases before the read-back (404);
    // both releases read a DynamoDB item mid-release after a refused PutItem ("unexpected
    // end of JSON input", terraform#32690; 1.15.5 takes its DynamoDB lock too, so it can
    // lose either race). Neither is the store's or ours (docs/terraform-versions.md); any
    // other failure fails the test, and at least one apply must land.
    let races: [(Terraform, &[&str]); 3] = [
        (Terraform::V1_15_5, &["PreconditionFailed", "NoSuchKey"]),
        (
            Terraform::V1_15_5,
            &[
                "ConditionalCheckFailedException",
                "unexpected end of JSON input",
            ],
        ),
        (Terraform::V1_0_3, &["unexpected end of JSON input"]),
    ];
    let mut landed = 0;
    for (w, out) in clients.iter().zip(&outputs) {
        if out.status.success() {
            landed += 1;
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let known = races
            .iter()
            .any(|(tf, signs)| *tf == w.terraform && signs.iter().all(|s| stderr.contains(s)));
        assert!(known, "{}:\n{}", w.terraform, text(out));
        println!(
            "{} lost its lock retry to the client's own race:\n{stderr}",
            w.terraform
        );
    }
    assert!(landed >= 1, "no apply landed");
    assert_eq!(
        serial(&setup),
        before + landed,
        "every apply that landed is in the state, one after another"
    );
    assert_eq!(
        setup.items().len(),
        1,
        "only the digest item is left: {:?}",
        setup.items()
    );
}
