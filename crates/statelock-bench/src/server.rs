//! The `statelock serve` process under test: started from the release binary as a separate
//! process, so its CPU time and peak memory can be read from `/proc/<pid>/`, and killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use statelock_test_support::S3Server;

/// Where the server keeps its states.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// A local directory (`file://`).
    Dir(&'a Path),
    /// `memory://`: no disk, so only the server's own cost remains.
    Memory,
    /// A versioned bucket on an S3-compatible test server.
    S3 {
        server: &'static S3Server,
        bucket: &'a str,
    },
    /// A bucket reached at `endpoint` (e.g. through the fault run's proxy) with `env`'s
    /// credentials.
    Endpoint {
        endpoint: &'a str,
        bucket: &'a str,
        env: &'a [(&'static str, String)],
    },
}

impl Store<'_> {
    /// For table rows: `local disk` or the S3 server's name.
    pub fn label(&self) -> String {
        match self {
            Store::Dir(_) => "local disk".to_owned(),
            Store::Memory => "memory".to_owned(),
            Store::S3 { server, .. } => server.name.to_owned(),
            Store::Endpoint { endpoint, .. } => endpoint.to_string(),
        }
    }
}

/// A running `statelock serve`, killed when dropped.
pub struct Server {
    child: Child,
    // Held so the server never sees a closed stdout.
    _stdout: BufReader<ChildStdout>,
    pub addr: String,
    /// The S3 front's `http://127.0.0.1:PORT`, when started with [`Server::start_with_s3_front`].
    pub s3_endpoint: Option<String>,
    log: PathBuf,
}

/// CPU time and memory of a process, read from `/proc`.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size (`VmHWM`), in bytes.
    pub peak_rss: u64,
}

impl Server {
    /// Starts `binary serve` on `store` with `extra` flags and no S3 front; its log goes to
    /// `log_dir`.
    pub fn start(
        binary: &Path,
        store: Store<'_>,
        extra: &[&str],
        log_dir: &Path,
    ) -> anyhow::Result<Server> {
        // The front would otherwise bind its default 127.0.0.1:9000, which a parallel test
        // run or a second server may hold; only the S3 front scenario measures it.
        Server::spawn(binary, store, extra, &[], log_dir, false)
    }

    /// [`Server::start`] with the S3 front on a free port (`--s3-listen 127.0.0.1:0`, never the
    /// default 9000), whose address lands in [`Server::s3_endpoint`].
    pub fn start_with_s3_front(
        binary: &Path,
        store: Store<'_>,
        extra: &[&str],
        log_dir: &Path,
    ) -> anyhow::Result<Server> {
        Server::spawn(binary, store, extra, &[], log_dir, true)
    }

    /// [`Server::start_with_s3_front`] with extra environment variables (the fault run's
    /// test-build breakages).
    pub fn start_with_s3_front_and_env(
        binary: &Path,
        store: Store<'_>,
        extra: &[&str],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Server> {
        Server::spawn(binary, store, extra, env, log_dir, true)
    }

    fn spawn(
        binary: &Path,
        store: Store<'_>,
        extra: &[&str],
        env: &[(String, String)],
        log_dir: &Path,
        s3_front: bool,
    ) -> anyhow::Result<Server> {
        let log = log_dir.join(format!("serve-{}.log", std::process::id()));
        let mut command = statelock_test_support::isolated(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(if s3_front {
                ["--s3-listen", "127.0.0.1:0"].as_slice()
            } else {
                ["--no-s3-front"].as_slice()
            })
            .args(extra)
            // Per-request logging would measure the terminal, not the server.
            .env("STATELOCK_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        match store {
            Store::Dir(path) => {
                command.arg(format!("--store=file://{}", path.display()));
            }
            Store::Memory => {
                command.arg("--store=memory://");
            }
            Store::S3 { server, bucket } => {
                command
                    .arg(format!("--store=s3://{bucket}"))
                    .arg(format!("--s3-endpoint={}", server.endpoint))
                    .arg("--s3-path-style")
                    .envs(server.aws_env());
            }
            Store::Endpoint {
                endpoint,
                bucket,
                env,
            } => {
                command
                    .arg(format!("--store=s3://{bucket}"))
                    .arg(format!("--s3-endpoint={endpoint}"))
                    .arg("--s3-path-style")
                    .envs(env.iter().map(|(k, v)| (*k, v)));
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("server stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let Some(addr) = first.trim().strip_prefix("statelock listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "statelock serve did not start (first line {first:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let addr = addr.to_owned();
        // The S3 front's line comes after the http backend's ready-to-paste block.
        let mut s3_endpoint = None;
        if s3_front {
            let mut line = String::new();
            while stdout.read_line(&mut line)? > 0 {
                if let Some(url) = line.trim().strip_prefix("statelock S3 front listening on ") {
                    s3_endpoint = Some(url.to_owned());
                    break;
                }
                line.clear();
            }
            if s3_endpoint.is_none() {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "statelock serve printed no S3 front address; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        Ok(Server {
            addr,
            s3_endpoint,
            child,
            _stdout: stdout,
            log,
        })
    }

    /// The server's process ID, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The path of state `key`, as Terraform's `address`.
    pub fn path(key: &str) -> String {
        format!("/v1/states/{key}")
    }

    /// CPU time used so far and peak memory since start or the last [`Server::reset_peak`].
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let dir = PathBuf::from(format!("/proc/{}", self.child.id()));
        let stat = std::fs::read_to_string(dir.join("stat"))?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let status = std::fs::read_to_string(dir.join("status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc status")?;
        Ok(Usage {
            cpu: Duration::from_millis(ticks * 1000 / per_second),
            peak_rss: kib * 1024,
        })
    }

    /// Resets the peak RSS to the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so the
    /// next [`Server::usage`] reports the peak of one phase only.
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .context("reset peak RSS through /proc clear_refs")
    }

    /// The server's log so far, for error messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
