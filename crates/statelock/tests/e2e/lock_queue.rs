//! End to end with the real Terraform 1.0.3 binary: the lock queue (`?wait=` on the lock
//! address) and graceful shutdown with a LOCK waiting. Terraform 1.0.3 never retries a held
//! lock itself, so without the queue only one of several concurrent applies would succeed
//! (that case is `terraform.rs`'s `concurrent_applies`).
//!
//! Index:
//! - `queued_applies_all_succeed_in_turn`: 8 concurrent applies through `?wait=`
//! - `sigterm_answers_a_waiting_lock`: SIGTERM while a LOCK waits: 423 with the holder, exit
//!
//! Needs `bash scripts/setup-test-tools.sh` (or `STATELOCK_TOOLS` pointing at its output).

use statelock_test_support::Terraform;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, Workdir, apply_all_at_once, lock_events, request, text};

#[test]
fn queued_applies_all_succeed_in_turn() {
    const RUNS: usize = 8;
    let server = Server::start();
    let key = "queued.tfstate";
    let dirs: Vec<Workdir> = (0..RUNS)
        .map(|_| Workdir::with_lock_query(Terraform::V1_0_3, &server, key, "?wait=5m"))
        .collect();
    let first = dirs[0].apply(0);
    assert!(first.status.success(), "{}", text(&first));
    let start_serial = server.serial(key);

    let started = Instant::now();
    let outputs = apply_all_at_once(&dirs, &[]);
    println!("{RUNS} queued applies took {:?}", started.elapsed());
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
    let waited = log.matches("LOCK waits for the lock").count();
    println!("{waited} of {RUNS} applies waited for the lock");
    assert!(
        waited >= 1,
        "no apply waited: the test proved nothing\n{log}"
    );
}

#[test]
fn sigterm_answers_a_waiting_lock() {
    let mut server = Server::start();
    let key = "held.tfstate";
    let holder = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"holder@elsewhere","Version":"1.0.3","Created":"2024-01-01T00:00:00Z","Path":""}"#;
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
    let holder = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"","Who":"holder@elsewhere","Version":"1.0.3","Created":"2024-01-01T00:00:00Z","Path":""}"#;
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
