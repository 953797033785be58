//! `statelock serve --dynamodb-table`: Terraform 1.0.3 through the server and Terraform 1.0.3
//! on `backend "s3"` with `dynamodb_table` exclude each other in both directions, the server
//! keeps the `-md5` digest current for the latter, and `migrate dynamodb ... usage` tells
//! their DynamoDB use apart from the server's, on moto (S3 and DynamoDB on one port).

use statelock_test_support::Terraform;
use std::time::{Duration, Instant};

use crate::harness::PendingApply;
use crate::harness::dynamo::Setup;
use crate::harness::{Server, StoreSpec, Workdir, holder_id, text};
use statelock_test_support::moto;

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
