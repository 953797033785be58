//! What the end-to-end tests share: a `statelock serve` process on a local directory or an S3
//! bucket, plain HTTP requests to it, and Terraform working directories (1.0.3 or 1.15.5, each
//! test says which) pointed at it or at a bucket directly.
//!
//! Every process started here is built with `statelock_test_support::isolated`, so the
//! developer's own AWS, Terraform and statelock settings never reach it.

pub mod dynamo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use statelock_test_support::{S3Server, Terraform, isolated, unique_name};

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
    /// The S3 front's `scheme://host:port`, unless started with `--no-s3-front`.
    pub s3_endpoint: Option<String>,
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
        let mut command = statelock_command();
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
        let read = stdout.read_line(&mut first);
        let Some((scheme, addr)) = first
            .trim()
            .strip_prefix("statelock listening on ")
            .and_then(|url| url.split_once("://"))
            .filter(|_| read.is_ok())
        else {
            // Not yet a `Server`, whose drop would stop it: stop it here.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "unexpected first line {first:?} ({read:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        };
        let (scheme, addr) = (scheme.to_owned(), addr.to_owned());
        // The S3 front's line follows the http backend's block.
        let mut s3_endpoint = None;
        if !extra.contains(&"--no-s3-front") {
            for line in (&mut stdout).lines() {
                let line = line.unwrap();
                if let Some(url) = line.strip_prefix("statelock S3 front listening on ") {
                    s3_endpoint = Some(url.trim().to_owned());
                    break;
                }
            }
        }
        Server {
            child,
            _stdout: stdout,
            addr,
            scheme,
            s3_endpoint,
            log,
            _dir: dir,
        }
    }

    /// The store directory of a server from [`Server::start`] or [`Server::start_with`].
    pub fn local_store(&self) -> PathBuf {
        self._dir.path().join("data")
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

/// How a `backend "s3"` block locks, beyond the bucket and key.
#[derive(Clone, Debug, Default)]
pub struct S3Locking {
    /// `use_lockfile = true` (Terraform >= 1.10): the `.tflock` object.
    pub use_lockfile: bool,
    /// `dynamodb_table = "..."` on the same test server.
    pub dynamodb_table: Option<String>,
}

impl S3Locking {
    /// Only the `.tflock` lock file, as the background ADR recommends.
    pub fn lockfile() -> S3Locking {
        S3Locking {
            use_lockfile: true,
            dynamodb_table: None,
        }
    }
}

/// A Terraform working directory with an outputs-only configuration (no provider download).
pub struct Workdir {
    pub dir: tempfile::TempDir,
    /// The release that runs here.
    pub terraform: Terraform,
    /// Extra environment for every `terraform` run (e.g. `TF_HTTP_PASSWORD`, or AWS
    /// credentials for `backend "s3"`).
    pub env: Vec<(String, String)>,
}

impl Workdir {
    /// `backend "http"` on `server` for `key`, initialised. Locks fail at once when held, as
    /// Terraform expects by default.
    pub fn new(terraform: Terraform, server: &Server, key: &str) -> Workdir {
        Workdir::with_lock_query(terraform, server, key, "")
    }

    /// [`Workdir::new`] with `query` on the lock address (e.g. `?wait=5m`).
    pub fn with_lock_query(
        terraform: Terraform,
        server: &Server,
        key: &str,
        query: &str,
    ) -> Workdir {
        let w = Workdir::uninitialised(terraform, &server.url(key), query, "", Vec::new());
        w.ok(&["init", "-input=false"]);
        w
    }

    /// `backend "http"` for the state at `url`, with `backend_extra` lines in the backend
    /// block and `env` for every run, before `terraform init`.
    pub fn uninitialised(
        terraform: Terraform,
        url: &str,
        lock_query: &str,
        backend_extra: &str,
        env: Vec<(String, String)>,
    ) -> Workdir {
        let backend = format!(
            "  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}{lock_query}\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n{backend_extra}  }}\n"
        );
        Workdir::with_backend(terraform, &backend, env)
    }

    /// Terraform's own `backend "s3"` on `bucket` of a test S3 server (no statelock server in
    /// between), state at `key`, locking as `locking` says, initialised. Terraform 1.0.3
    /// has no `use_lockfile`; without a table it writes the bucket unlocked.
    pub fn s3_backend(
        terraform: Terraform,
        server: &S3Server,
        bucket: &str,
        key: &str,
        locking: &S3Locking,
    ) -> Workdir {
        let w = Workdir::s3_uninitialised(terraform, server, bucket, key, locking);
        w.ok(&["init", "-input=false"]);
        w
    }

    /// [`Workdir::s3_backend`] before `terraform init`.
    pub fn s3_uninitialised(
        terraform: Terraform,
        server: &S3Server,
        bucket: &str,
        key: &str,
        locking: &S3Locking,
    ) -> Workdir {
        let env = owned_aws_env(server);
        Workdir::s3_at(terraform, &server.endpoint, env, bucket, key, locking)
    }

    /// Terraform's own `backend "s3"` pointed at `server`'s S3 front (any credentials do),
    /// for `bucket` and `key`, initialised.
    pub fn s3_front(
        terraform: Terraform,
        server: &Server,
        bucket: &str,
        key: &str,
        locking: &S3Locking,
    ) -> Workdir {
        let w = Workdir::s3_front_uninitialised(terraform, server, bucket, key, locking);
        w.ok(&["init", "-input=false"]);
        w
    }

    /// [`Workdir::s3_front`] before `terraform init`.
    pub fn s3_front_uninitialised(
        terraform: Terraform,
        server: &Server,
        bucket: &str,
        key: &str,
        locking: &S3Locking,
    ) -> Workdir {
        let endpoint = server
            .s3_endpoint
            .as_deref()
            .expect("the server's S3 front");
        let env = [
            ("AWS_ACCESS_KEY_ID", "statelock"),
            ("AWS_SECRET_ACCESS_KEY", "anything"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        Workdir::s3_at(terraform, endpoint, env, bucket, key, locking)
    }

    /// The LocalStack block of the ADR in our background documents (bucket, key, region,
    /// `use_lockfile` and the three `skip_*` settings, no `use_path_style`), with only
    /// `endpoints.s3` changed to `http://localhost:<the front's port>`, before `terraform
    /// init`; the 1.0.3 form has `endpoint` and no `use_lockfile`, which it lacks. Without
    /// path style, the SDKs send each request to `<bucket>.localhost:<port>`, which RFC 6761
    /// resolvers (systemd-resolved, for one) answer with the loopback address; this machine's
    /// does not, so `HTTP_PROXY` names the front instead, and the request still arrives with
    /// `Host: <bucket>.localhost:<port>` and an absolute URI, as through any proxy.
    pub fn adr_block_uninitialised(
        terraform: Terraform,
        server: &Server,
        bucket: &str,
        key: &str,
    ) -> Workdir {
        let front = server
            .s3_endpoint
            .as_deref()
            .expect("the server's S3 front");
        let port = front.rsplit_once(':').expect("host:port").1;
        let endpoint = format!("http://localhost:{port}");
        let mut lines = vec![
            format!("bucket = \"{bucket}\""),
            format!("key = \"{key}\""),
            "region = \"us-east-1\"".to_owned(),
        ];
        match terraform {
            Terraform::V1_0_3 => lines.push(format!("endpoint = \"{endpoint}\"")),
            Terraform::V1_15_5 => {
                lines.push("use_lockfile = true".to_owned());
                lines.push("skip_requesting_account_id = true".to_owned());
                lines.push(format!("endpoints = {{\n      s3 = \"{endpoint}\"\n    }}"));
            }
        }
        lines.push("skip_credentials_validation = true".to_owned());
        lines.push("skip_metadata_api_check = true".to_owned());
        let body: String = lines.iter().map(|l| format!("    {l}\n")).collect();
        let env = [
            ("AWS_ACCESS_KEY_ID", "statelock"),
            ("AWS_SECRET_ACCESS_KEY", "anything"),
            ("HTTP_PROXY", front),
            ("http_proxy", front),
            // A user's NO_PROXY=localhost would also cover `<bucket>.localhost`.
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        Workdir::with_backend(
            terraform,
            &format!("  backend \"s3\" {{\n{body}  }}\n"),
            env,
        )
    }

    /// `backend "s3"` at `endpoint` with `env` for every run, before `terraform init`.
    fn s3_at(
        terraform: Terraform,
        endpoint: &str,
        env: Vec<(String, String)>,
        bucket: &str,
        key: &str,
        locking: &S3Locking,
    ) -> Workdir {
        let mut lines = vec![
            format!("bucket = \"{bucket}\""),
            format!("key = \"{key}\""),
            "region = \"us-east-1\"".to_owned(),
            "skip_credentials_validation = true".to_owned(),
            "skip_metadata_api_check = true".to_owned(),
            "skip_region_validation = true".to_owned(),
        ];
        // The endpoint arguments were renamed in 1.6; the old ones are gone by 1.15.
        match terraform {
            Terraform::V1_0_3 => {
                assert!(!locking.use_lockfile, "Terraform 1.0.3 has no use_lockfile");
                lines.push(format!("endpoint = \"{endpoint}\""));
                lines.push("force_path_style = true".to_owned());
                if locking.dynamodb_table.is_some() {
                    lines.push(format!("dynamodb_endpoint = \"{endpoint}\""));
                }
            }
            Terraform::V1_15_5 => {
                lines.push(format!(
                    "endpoints = {{\n      s3 = \"{endpoint}\"\n      dynamodb = \"{endpoint}\"\n    }}"
                ));
                lines.push("use_path_style = true".to_owned());
                lines.push("skip_requesting_account_id = true".to_owned());
                if locking.use_lockfile {
                    lines.push("use_lockfile = true".to_owned());
                }
            }
        }
        if let Some(table) = &locking.dynamodb_table {
            lines.push(format!("dynamodb_table = \"{table}\""));
        }
        let body: String = lines.iter().map(|l| format!("    {l}\n")).collect();
        Workdir::with_backend(
            terraform,
            &format!("  backend \"s3\" {{\n{body}  }}\n"),
            env,
        )
    }

    /// A working directory whose `terraform` block holds `backend`, with the variable `n`,
    /// the output `n` and a sensitive output whose value starts with [`SECRET_PREFIX`], which
    /// no statelock output may ever show.
    fn with_backend(terraform: Terraform, backend: &str, env: Vec<(String, String)>) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            format!(
                "terraform {{\n{backend}}}\n\
                 variable \"n\" {{\n  default = 0\n}}\noutput \"n\" {{\n  value = var.n\n}}\n\
                 output \"secret\" {{\n  value = \"{SECRET_PREFIX}${{var.n}}\"\n  sensitive = true\n}}\n"
            ),
        )
        .unwrap();
        // An empty CLI configuration: Terraform warns about a missing one.
        std::fs::write(dir.path().join("cli.tfrc"), "").unwrap();
        Workdir {
            dir,
            terraform,
            env,
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The `terraform` command for `args`, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        // Flags go after the (sub)command words, e.g. `state push -no-color`.
        let words = if ["state", "workspace"].contains(&args[0]) {
            2
        } else {
            1
        };
        let mut command = isolated(self.terraform.bin());
        command
            .args(&args[..words])
            .arg("-no-color")
            .args(&args[words..])
            .current_dir(self.dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_DATA_DIR", self.dir.path().join(".tfdata"))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("cli.tfrc"))
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null());
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

    /// [`Workdir::apply`], which must succeed.
    pub fn apply_ok(&self, n: usize) {
        let out = self.apply(n);
        assert!(
            out.status.success(),
            "{} apply n={n} failed:\n{}",
            self.terraform,
            text(&out)
        );
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed:\n{}",
            self.terraform,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{} {args:?} succeeded:\n{}",
            self.terraform,
            text(&out)
        );
        text(&out)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A `terraform apply` that holds its lock while it waits for approval on stdin.
pub struct PendingApply {
    /// Taken by `answer`; killed on drop if still there.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    terraform: Terraform,
}

impl PendingApply {
    /// Starts `terraform apply -var n=<n>` in `w` without -auto-approve: Terraform takes the
    /// lock, plans, and waits for "yes". Follow with [`PendingApply::wait_until`] to know that
    /// the lock is taken.
    pub fn start(w: &Workdir, n: usize) -> PendingApply {
        let var = format!("n={n}");
        let mut child = w
            .command(&["apply", "-input=true", "-var", &var])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        PendingApply {
            child: Some(child),
            stdin,
            terraform: w.terraform,
        }
    }

    /// Polls `held` until it says the lock is taken, or panics after 60 s with what the
    /// apply printed if it ended.
    pub fn wait_until(&mut self, what: &str, held: impl Fn() -> bool) {
        let start = Instant::now();
        loop {
            if held() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let out = self.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "{} apply ended ({status}) before {what}:\n{}",
                    self.terraform,
                    text(&out)
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until Terraform's lock object for `state_key` exists in `bucket` (its own
    /// `backend "s3"` lock, or the server's for an `http` backend on that bucket) and returns
    /// the record in it.
    pub fn wait_for_lock_object(
        &mut self,
        s3: &S3Server,
        bucket: &str,
        state_key: &str,
    ) -> serde_json::Value {
        let lock_key = format!("{state_key}.tflock");
        self.wait_until(&format!("{lock_key} exists"), || {
            s3.object(bucket, &lock_key).is_some()
        });
        let body = s3.object(bucket, &lock_key).expect("the lock object");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{lock_key} holds {body:?}: {e}"))
    }

    /// Answers the prompt (`yes` applies, anything else cancels) and waits for the end.
    pub fn answer(mut self, answer: &str) -> Output {
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "{answer}").unwrap();
        drop(stdin);
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(
            answer != "yes" || out.status.success(),
            "the held {} apply failed:\n{}",
            self.terraform,
            text(&out)
        );
        out
    }

    /// Kills the process with SIGKILL, as a CI runner does to a cancelled job: Terraform
    /// gets no chance to release its lock.
    pub fn kill(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for PendingApply {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// The `statelock` binary under test, isolated from the developer's environment.
pub fn statelock_command() -> Command {
    isolated(env!("CARGO_BIN_EXE_statelock"))
}

/// `statelock ARGS --store=s3://BUCKET` against a test S3 server, with its credentials.
pub fn statelock_on(server: &S3Server, bucket: &str, args: &[&str]) -> Output {
    statelock_command()
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

/// The holder's ID in the `http` backend's "HTTP remote state already locked: ID=<id>" (both
/// releases), which the diagnostic renderer may wrap onto the next line.
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

/// The holder's record as Terraform prints it under "Lock Info:" when a lock is held (every
/// backend, both releases).
#[derive(Debug)]
pub struct ShownLock {
    pub id: String,
    pub path: String,
    pub who: String,
    pub version: String,
}

/// The first "Lock Info:" block in Terraform's output, if any.
pub fn lock_info(output: &str) -> Option<ShownLock> {
    let block = &output[output.find("Lock Info:")?..];
    let field = |name: &str| -> Option<String> {
        block.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
    };
    Some(ShownLock {
        id: field("ID")?,
        path: field("Path")?,
        who: field("Who")?,
        version: field("Version")?,
    })
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
