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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

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
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
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

    /// One plain HTTP/1.1 request to `/v1/states/<target>`; returns the status and body.
    fn request(&self, method: &str, target: &str, body: &str) -> (u16, String) {
        request(&self.addr, method, target, body)
    }

    fn serial(&self, key: &str) -> u64 {
        let (status, body) = self.request("GET", key, "");
        assert_eq!(status, 200, "{body}");
        let state: serde_json::Value = serde_json::from_str(&body).unwrap();
        state["serial"].as_u64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(addr: &str, method: &str, target: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} /v1/states/{target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
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

/// A Terraform working directory whose lock address waits up to `wait` for the lock.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(server: &Server, key: &str, wait: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let url = server.url(key);
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                "terraform {{\n  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}?wait={wait}\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n  }}\n}}\n\
                 variable \"n\" {{\n  default = 0\n}}\noutput \"n\" {{\n  value = var.n\n}}\n"
            ),
        )
        .unwrap();
        let w = Workdir { dir };
        let init = w.run(&["init", "-input=false"]);
        assert!(init.status.success(), "{}", text(&init));
        w
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(terraform_bin())
            .arg(args[0])
            .arg("-no-color")
            .args(&args[1..])
            .current_dir(self.dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_DATA_DIR", self.dir.path().join(".tfdata"))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("none.tfrc"))
            .env_remove("TF_LOG")
            .output()
            .unwrap()
    }

    fn apply(&self, n: usize) -> Output {
        let var = format!("n={n}");
        self.run(&["apply", "-input=false", "-auto-approve", "-var", &var])
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

#[test]
fn queued_applies_all_succeed_in_turn() {
    const RUNS: usize = 8;
    let server = Server::start();
    let key = "queued.tfstate";
    let dirs: Vec<Workdir> = (0..RUNS)
        .map(|_| Workdir::new(&server, key, "5m"))
        .collect();
    let first = dirs[0].apply(0);
    assert!(first.status.success(), "{}", text(&first));
    let start_serial = server.serial(key);

    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(RUNS));
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    w.apply(i + 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("{RUNS} queued applies took {:?}", started.elapsed());
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
    }
    assert_eq!(server.serial(key), start_serial + RUNS as u64);

    // One holder at a time, and every apply held the lock once (plus the first apply).
    let log = server.log();
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
    let waiting = std::thread::spawn(move || request(&addr, "LOCK", &target, &waiter));
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
