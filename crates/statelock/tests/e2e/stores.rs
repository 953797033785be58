//! S3-compatible stores as they really behave, end to end: LocalStack (which answers 501 to a
//! conditional DELETE) and Ceph RGW 16 (which refuses the quoted ETag it returned, ignores
//! `If-Match` on DELETE, and ignores `If-None-Match` on versioned buckets). On each, the
//! probe's two verdicts name what the store did and what statelock works around; `serve`
//! starts without `--allow-unsafe-store`; Terraform 1.0.3 and 1.15.5 apply through it twice in
//! a row each (so every release worked) and force-unlock works; Terraform 1.15.5's own lockfile locking
//! works on the bucket; and `locks unlock` says it used the read-compare-delete fallback.
//!
//! Index:
//! - `localstack`, `ceph_rgw_unversioned`: the whole round above
//! - `ceph_rgw_versioned_buckets_are_unsafe_for_lockfile_locking`: the probe says why

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use statelock_test_support::{S3Server, Terraform, ceph_rgw, unique_name};

use crate::harness::{
    PendingApply, S3Locking, Server, StoreSpec, Workdir, holder_id, statelock_command,
    statelock_on, text,
};
use crate::probe_cli::probe_bucket;

/// The line of `out`'s stdout that starts with `start`.
fn line(out: &Output, start: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no {start:?} line in:\n{}", text(out)))
        .to_owned()
}

/// What a store is expected to show.
struct Expect {
    /// Substrings of the probe's table that must appear: what the store did.
    probe_says: &'static [&'static str],
    /// The reason `locks unlock` and the server give for the plain delete.
    fallback_reason: &'static str,
}

fn round(server: &'static S3Server, expect: &Expect) {
    let bucket = unique_name("statelock-stores");
    server.create_bucket(&bucket, false);

    // 1. The probe: both verdicts positive, and the quirks named.
    let out = probe_bucket(server, &bucket, &[]);
    let report = text(&out);
    eprintln!("probe[{}]:\n{report}", server.name);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        line(&out, "Terraform/OpenTofu use_lockfile locking: ").contains(": safe, because"),
        "{report}"
    );
    let serve_verdict = line(&out, "statelock serve: ");
    assert!(serve_verdict.contains(": can run, because"), "{report}");
    assert!(serve_verdict.contains("handled: "), "{report}");
    for said in expect.probe_says {
        assert!(report.contains(said), "{said:?} not in:\n{report}");
    }

    // 2. serve starts on it without --allow-unsafe-store, and says what it works around.
    let store = StoreSpec::S3 {
        server,
        bucket: bucket.clone(),
    };
    let srv = Server::start_on(&store, &[]);
    let log = srv.log();
    assert!(log.contains("store honours conditional writes"), "{log}");
    assert!(log.contains("store quirk handled"), "{log}");

    // 3. Terraform through it: two applies in a row (the first one's lock was released),
    // then force-unlock of someone else's lock, and a third apply.
    let key = "team-a/app.tfstate";
    let via = Workdir::new(Terraform::V1_0_3, &srv, key);
    via.apply_ok(1);
    via.apply_ok(2);
    assert_eq!(via.ok(&["output", "-raw", "n"]), "2");
    let holder = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"someone@elsewhere","Version":"1.0.3","Created":"2026-01-01T00:00:00Z","Path":""}"#;
    assert_eq!(srv.request("LOCK", key, holder).0, 200);
    let blocked = via.fails(&["plan", "-input=false", "-var", "n=2"]);
    assert_eq!(
        holder_id(&blocked).as_deref(),
        Some("11111111-2222-3333-4444-555555555555"),
        "{blocked}"
    );
    let unlocked = via.ok(&[
        "force-unlock",
        "-force",
        "11111111-2222-3333-4444-555555555555",
    ]);
    assert!(unlocked.contains("successfully unlocked"), "{unlocked}");
    via.apply_ok(3);
    // Terraform 1.15.5 through it too, twice in a row on the same state.
    let modern = Workdir::new(Terraform::V1_15_5, &srv, key);
    modern.apply_ok(4);
    modern.apply_ok(5);
    assert_eq!(via.ok(&["output", "-raw", "n"]), "5");
    let log = srv.log();
    assert!(
        log.contains("deleting the lock object unconditionally"),
        "{log}"
    );
    assert!(log.contains(expect.fallback_reason), "{log}");
    // Five applies and a force-unlock: six lock objects removed by the fallback, counted for
    // monitoring.
    let (status, metrics) = srv.request_path("GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "statelock_lock_release_fallbacks_total 6"),
        "{metrics}"
    );
    drop(srv);

    // 4. Terraform 1.15.5's own lockfile locking on the bucket: applies, a stuck lock left by
    // SIGKILL, which `locks unlock` removes by the fallback, saying so.
    let direct_key = "direct/app.tfstate";
    let tf = Workdir::s3_backend(
        Terraform::V1_15_5,
        server,
        &bucket,
        direct_key,
        &S3Locking::lockfile(),
    );
    tf.apply_ok(1);
    tf.apply_ok(2);
    let lock_key = format!("{direct_key}.tflock");
    let mut pending = PendingApply::start(&tf, 3);
    let stuck = pending.wait_for_lock_object(server, &bucket, direct_key);
    pending.kill();
    let unlock = statelock_on(
        server,
        &bucket,
        &[
            "locks",
            "unlock",
            direct_key,
            "--id",
            stuck["ID"].as_str().unwrap(),
        ],
    );
    let said = text(&unlock);
    eprintln!("locks unlock[{}]:\n{said}", server.name);
    assert_eq!(unlock.status.code(), Some(0), "{said}");
    assert!(said.contains("plain delete ("), "{said}");
    assert!(said.contains(expect.fallback_reason), "{said}");
    assert_eq!(server.object(&bucket, &lock_key), None);
    tf.apply_ok(4);
    assert_eq!(tf.ok(&["output", "-raw", "n"]), "4");
}

#[test]
fn localstack() {
    round(
        statelock_test_support::localstack(),
        &Expect {
            probe_says: &[
                "conditional delete (If-Match) with a stale ETag",
                "refused as not implemented (501 Not Implemented)",
                "handled: DELETE with If-Match answers 501 Not Implemented",
            ],
            fallback_reason: "DELETE with If-Match answers 501 Not Implemented",
        },
    );
}

#[test]
fn ceph_rgw_unversioned() {
    round(
        ceph_rgw(),
        &Expect {
            probe_says: &[
                "refused the ETag",
                "it had just returned; accepted it unquoted",
                "accepted: the object was removed although its ETag differed",
                "handled: If-Match refuses the quoted ETag",
                "handled: DELETE ignores If-Match",
            ],
            fallback_reason: "DELETE ignores If-Match",
        },
    );
}

#[test]
fn ceph_rgw_versioned_buckets_are_unsafe_for_lockfile_locking() {
    let server = ceph_rgw();
    let bucket = unique_name("statelock-stores-v");
    server.create_bucket(&bucket, true);
    let out = probe_bucket(server, &bucket, &[]);
    let report = text(&out);
    eprintln!("probe[ceph-rgw, versioned]:\n{report}");
    assert_eq!(out.status.code(), Some(3), "{report}");
    let lockfile = line(&out, "Terraform/OpenTofu use_lockfile locking: ");
    assert!(
        lockfile.contains(
            "UNSAFE, because second create-if-absent (If-None-Match: *) of an existing key: \
             accepted, so the store ignores If-None-Match"
        ),
        "{report}"
    );
    assert!(
        report.contains("more than one client can hold a lock at once"),
        "{report}"
    );
    // serve refuses it, naming the failed checks (and is killed if it starts instead).
    let mut child = statelock_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--s3-path-style"])
        .arg(format!("--store=s3://{bucket}"))
        .arg(format!("--s3-endpoint={}", server.endpoint))
        .envs(server.aws_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("serve started on a versioned RGW bucket:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = child.wait_with_output().unwrap();
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("refusing to serve") && said.contains("ignores If-None-Match"),
        "{said}"
    );
}
