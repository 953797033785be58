//! Whole-server guarantees that need several processes: two `statelock serve` replicas on one
//! bucket behave as one server (mutual exclusion, no lost writes), and a server killed with
//! SIGKILL in the middle of a 50 MiB state write leaves the state entirely old or entirely
//! new, with every accepted version in the history.
//!
//! Needs `bash scripts/setup-test-tools.sh` (Terraform 1.0.3, SeaweedFS).

use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

use crate::harness::{Server, StoreSpec, Workdir, apply_all_at_once, lock_events, text};
use statelock_test_support::{Terraform, seaweedfs};

#[test]
fn two_replicas_on_one_seaweedfs_bucket_act_as_one_server() {
    const RUNS_PER_REPLICA: usize = 3;
    let store = StoreSpec::fresh_bucket(seaweedfs());
    // A short poll interval: a replica learns of a release through the other replica only
    // by polling the bucket.
    let flags = ["--lock-poll-interval", "200ms"];
    let replicas = [
        Server::start_on(&store, &flags),
        Server::start_on(&store, &flags),
    ];
    let key = "shared/terraform.tfstate";
    let dirs: Vec<Workdir> = (0..2 * RUNS_PER_REPLICA)
        .map(|i| Workdir::with_lock_query(Terraform::V1_0_3, &replicas[i % 2], key, "?wait=5m"))
        .collect();
    let first = dirs[0].apply(0);
    assert!(first.status.success(), "{}", text(&first));
    let start_serial = replicas[1].serial(key);

    let started = Instant::now();
    let outputs = apply_all_at_once(&dirs, &[]);
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
    }
    let runs = dirs.len() as u64;
    let final_serial = replicas[0].serial(key);
    let acquired: Vec<usize> = replicas
        .iter()
        .map(|r| {
            lock_events(&r.log())
                .iter()
                .filter(|e| **e == "acquire")
                .count()
        })
        .collect();
    eprintln!(
        "replicas: {runs} concurrent applies through 2 replicas on one SeaweedFS bucket took \
         {:?}; serial {start_serial} -> {final_serial}; locks acquired per replica {acquired:?}",
        started.elapsed()
    );
    assert_eq!(final_serial, start_serial + runs, "a write was lost");
    assert_eq!(acquired.iter().sum::<usize>() as u64, 1 + runs);
    assert!(
        acquired.iter().all(|&n| n >= RUNS_PER_REPLICA),
        "{acquired:?}"
    );
    // Both replicas see the same state, from the bucket.
    assert_eq!(replicas[0].state(key), replicas[1].state(key));
}

const BIG: usize = 50 * 1024 * 1024;
const LINEAGE: &str = "0c7a2ab4-1111-4222-8333-944455556666";

/// A valid state document of about 50 MiB: one output of `BIG` copies of `fill`.
fn big_state(serial: u64, fill: u8) -> Vec<u8> {
    let mut doc = format!(
        r#"{{"version":4,"terraform_version":"1.0.3","serial":{serial},"lineage":"{LINEAGE}","outputs":{{"big":{{"type":"string","value":""#
    )
    .into_bytes();
    doc.resize(doc.len() + BIG, fill);
    doc.extend_from_slice(br#""}},"resources":[]}"#);
    doc
}

/// Serial and fill byte of a stored big state, checking it is whole.
fn inspect(server: &Server, key: &str) -> (u64, u8) {
    let state = server.state(key);
    let value = state["outputs"]["big"]["value"]
        .as_str()
        .unwrap()
        .as_bytes();
    assert_eq!(value.len(), BIG, "torn state");
    let fill = value[0];
    assert!(value.iter().all(|&b| b == fill), "mixed state");
    (state["serial"].as_u64().unwrap(), fill)
}

/// Sends `POST /v1/states/<key>` with `body` and returns when the whole request is written
/// (the stream is returned so the server's reply can be awaited or abandoned).
fn send_state(addr: &str, key: &str, body: &[u8]) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    let head = format!(
        "POST /v1/states/{key} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    Ok(s)
}

fn sigkill_mid_write(store: &StoreSpec, rounds: u32) {
    let key = "big/terraform.tfstate";
    let server = Server::start_on(store, &[]);
    let first = big_state(1, b'a');
    let (status, body) = server.request("POST", key, std::str::from_utf8(&first).unwrap());
    assert_eq!(status, 200, "{body}");
    // Calibrate: how long the server takes, once the request is sent, to store a 50 MiB
    // state (history version, then the state swap). The kills are spread over that window.
    let sent = send_state(&server.addr, key, &big_state(2, b'b')).unwrap();
    let since_sent = Instant::now();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut &sent, &mut reply).unwrap();
    let window = since_sent.elapsed();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(server);

    let mut outcomes = Vec::new();
    for round in 0..rounds {
        let mut server = Server::start_on(store, &[]);
        let (serial, fill) = inspect(&server, key);
        let next_fill = if fill == b'a' { b'b' } else { b'a' };
        let next = big_state(serial + 1, next_fill);
        // Spread over twice the calibrated time: a restarted server can be slower than a warm one.
        let delay = window * (2 * round + 1) / rounds;
        let addr = server.addr.clone();
        // The server may die before it has read the whole body; that is fine too. The
        // connection stays open until the kill: a client that hangs up may cancel the write.
        let connection = send_state(&addr, key, &next);
        std::thread::sleep(delay);
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        drop(connection);

        let server = Server::start_on(store, &[]);
        let (after, after_fill) = inspect(&server, key);
        let outcome = match (after, after_fill) {
            (s, f) if s == serial && f == fill => "old",
            (s, f) if s == serial + 1 && f == next_fill => "new",
            other => panic!("round {round}: unexpected state {other:?}"),
        };
        // No accepted version is missing from the history.
        let (status, body) =
            server.request_path("GET", &format!("/v1/api/states/{key}/versions"), "");
        assert_eq!(status, 200, "{body}");
        let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
        let serials: Vec<u64> = listing["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["serial"].as_u64())
            .collect();
        assert!(
            serials.contains(&after),
            "round {round}: serial {after} not in history {serials:?}"
        );
        outcomes.push(format!(
            "{outcome} (killed {} ms after sending)",
            delay.as_millis()
        ));
    }
    eprintln!(
        "sigkill: {} server killed during a 50 MiB state write (a write takes {window:.0?} \
         there), {rounds} rounds: state afterwards {outcomes:?}, each whole and in the history",
        store.describe()
    );
}

#[test]
fn sigkill_during_a_50_mib_write_on_local_disk_leaves_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_mid_write(&StoreSpec::Dir(dir.path().join("data")), 6);
}

#[test]
fn sigkill_during_a_50_mib_write_on_seaweedfs_leaves_old_or_new() {
    sigkill_mid_write(&StoreSpec::fresh_bucket(seaweedfs()), 3);
}
