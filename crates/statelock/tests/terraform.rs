//! End to end with the real Terraform 1.0.3 binary against `statelock serve` on a local-disk
//! store. Outputs-only configurations, so no provider is downloaded.
//!
//! Index:
//! - `workflow`: init, apply, plan, output, `state push` refused by the guard, `force-unlock`
//! - `concurrent_applies`: applies started together, without waiting for the lock: they run one
//!   at a time (the server's lock log alternates), each loser names the holder's lock ID
//!
//! - `history_rollback`: two applies leave two versions in the history API; a rollback to the
//!   first brings its output back for `terraform output`
//!
//! Needs `bash scripts/setup-test-tools.sh` (or `STATELOCK_TOOLS` pointing at its output).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Barrier};

const HOLDER_ID: &str = "11111111-2222-3333-4444-555555555555";

/// A `statelock serve` process, killed when dropped.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_statelock"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(format!("file://{}", dir.path().join("data").display()))
            .env("STATELOCK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("statelock listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        Server {
            child,
            _stdout: stdout,
            addr,
            log,
            _dir: dir,
        }
    }

    fn url(&self, key: &str) -> String {
        format!("http://{}/v1/states/{key}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// One plain HTTP/1.1 request on a state; returns the status and body.
    fn request(&self, method: &str, key: &str, body: &str) -> (u16, String) {
        self.request_path(method, &format!("/v1/states/{key}"), body)
    }

    /// One plain HTTP/1.1 request on any path; returns the status and body.
    fn request_path(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status = reply[9..12].parse().unwrap();
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn state(&self, key: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", key, "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terraform_bin() -> PathBuf {
    let tools = std::env::var_os("STATELOCK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools"));
    let bin = tools.join("bin/terraform");
    assert!(
        bin.exists(),
        "{} is missing: run `bash scripts/setup-test-tools.sh` first",
        bin.display()
    );
    bin
}

/// A Terraform working directory with an outputs-only configuration on `key`.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(server: &Server, key: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let url = server.url(key);
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                "terraform {{\n  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n  }}\n}}\n\
                 variable \"n\" {{\n  default = 0\n}}\noutput \"n\" {{\n  value = var.n\n}}\n"
            ),
        )
        .unwrap();
        let w = Workdir { dir };
        w.ok(&["init", "-input=false"]);
        w
    }

    fn run(&self, args: &[&str]) -> Output {
        // Flags go after the (sub)command words, e.g. `state push -no-color`.
        let words = if args[0] == "state" { 2 } else { 1 };
        Command::new(terraform_bin())
            .args(&args[..words])
            .arg("-no-color")
            .args(&args[words..])
            .current_dir(self.dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_DATA_DIR", self.dir.path().join(".tfdata"))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("none.tfrc"))
            .env_remove("TF_LOG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "terraform {args:?} succeeded:\n{}",
            text(&out)
        );
        text(&out)
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The holder's ID in Terraform 1.0.3's "HTTP remote state already locked: ID=<id>", which the
/// diagnostic renderer may wrap onto the next line.
fn holder_id(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("HTTP remote state already locked:")?..];
    let at = rest.find("ID=")? + "ID=".len();
    Some(
        rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .collect(),
    )
}

#[test]
fn workflow() {
    let server = Server::start();
    let key = "team-a/prod/terraform.tfstate";
    let w = Workdir::new(&server, key);

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
    std::fs::write(w.dir.path().join("foreign.tfstate"), foreign).unwrap();
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
    println!("terraform plan against a held lock printed:\n{blocked}");
    let unlocked = w.ok(&["force-unlock", "-force", HOLDER_ID]);
    assert!(unlocked.contains("successfully unlocked"), "{unlocked}");
    assert!(server.log().contains("force-unlock (empty UNLOCK body)"));
    w.ok(&["apply", "-input=false", "-auto-approve", "-var", "n=3"]);
    assert_eq!(server.state(key)["serial"].as_u64().unwrap(), serial + 2);
}

#[test]
fn concurrent_applies() {
    const RUNS: usize = 6;
    let server = Server::start();
    let key = "shared.tfstate";
    let dirs: Vec<Workdir> = (0..RUNS).map(|_| Workdir::new(&server, key)).collect();
    dirs[0].ok(&["apply", "-input=false", "-auto-approve", "-var", "n=0"]);
    let start_serial = server.state(key)["serial"].as_u64().unwrap();

    let barrier = Arc::new(Barrier::new(RUNS));
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let barrier = barrier.clone();
                let n = format!("n={}", i + 1);
                scope.spawn(move || {
                    barrier.wait();
                    w.run(&[
                        "apply",
                        "-input=false",
                        "-auto-approve",
                        "-lock-timeout=0s",
                        "-var",
                        &n,
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let log = server.log();
    let acquired: Vec<String> = log_ids(&log, "lock acquired");
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    let losers: Vec<&Output> = outputs.iter().filter(|o| !o.status.success()).collect();
    println!(
        "{winners} of {RUNS} concurrent applies won; {} lost",
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
    let events: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.contains("lock acquired") {
                Some("acquire")
            } else if l.contains("lock released") {
                Some("release")
            } else {
                None
            }
        })
        .collect();
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

/// The `id=` values of the server log lines containing `event`.
fn log_ids(log: &str, event: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(event))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn history_rollback() {
    let server = Server::start();
    let key = "team-h/terraform.tfstate";
    let w = Workdir::new(&server, key);
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
