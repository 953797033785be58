//! Terraform's own `backend "s3"` pointed at `statelock serve`'s S3 front (`endpoints.s3`),
//! with nothing else changed: workspaces, locks through `use_lockfile`, the server's lock
//! queue and history, and the same states and `.tflock` objects as the `http` front and as
//! Terraform on the bucket directly.
//!
//! Index:
//! - `workflow_through_the_s3_front_on_local_disk_1_15_5`: init, apply, plan, workspaces
//!   (new, list, select, delete), `state pull`, the `http` front and history reading the
//!   same states, a held lock refused with its holder, `force-unlock` of a killed apply
//! - `the_front_and_terraform_on_the_bucket_exclude_each_other_on_moto_1_15_5`: both ways,
//!   in the default workspace and in `dev`, with the holder shown
//! - `queued_applies_through_the_s3_front_all_succeed_1_15_5`: 8 concurrent applies, no
//!   `-lock-timeout`, all served by the queue
//! - `terraform_1_0_3_through_the_s3_front`: the SDK v1 client (ListObjects v1,
//!   Content-MD5), which has no `use_lockfile`
//! - `a_state_above_5_mib_is_uploaded_multipart_through_the_s3_front_1_15_5`: a 6 MiB output
//!   read with `file()`, uploaded by the SDK's upload manager in parts, written once

use statelock_test_support::{Terraform, moto};

use crate::harness::{
    PendingApply, S3Locking, Server, StoreSpec, Workdir, apply_all_at_once, lock_info, text,
};

const KEY: &str = "team-a/app.tfstate";

/// The bucket a server on a fresh local directory exposes: the directory's name.
const LOCAL_BUCKET: &str = "data";

/// The output `n` of the state `w` reads (`-var n=...` makes it a string).
fn output_n(w: &Workdir) -> String {
    let pulled: serde_json::Value = serde_json::from_str(&w.ok(&["state", "pull"])).unwrap();
    pulled["outputs"]["n"]["value"].as_str().unwrap().to_owned()
}

fn lock_events_so_far(server: &Server) -> usize {
    server.log().matches("lock acquired").count()
}

#[test]
fn workflow_through_the_s3_front_on_local_disk_1_15_5() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    w.apply_ok(1);
    w.ok(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=1"]);
    // The http front serves the very state the S3 front wrote, and the history has it.
    assert_eq!(server.state(KEY)["outputs"]["n"]["value"], "1");
    let (status, versions) =
        server.request_path("GET", &format!("/v1/api/states/{KEY}/versions"), "");
    assert_eq!(status, 200, "{versions}");
    let versions: serde_json::Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );

    // Workspaces: `env:/dev/<key>`, as on S3.
    w.ok(&["workspace", "new", "dev"]);
    w.apply_ok(2);
    let listed = w.ok(&["workspace", "list"]);
    assert!(
        listed.contains("default") && listed.contains("* dev"),
        "{listed}"
    );
    assert_eq!(
        server.state(&format!("env:/dev/{KEY}"))["outputs"]["n"]["value"],
        "2"
    );
    w.ok(&["workspace", "select", "default"]);
    assert_eq!(output_n(&w), "1");
    w.ok(&["workspace", "delete", "-force", "dev"]);
    let (status, _) = server.request("GET", &format!("env:/dev/{KEY}"), "");
    assert_eq!(status, 404, "the dev workspace's state is deleted");
    assert!(!w.ok(&["workspace", "list"]).contains("dev"));

    // A held lock: another working directory is refused and shown the holder.
    let other = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    let before = lock_events_so_far(&server);
    let mut pending = PendingApply::start(&w, 3);
    pending.wait_until("the lock is taken", || lock_events_so_far(&server) > before);
    let refused = other.apply_with(4, &["-lock-timeout=0s"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
    println!("refused through the S3 front:\n{stderr}");

    // The holder is killed mid-apply: its lock stays until force-unlock removes it.
    pending.kill();
    let stuck = other.apply_with(4, &["-lock-timeout=0s"]);
    assert!(!stuck.status.success(), "{}", text(&stuck));
    other.ok(&["force-unlock", "-force", &shown.id]);
    other.apply_ok(5);
    assert_eq!(output_n(&w), "5");
    assert!(server.log().contains("lock released"), "{}", server.log());
}

#[test]
fn the_front_and_terraform_on_the_bucket_exclude_each_other_on_moto_1_15_5() {
    let s3 = moto();
    let store = StoreSpec::fresh_bucket(s3);
    let StoreSpec::S3 { bucket, .. } = &store else {
        unreachable!()
    };
    let server = Server::start_on(&store, &[]);
    let locking = S3Locking::lockfile();
    let via = Workdir::s3_front(Terraform::V1_15_5, &server, bucket, KEY, &locking);
    let direct = Workdir::s3_backend(Terraform::V1_15_5, s3, bucket, KEY, &locking);
    via.apply_ok(1);
    assert_eq!(
        output_n(&direct),
        "1",
        "the front wrote the bucket's own state object"
    );

    for workspace in ["default", "dev"] {
        let state_key = if workspace == "default" {
            KEY.to_owned()
        } else {
            via.ok(&["workspace", "new", workspace]);
            direct.ok(&["workspace", "select", workspace]);
            format!("env:/{workspace}/{KEY}")
        };
        // Terraform on the bucket holds the lock: the front refuses and shows the holder.
        let mut pending = PendingApply::start(&direct, 2);
        let record = pending.wait_for_lock_object(s3, bucket, &state_key);
        let refused = via.apply_with(3, &["-lock-timeout=0s"]);
        assert!(!refused.status.success(), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
        assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
        pending.answer("yes");
        assert_eq!(
            output_n(&via),
            "2",
            "[{workspace}] the front reads the bucket's state"
        );

        // Through the front holds it: Terraform on the bucket sees the same lock object.
        let mut pending = PendingApply::start(&via, 4);
        let record = pending.wait_for_lock_object(s3, bucket, &state_key);
        assert_eq!(record["Path"], format!("{bucket}/{state_key}"), "{record}");
        let refused = direct.apply_with(5, &["-lock-timeout=0s"]);
        assert!(!refused.status.success(), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let shown = lock_info(&stderr).unwrap_or_else(|| panic!("no Lock Info in:\n{stderr}"));
        assert_eq!(shown.id, record["ID"].as_str().unwrap(), "{stderr}");
        println!("[{workspace}] on the bucket while the front holds the lock:\n{stderr}");
        pending.answer("yes");
        assert_eq!(output_n(&direct), "4", "[{workspace}]");
        assert!(s3.object(bucket, &format!("{state_key}.tflock")).is_none());
    }
}

#[test]
fn queued_applies_through_the_s3_front_all_succeed_1_15_5() {
    let server = Server::start_with(&["--lock-wait", "5m"], &[]);
    let dirs: Vec<Workdir> = (0..8)
        .map(|_| {
            Workdir::s3_front(
                Terraform::V1_15_5,
                &server,
                LOCAL_BUCKET,
                KEY,
                &S3Locking::lockfile(),
            )
        })
        .collect();
    dirs[0].apply_ok(0);
    let first = server.serial(KEY);
    let outs = apply_all_at_once(&dirs, &[]);
    for (i, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "apply {i} failed:\n{}", text(out));
    }
    assert_eq!(server.serial(KEY), first + 8, "every apply landed once");
    let waited = server
        .log()
        .matches("lock request waits for the lock")
        .count();
    println!("8 applies through the S3 front: {waited} waited in the server's queue");
    assert!(waited > 0, "no apply waited: the test proved nothing");
}

#[test]
fn terraform_1_0_3_through_the_s3_front() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_0_3,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::default(),
    );
    w.apply_ok(1);
    w.ok(&["workspace", "new", "dev"]);
    w.apply_ok(2);
    assert!(w.ok(&["workspace", "list"]).contains("* dev"));
    assert_eq!(output_n(&w), "2");
    assert_eq!(server.state(KEY)["outputs"]["n"]["value"], "1");
    assert_eq!(
        server.state(&format!("env:/dev/{KEY}"))["outputs"]["n"]["value"],
        "2"
    );
}

/// Files under `dir`, recursively (the local store's objects end in `.o`).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_state_above_5_mib_is_uploaded_multipart_through_the_s3_front_1_15_5() {
    let server = Server::start();
    let w = Workdir::s3_front(
        Terraform::V1_15_5,
        &server,
        LOCAL_BUCKET,
        KEY,
        &S3Locking::lockfile(),
    );
    // 6 MiB is too big for argv, so the value comes from a file; sensitive keeps it out of
    // apply's output.
    let big: String = (0..6 * 1024 * 1024 / 16)
        .map(|i| format!("{i:015x}-"))
        .collect();
    std::fs::write(w.path().join("big.txt"), &big).unwrap();
    std::fs::write(
        w.path().join("big.tf"),
        "output \"big\" {\n  value     = file(\"big.txt\")\n  sensitive = true\n}\n",
    )
    .unwrap();
    w.apply_ok(1);

    let log = server.log();
    let multipart: Vec<&str> = log.lines().filter(|l| l.contains("multipart")).collect();
    println!(
        "the server's multipart log lines:\n{}",
        multipart.join("\n")
    );
    assert!(
        log.contains("multipart upload completed"),
        "Terraform did not upload the state multipart:\n{log}"
    );
    assert!(log.matches("multipart part stored").count() >= 2, "{log}");

    let (status, stored) = server.request("GET", KEY, "");
    assert_eq!(status, 200);
    assert!(stored.len() > 6 * 1024 * 1024, "{}", stored.len());
    let pulled = w.ok(&["state", "pull"]);
    assert_eq!(
        pulled.trim_end(),
        stored.trim_end(),
        "state pull is the stored state"
    );
    let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(parsed["outputs"]["big"]["value"], big.as_str());

    // A second big apply is the next serial, through the stale-write guard again.
    std::fs::write(w.path().join("big.txt"), big.replace('-', "+")).unwrap();
    w.apply_ok(2);
    assert_eq!(server.serial(KEY), parsed["serial"].as_u64().unwrap() + 1);
    assert_eq!(
        server.log().matches("multipart upload completed").count(),
        2
    );
    w.ok(&["plan", "-input=false", "-detailed-exitcode", "-var", "n=2"]);

    let reserved = server.local_store().join("objects/.statelock.d");
    assert!(
        reserved.join("history.d").is_dir(),
        "the local store's layout changed"
    );
    let uploads = reserved.join("uploads.d");
    let left = files_under(&uploads);
    assert!(left.is_empty(), "upload objects left behind: {left:?}");
}
