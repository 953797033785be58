//! What the end-to-end tests share: a `statelock serve` process on a local directory or an S3
//! bucket, plain HTTP requests to it, and Terraform 1.0.3 working directories pointed at it.
//!
//! Each test target uses a different part, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod dynamo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Barrier;

use statelock_test_support::{S3Server, terraform_bin, unique_name};

pub mod auth;

/// Where a server keeps its states.
#[derive(Clone, Debug)]
pub enum StoreSpec {
    /// A local directory.
    Dir(PathBuf),
    /// A bucket on a test S3 server.
    S3 {
        server: &'static S3Server,
        bucket: String,
    },
}

impl StoreSpec {
    /// For reports: `local disk` or the S3 server's name.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Dir(_) => "local disk:".to_owned(),
            StoreSpec::S3 { server, .. } => format!("{}:", server.name),
        }
    }

    /// A fresh versioned bucket on `server`.
    pub fn fresh_bucket(server: &'static S3Server) -> StoreSpec {
        let bucket = unique_name("statelock-e2e");
        server.create_bucket(&bucket, true);
        StoreSpec::S3 { server, bucket }
    }
}

/// A `statelock serve` process, killed when dropped.
pub struct Server {
    pub child: Child,
    _stdout: BufReader<ChildStdout>,
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    pub store: StoreSpec,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server on a fresh local directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreSpec::Dir(dir.path().join("data"));
        Server::start_in(dir, &store, &[], &[])
    }

    /// A server on `store`, with extra `serve` flags.
    pub fn start_on(store: &StoreSpec, extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), store, extra, &[])
    }

    /// A server on a fresh local directory, with extra `serve` flags and environment.
    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreSpec::Dir(dir.path().join("data"));
        Server::start_in(dir, &store, extra, env)
    }

    fn start_in(
        dir: tempfile::TempDir,
        store: &StoreSpec,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = dir.path().join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_statelock"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("STATELOCK_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        match store {
            StoreSpec::Dir(path) => {
                command.arg(format!("--store=file://{}", path.display()));
            }
            StoreSpec::S3 { server, bucket } => {
                command
                    .arg(format!("--store=s3://{bucket}"))
                    .arg(format!("--s3-endpoint={}", server.endpoint))
                    .arg("--s3-path-style")
                    .envs(server.aws_env());
            }
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let (scheme, addr) = first
            .trim()
            .strip_prefix("statelock listening on ")
            .and_then(|url| url.split_once("://"))
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let (scheme, addr) = (scheme.to_owned(), addr.to_owned());
        Server {
            child,
            _stdout: stdout,
            addr,
            scheme,
            store: store.clone(),
            log,
            _dir: dir,
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("{}://{}/v1/states/{key}", self.scheme, self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// One plain HTTP/1.1 request to `/v1/states/<target>`; returns the status and body.
    pub fn request(&self, method: &str, target: &str, body: &str) -> (u16, String) {
        request(&self.addr, method, &format!("/v1/states/{target}"), body)
    }

    /// One plain HTTP/1.1 request to any path.
    pub fn request_path(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        request(&self.addr, method, path, body)
    }

    pub fn state(&self, key: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", key, "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn serial(&self, key: &str) -> u64 {
        self.state(key)["serial"].as_u64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to `path` on `addr`; returns the status and body.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// The start of the sensitive output's value in [`Workdir::s3_backend`] configurations.
pub const SECRET_PREFIX: &str = "s3cr3t-value-";

/// A Terraform working directory with an outputs-only configuration (no provider download)
/// whose state is `key` on a server.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    /// Extra environment for every `terraform` run (e.g. `TF_HTTP_PASSWORD`, or AWS
    /// credentials for `backend "s3"`).
    pub env: Vec<(String, String)>,
}

impl Workdir {
    /// Locks fail at once when held, as Terraform expects by default.
    pub fn new(server: &Server, key: &str) -> Workdir {
        Workdir::with_lock_query(server, key, "")
    }

    /// The lock address carries `query` (e.g. `?wait=5m`).
    pub fn with_lock_query(server: &Server, key: &str, query: &str) -> Workdir {
        let w = Workdir::uninitialised(&server.url(key), query, "", Vec::new());
        w.ok(&["init", "-input=false"]);
        w
    }

    /// A working directory for the state at `url`, with `backend_extra` lines in the backend
    /// block and `env` for every run, before `terraform init`.
    pub fn uninitialised(
        url: &str,
        lock_query: &str,
        backend_extra: &str,
        env: Vec<(String, String)>,
    ) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                "terraform {{\n  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}{lock_query}\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n{backend_extra}  }}\n}}\n\
                 variable \"n\" {{\n  default = 0\n}}\noutput \"n\" {{\n  value = var.n\n}}\n"
            ),
        )
        .unwrap();
        Workdir { dir, env }
    }

    /// Terraform 1.0.3's own `backend "s3"` on `bucket` of a test S3 server (no statelock
    /// server in between), state at `key`. Besides `n` it has a sensitive output whose value
    /// starts with [`SECRET_PREFIX`], which no statelock output may ever show. That release locks only with DynamoDB, so without a
    /// table it writes the bucket unlocked.
    pub fn s3_backend(server: &S3Server, bucket: &str, key: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key = \"{key}\"\n    region = \"us-east-1\"\n\
                 endpoint = \"{}\"\n    force_path_style = true\n    skip_credentials_validation = true\n\
                 skip_metadata_api_check = true\n    skip_region_validation = true\n  }}\n}}\n\
                 variable \"n\" {{\n  default = 0\n}}\noutput \"n\" {{\n  value = var.n\n}}\n\
                 output \"secret\" {{\n  value = \"{SECRET_PREFIX}${{var.n}}\"\n  sensitive = true\n}}\n",
                server.endpoint
            ),
        )
        .unwrap();
        let w = Workdir {
            dir,
            env: owned_aws_env(server),
        };
        w.ok(&["init", "-input=false"]);
        w
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The `terraform` command for `args`, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        // Flags go after the (sub)command words, e.g. `state push -no-color`.
        let words = if args[0] == "state" { 2 } else { 1 };
        let mut command = Command::new(terraform_bin());
        command
            .args(&args[..words])
            .arg("-no-color")
            .args(&args[words..])
            .current_dir(self.dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_DATA_DIR", self.dir.path().join(".tfdata"))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("none.tfrc"))
            .env_remove("TF_LOG")
            .envs(self.env.iter().cloned());
        command
    }

    /// `terraform apply` setting the output to `n`.
    pub fn apply(&self, n: usize) -> Output {
        self.apply_with(n, &[])
    }

    /// `terraform apply` setting the output to `n`, with `extra` flags.
    pub fn apply_with(&self, n: usize, extra: &[&str]) -> Output {
        let var = format!("n={n}");
        let mut args = vec!["apply", "-input=false", "-auto-approve", "-var", &var];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "terraform {args:?} succeeded:\n{}",
            text(&out)
        );
        text(&out)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts `terraform apply` in every working directory at the same moment (the i-th sets the
/// output to i + 1, with `extra` flags) and returns their outputs in order.
pub fn apply_all_at_once(dirs: &[Workdir], extra: &[&str]) -> Vec<Output> {
    let barrier = Barrier::new(dirs.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    w.apply_with(i + 1, extra)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `statelock ARGS --store=s3://BUCKET` against a test S3 server, with its credentials.
pub fn statelock_on(server: &S3Server, bucket: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_statelock"))
        .args(args)
        .arg(format!("--store=s3://{bucket}"))
        .arg(format!("--s3-endpoint={}", server.endpoint))
        .arg("--s3-path-style")
        .envs(server.aws_env())
        .env("STATELOCK_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A process's exit status and output, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The holder's ID in Terraform 1.0.3's "HTTP remote state already locked: ID=<id>", which the
/// diagnostic renderer may wrap onto the next line.
pub fn holder_id(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("HTTP remote state already locked:")?..];
    let at = rest.find("ID=")? + "ID=".len();
    Some(
        rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .collect(),
    )
}

/// The server log's lock events in order: `"acquire"` or `"release"`.
pub fn lock_events(log: &str) -> Vec<&'static str> {
    log.lines()
        .filter_map(|l| {
            if l.contains("lock acquired") {
                Some("acquire")
            } else if l.contains("lock released") {
                Some("release")
            } else {
                None
            }
        })
        .collect()
}

/// The `id=` values of the server log lines containing `event`.
pub fn log_ids(log: &str, event: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(event))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// `server`'s AWS environment in the form `Workdir::env` keeps.
pub fn owned_aws_env(server: &S3Server) -> Vec<(String, String)> {
    server
        .aws_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}
