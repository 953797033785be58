//! End to end with real Terraform: the lock queue (`?wait=` on the lock address) and graceful
//! shutdown with a LOCK waiting. Terraform 1.0.3 never retries a held lock itself, so without
//! the queue only one of several concurrent applies would succeed (that case is
//! `terraform.rs`'s `concurrent_applies`). Terraform 1.15.5 retries a 423 itself when given
//! `-lock-timeout`; the two waits combine as `docs/terraform-versions.md` describes.
//!
//! Index:
//! - `queued_applies_all_succeed_in_turn_*`: 8 concurrent applies through `?wait=`
//! - `server_wait_and_client_lock_timeout_1_15_5`: a short server wait inside a longer client
//!   retry loop, and a long server wait outlasting a short `-lock-timeout`
//! - `sigterm_answers_a_waiting_lock`: SIGTERM while a LOCK waits: 423 with the holder, exit

use statelock_test_support::Terraform;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, Workdir, apply_all_at_once, lock_events, request, text};

#[test]
fn queued_applies_all_succeed_in_turn_1_0_3() {
    queued_applies_all_succeed_in_turn(Terraform::V1_0_3);
}

#[test]
fn queued_applies_all_succeed_in_turn_1_15_5() {
    queued_applies_all_succeed_in_turn(Terraform::V1_15_5);
}

fn queued_applies_all_succeed_in_turn(tf: Terraform) {
    const RUNS: usize = 8;
    let server = Server::start();
    let key = "queued.tfstate";
    let dirs: Vec<Workdir> = (0..RUNS)
        .map(|_| Workdir::with_lock_query(tf, &server, key, "?wait=5m"))
        .collect();
    let first = dirs[0].apply(0);
    assert!(first.status.success(), "{}", text(&first));
    let start_serial = server.serial(key);

    let started = Instant::now();
    let outputs = apply_all_at_once(&dirs, &[]);
    println!("{tf}: {RUNS} queued applies took {:?}", started.elapsed());
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
    }
    assert_eq!(server.serial(key), start_serial + RUNS as u64);

    // One holder at a time, and every apply held the lock once (plus the first apply).
    let log = server.log();
    let events = lock_events(&log);
    assert!(
        events.chunks(2).all(|p| p == ["acquire", "release"]),
        "lock events do not alternate: {events:?}"
    );
    assert_eq!(events.len(), 2 * (1 + RUNS), "{events:?}");
    let waited = log.matches("lock request waits for the lock").count();
    println!("{waited} of {RUNS} applies waited for the lock");
    assert!(
        waited >= 1,
        "no apply waited: the test proved nothing\n{log}"
    );
}

const HOLDER: &str = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"holder@elsewhere","Version":"1.0.3","Created":"2024-01-01T00:00:00Z","Path":""}"#;

/// Holds the lock of `key` with [`HOLDER`], runs `apply` in `w` with `flags`, releases the
/// lock after `hold`, and returns the apply's output, how long it took, and how many LOCKs
/// the server saw wait.
fn apply_while_held(
    server: &Server,
    w: &Workdir,
    key: &str,
    flags: &[&str],
    hold: Duration,
) -> (std::process::Output, Duration, usize) {
    let waits_before = server
        .log()
        .matches("lock request waits for the lock")
        .count();
    assert_eq!(server.request("LOCK", key, HOLDER).0, 200);
    let (out, took) = std::thread::scope(|scope| {
        let apply = scope.spawn(|| {
            let started = Instant::now();
            let out = w.apply_with(1, flags);
            (out, started.elapsed())
        });
        std::thread::sleep(hold);
        assert!(!apply.is_finished(), "the apply did not wait");
        assert_eq!(server.request("UNLOCK", key, HOLDER).0, 200);
        apply.join().unwrap()
    });
    let waits = server
        .log()
        .matches("lock request waits for the lock")
        .count()
        - waits_before;
    (out, took, waits)
}

#[test]
fn server_wait_and_client_lock_timeout_1_15_5() {
    let server = Server::start();
    let key = "both-waits.tfstate";

    // A server wait shorter than the hold: each LOCK waits 1 s and answers 423, and
    // Terraform's own retry loop (1 s, 2 s, 4 s... between tries) sends the next one, until
    // one is granted. The client's retries and the server's waits take turns; none fails.
    let short = Workdir::with_lock_query(Terraform::V1_15_5, &server, key, "?wait=1s");
    let (out, took, waits) = apply_while_held(
        &server,
        &short,
        key,
        &["-lock-timeout=60s"],
        Duration::from_secs(5),
    );
    println!(
        "?wait=1s with -lock-timeout=60s, lock held 5 s: apply took {took:?}, {waits} LOCKs waited"
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        waits >= 2,
        "Terraform did not retry after the server's wait ran out"
    );

    // A server wait longer than the client's `-lock-timeout`: Terraform does not cancel a
    // LOCK in flight, so it waits as long as the server does and then carries on.
    let long = Workdir::with_lock_query(Terraform::V1_15_5, &server, key, "?wait=1m");
    let (out, took, waits) = apply_while_held(
        &server,
        &long,
        key,
        &["-lock-timeout=1s"],
        Duration::from_secs(4),
    );
    println!(
        "?wait=1m with -lock-timeout=1s, lock held 4 s: apply took {took:?}, {waits} LOCKs waited"
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(waits, 1, "one LOCK, granted on release");
    assert!(took >= Duration::from_secs(4));
}

#[test]
fn sigterm_answers_a_waiting_lock() {
    let mut server = Server::start();
    let key = "held.tfstate";
    let holder = HOLDER;
    let waiter = holder
        .replace("11111111", "99999999")
        .replace("holder@", "waiter@");
    assert_eq!(server.request("LOCK", key, holder).0, 200);

    let addr = server.addr.clone();
    let target = format!("{key}?wait=10m");
    let waiting = std::thread::spawn(move || {
        request(&addr, "LOCK", &format!("/v1/states/{target}"), &waiter)
    });
    // Give the LOCK time to be queued; the reply can only come from the shutdown.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished());

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, body) = waiting.join().unwrap();
    assert_eq!(status, 423, "{body}");
    assert!(body.contains("holder@elsewhere"), "{body}");
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}\n{}", server.log());
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "the server did not stop:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log().contains("shutting down"), "{}", server.log());
}

#[test]
fn a_waiter_that_hangs_up_never_takes_the_lock() {
    let server = Server::start();
    let key = "abandoned.tfstate";
    let holder = HOLDER;
    let gone = holder
        .replace("11111111", "99999999")
        .replace("holder@", "gone@");
    assert_eq!(server.request("LOCK", key, holder).0, 200);

    // A client (a Terraform run interrupted with Ctrl-C, say) that stops waiting and hangs up.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "LOCK /v1/states/{key}?wait=10m HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{gone}",
        gone.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    std::thread::sleep(Duration::from_millis(300));

    assert_eq!(server.request("UNLOCK", key, holder).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let third = holder.replace("11111111", "33333333");
    let (status, body) = server.request("LOCK", key, &third);
    assert_eq!(status, 200, "the departed waiter took the lock: {body}");
}
