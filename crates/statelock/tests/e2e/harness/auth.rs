//! What the access-control tests share: principals made with `statelock token create`,
//! requests with credentials, and Terraform working directories that log in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use base64::Engine;
use statelock_test_support::Terraform;

use super::{Server, Workdir};

/// Runs `statelock token create NAME --grant G... --principals FILE --json` and returns the
/// token, checking that stderr and the file never show it.
pub fn create_token(file: &Path, name: &str, grants: &[&str]) -> String {
    let mut command = super::statelock_command();
    command
        .args(["token", "create", name, "--principals"])
        .arg(file);
    for g in grants {
        command.args(["--grant", g]);
    }
    let out = command.arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "token create failed: {stderr}");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = reply["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("slt_") && token.len() > 40, "{token}");
    assert!(!stderr.contains(&token));
    assert!(!std::fs::read_to_string(file).unwrap().contains(&token));
    token
}

pub fn basic(name: &str, token: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{token}"));
    format!("Basic {pair}")
}

/// One HTTP/1.1 request with an `Authorization` header; returns status, head and body.
pub fn request_as(
    addr: &str,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (status, head.to_owned(), body.to_owned())
}

/// A Terraform working directory for `key` on `server` that logs in as `name` with `token`
/// (`username` in the backend block, the token in `TF_HTTP_PASSWORD`, so it is in no file);
/// `backend_extra` adds lines to the backend block. Not yet initialised.
pub fn workdir_as(
    terraform: Terraform,
    server: &Server,
    key: &str,
    name: &str,
    token: &str,
    backend_extra: &str,
) -> Workdir {
    Workdir::uninitialised(
        terraform,
        &server.url(key),
        "",
        &format!("    username = \"{name}\"\n{backend_extra}"),
        vec![("TF_HTTP_PASSWORD".to_owned(), token.to_owned())],
    )
}

/// `statelock token s3 NAME --json`: the principal's access key ID and secret.
pub fn s3_credentials(
    principals: &std::path::Path,
    key_file: &std::path::Path,
    name: &str,
) -> (String, String) {
    let out = super::statelock_command()
        .args(["token", "s3", name, "--json", "--principals"])
        .arg(principals)
        .arg("--s3-secret-key-file")
        .arg(key_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", super::text(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        reply["access_key_id"].as_str().unwrap().to_owned(),
        reply["secret_access_key"].as_str().unwrap().to_owned(),
    )
}
