//! Bad input against a running `statelock serve`: oversized and too many headers (431),
//! a client that sends its headers too slowly (the connection is closed), one that sends its
//! body too slowly (408), malformed credentials (401), and an oversized body (413). None of
//! them changes anything, and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::Server;
use crate::harness::auth::{basic, create_token, request_as};

const KEY: &str = "team-a/bad-input.tfstate";

fn server() -> (Server, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("principals.toml");
    let token = create_token(&file, "ci", &["admin:**"]);
    let server = Server::start_with(
        &[
            "--principals",
            file.to_str().unwrap(),
            "--header-timeout",
            "1s",
            "--body-timeout",
            "1s",
            "--max-state-size",
            "1KiB",
        ],
        &[],
    );
    (server, token, dir)
}

/// Sends `raw` and returns everything the server answers before it closes the connection.
fn exchange(addr: &str, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn stored(server: &Server, token: &str) -> u16 {
    request_as(
        &server.addr,
        Some(&basic("ci", token)),
        "GET",
        &format!("/v1/states/{KEY}"),
        "",
    )
    .0
}

#[test]
fn oversized_and_too_many_headers_are_refused() {
    let (server, token, _dir) = server();
    let auth = basic("ci", &token);
    let big = format!(
        "POST /v1/states/{KEY} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(20 * 1024)
    );
    let reply = exchange(&server.addr, big.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!(
        "POST /v1/states/{KEY} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n{many}Content-Length: 2\r\n\r\n{{}}"
    );
    let reply = exchange(&server.addr, many.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert_eq!(stored(&server, &token), 404, "nothing was written");
}

#[test]
fn slow_clients_are_cut_off() {
    let (server, token, _dir) = server();
    // Headers that never finish: the connection is closed after the header timeout.
    let started = Instant::now();
    let reply = exchange(&server.addr, b"GET /v1/api/states HTTP/1.1\r\nHost: x\r\n");
    let took = started.elapsed();
    assert!(!reply.contains(" 200 "), "{reply}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // A body that never finishes: 408 after the body timeout, and nothing is written.
    let head = format!(
        "POST /v1/states/{KEY} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 500\r\n\r\n{{\"version\":4,",
        basic("ci", &token)
    );
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut reply = vec![0u8; 4096];
    let n = s.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("the state did not arrive within 1s; nothing was changed"),
        "{reply}"
    );
    assert_eq!(stored(&server, &token), 404, "nothing was written");
    // The server still serves.
    assert_eq!(request_as(&server.addr, None, "GET", "/healthz", "").0, 200);
}

#[test]
fn malformed_credentials_and_oversized_bodies_change_nothing() {
    let (server, token, _dir) = server();
    let path = format!("/v1/states/{KEY}");
    let body = r#"{"version":4,"serial":1,"lineage":"x","outputs":{},"resources":[]}"#;
    for auth in ["Basic %%%", "Basic", "Bearer", "Token abc", "Basic Y2k6"] {
        let (status, head, reply) = request_as(&server.addr, Some(auth), "POST", &path, body);
        assert_eq!(status, 401, "{auth}: {reply}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"statelock\""),
            "{head}"
        );
    }
    let huge = format!(
        r#"{{"version":4,"serial":1,"lineage":"x","pad":"{}"}}"#,
        "a".repeat(4096)
    );
    let (status, _, reply) = request_as(
        &server.addr,
        Some(&basic("ci", &token)),
        "POST",
        &path,
        &huge,
    );
    assert_eq!(status, 413, "{reply}");
    assert_eq!(stored(&server, &token), 404, "nothing was written");
    let (status, _, reply) = request_as(
        &server.addr,
        Some(&basic("ci", &token)),
        "POST",
        &path,
        body,
    );
    assert_eq!(status, 200, "{reply}");
}
