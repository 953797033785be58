//! Scenario 2: the traditional setup with real clients. Concurrent Terraform 1.0.3 `apply` runs
//! on one state: through statelock with `?wait=` on the lock address, versus `backend "s3"`
//! with a DynamoDB lock table on moto and `-lock-timeout=5m`.
//!
//! The runner is shared with scenario 7 (`s3_front.rs`), whose Terraform 1.15.5 `backend "s3"`
//! with `use_lockfile` is one more [`Backend`]; each backend names the release it needs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use statelock_test_support::{REGION, S3Server, Terraform, isolated};

/// The outputs-only configuration after the backend block: no provider to download.
const BODY: &str = "variable \"n\" {\n  default = 0\n}\noutput \"n\" {\n  value = var.n\n}\n";

/// How the runs reach their state.
pub enum Backend<'a> {
    /// The statelock server at `url` (the state's address); LOCKs wait with `?wait=5m`.
    Statelock { url: &'a str },
    /// Terraform's own S3 backend on moto, locking with DynamoDB table `table`.
    S3Dynamo {
        server: &'static S3Server,
        bucket: &'a str,
        table: &'a str,
    },
    /// Terraform 1.15.5's `backend "s3"` with `use_lockfile = true` at `endpoint`: moto itself,
    /// or statelock's S3 front in front of the same bucket.
    S3Lockfile {
        endpoint: &'a str,
        bucket: &'a str,
        key: &'a str,
        /// Credentials and region for the AWS SDK, which signs every request.
        env: Vec<(&'static str, String)>,
        /// `-lock-timeout=…` for `apply`, or `None` when the server's queue does the waiting.
        lock_timeout: Option<&'static str>,
    },
}

impl Backend<'_> {
    fn block(&self) -> String {
        match self {
            Backend::Statelock { url } => format!(
                "terraform {{\n  backend \"http\" {{\n    address = \"{url}\"\n    lock_address = \"{url}?wait=5m\"\n    unlock_address = \"{url}\"\n    lock_method = \"LOCK\"\n    unlock_method = \"UNLOCK\"\n  }}\n}}\n"
            ),
            Backend::S3Dynamo {
                server,
                bucket,
                table,
            } => format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key = \"bench/terraform.tfstate\"\n    region = \"{REGION}\"\n    endpoint = \"{e}\"\n    dynamodb_endpoint = \"{e}\"\n    dynamodb_table = \"{table}\"\n    force_path_style = true\n    skip_credentials_validation = true\n    skip_metadata_api_check = true\n    skip_region_validation = true\n  }}\n}}\n",
                e = server.endpoint
            ),
            // As the e2e suite's `Workdir::s3_at` writes it for 1.15.5: the endpoint
            // arguments were renamed in 1.6 (`endpoints`, `use_path_style`), and the account
            // id lookup (STS/IAM) has nothing to answer it on either server.
            Backend::S3Lockfile {
                endpoint,
                bucket,
                key,
                ..
            } => format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key = \"{key}\"\n    region = \"{REGION}\"\n    endpoints = {{\n      s3 = \"{endpoint}\"\n      dynamodb = \"{endpoint}\"\n    }}\n    use_path_style = true\n    use_lockfile = true\n    skip_requesting_account_id = true\n    skip_credentials_validation = true\n    skip_metadata_api_check = true\n    skip_region_validation = true\n  }}\n}}\n"
            ),
        }
    }

    /// The Terraform release this backend is written for: `use_lockfile` needs 1.10 or later.
    fn release(&self) -> Terraform {
        match self {
            Backend::Statelock { .. } | Backend::S3Dynamo { .. } => Terraform::V1_0_3,
            Backend::S3Lockfile { .. } => Terraform::V1_15_5,
        }
    }

    /// Extra `apply` flags: only the S3 backends on the bucket need Terraform to retry.
    fn apply_flags(&self) -> &[&'static str] {
        match self {
            Backend::Statelock { .. } => &[],
            Backend::S3Dynamo { .. } => &["-lock-timeout=5m"],
            Backend::S3Lockfile { lock_timeout, .. } => lock_timeout.as_slice(),
        }
    }

    /// How many lines of Terraform's error the failure summary keeps. 1.15.5's AWS SDK v2
    /// errors wrap over many lines (two S3 calls, each with its request ids), and the part
    /// that names the cause comes last.
    fn error_lines(&self) -> usize {
        match self {
            Backend::Statelock { .. } | Backend::S3Dynamo { .. } => 6,
            Backend::S3Lockfile { .. } => 16,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Statelock { .. } => Vec::new(),
            Backend::S3Dynamo { server, .. } => server.aws_env(),
            Backend::S3Lockfile { env, .. } => env.clone(),
        }
    }
}

/// How often one run is started before it counts as failed: a failed apply is started again,
/// as a CI pipeline's retry would, so that the wall time is the time until every run has
/// landed (a run that fails early would otherwise shorten it).
pub const ATTEMPTS: usize = 3;

/// Wall time of the concurrent applies and what failed.
pub struct Outcome {
    pub runs: usize,
    /// Until every run has landed or used up its [`ATTEMPTS`].
    pub wall: Duration,
    /// (run number, Terraform's error) of each failed attempt, including those then rerun.
    pub failures: Vec<(usize, String)>,
    /// Runs that failed all their attempts.
    pub gave_up: usize,
    /// The slowest single run, its reruns included.
    pub slowest: Duration,
}

impl Outcome {
    /// The failures column: `0`, or the failed attempts, how many runs never landed, and
    /// Terraform's errors.
    pub fn failures_cell(&self) -> String {
        if self.failures.is_empty() {
            return "0".to_owned();
        }
        let landed = if self.gave_up == 0 {
            "all rerun and landed".to_owned()
        } else {
            format!("{} run(s) never landed", self.gave_up)
        };
        format!(
            "{} failed attempt(s), {landed}: {}",
            self.failures.len(),
            summarize(&self.failures)
        )
    }
}

/// Creates `runs` working directories under `root` for `backend`, runs `terraform init` in
/// each (not timed), then starts every `apply` at once and times them.
pub fn run(root: &Path, backend: &Backend<'_>, runs: usize) -> anyhow::Result<Outcome> {
    let dirs = init(root, backend, runs)?;
    concurrent(&dirs, backend)
}

/// Creates `runs` working directories under `root` for `backend` and runs `terraform init`
/// in each.
pub fn init(root: &Path, backend: &Backend<'_>, runs: usize) -> anyhow::Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = (0..runs).map(|i| root.join(format!("run-{i}"))).collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("main.tf"), backend.block() + BODY)?;
        let init = terraform(dir, backend, &["init", "-input=false"])?;
        if !init.status.success() {
            bail!(
                "terraform init failed in {}:\n{}",
                dir.display(),
                text(&init)
            );
        }
    }
    Ok(dirs)
}

/// One `apply -var n=N` in `dir` and how long it took; a failed apply is an error.
pub fn apply(dir: &Path, backend: &Backend<'_>, n: usize) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let out = terraform(dir, backend, &apply_args(backend, &format!("n={n}")))?;
    let took = began.elapsed();
    if !out.status.success() {
        bail!(
            "terraform apply failed in {}:\n{}",
            dir.display(),
            text(&out)
        );
    }
    Ok(took)
}

fn apply_args<'a>(backend: &'a Backend<'_>, var: &'a str) -> Vec<&'a str> {
    let mut args = vec!["apply", "-input=false", "-auto-approve", "-var", var];
    args.extend_from_slice(backend.apply_flags());
    args
}

/// Starts an `apply` in each of `dirs` (initialised by [`init`]) at the same moment, run `i`
/// setting `n = i + 1`, and times them.
pub fn concurrent(dirs: &[PathBuf], backend: &Backend<'_>) -> anyhow::Result<Outcome> {
    let runs = dirs.len();
    let barrier = Barrier::new(runs);
    let start = Instant::now();
    type Attempts = (Vec<Output>, Duration);
    let results: Vec<anyhow::Result<Attempts>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let began = Instant::now();
                    let var = format!("n={}", i + 1);
                    let mut attempts = Vec::new();
                    while attempts.len() < ATTEMPTS {
                        let out = terraform(dir, backend, &apply_args(backend, &var))?;
                        let landed = out.status.success();
                        attempts.push(out);
                        if landed {
                            break;
                        }
                    }
                    Ok((attempts, began.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("terraform thread panicked"))
            .collect()
    });
    let wall = start.elapsed();
    let mut failures = Vec::new();
    let mut gave_up = 0;
    let mut slowest = Duration::ZERO;
    for (i, result) in results.into_iter().enumerate() {
        let (attempts, took) = result?;
        slowest = slowest.max(took);
        if attempts.last().is_none_or(|out| !out.status.success()) {
            gave_up += 1;
        }
        for out in attempts.iter().filter(|out| !out.status.success()) {
            failures.push((i, first_error(out, backend.error_lines())));
        }
    }
    Ok(Outcome {
        runs,
        wall,
        failures,
        gave_up,
        slowest,
    })
}

fn terraform(dir: &Path, backend: &Backend<'_>, args: &[&str]) -> anyhow::Result<Output> {
    let bin = backend.release().bin();
    isolated(&bin)
        .arg(args[0])
        .arg("-no-color")
        .args(&args[1..])
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_DATA_DIR", dir.join(".tfdata"))
        .env("TF_CLI_CONFIG_FILE", dir.join("none.tfrc"))
        .envs(backend.env())
        .output()
        .with_context(|| format!("run {}", bin.display()))
}

/// Creates the DynamoDB lock table Terraform's S3 backend expects (partition key `LockID`).
pub fn create_lock_table(server: &S3Server, table: &str) -> anyhow::Result<()> {
    server
        .try_create_lock_table(table)
        .map_err(anyhow::Error::msg)
}

/// Terraform's first error with up to `max_lines` lines that explain it, on one line, without
/// the generic advice that follows, and without the AWS SDK v2's per-request ids, so that the
/// same error in two runs groups as one.
fn first_error(out: &Output, max_lines: usize) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim().trim_start_matches('│').trim())
        .filter(|l| !l.is_empty() && !l.starts_with('╷') && !l.starts_with('╵'))
        .collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return lines.first().copied().unwrap_or("no output").to_owned();
    };
    let joined = lines[at..]
        .iter()
        .take_while(|l| !l.starts_with("Terraform acquires a state lock"))
        .take(max_lines)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    without_request_ids(&joined)
}

/// `… StatusCode: 412, RequestID: X, HostID: Y, api error …` without `RequestID: X, ` and
/// `HostID: Y, `.
fn without_request_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut words = text.split(' ').peekable();
    while let Some(word) = words.next() {
        if word == "RequestID:" || word == "HostID:" {
            // The id itself, with its trailing comma.
            words.next();
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Failures grouped by message: `2× <message> (runs 0, 1)`.
pub fn summarize(failures: &[(usize, String)]) -> String {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (run, message) in failures {
        match groups.iter_mut().find(|(m, _)| m == message) {
            Some((_, runs)) => runs.push(*run),
            None => groups.push((message, vec![*run])),
        }
    }
    groups
        .iter()
        .map(|(message, runs)| {
            let runs: Vec<String> = runs.iter().map(usize::to_string).collect();
            format!("{}× {message} (runs {})", runs.len(), runs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::{summarize, without_request_ids};

    #[test]
    fn request_ids_are_dropped() {
        assert_eq!(
            without_request_ids(
                "StatusCode: 412, RequestID: abc, HostID: x/y=, api error PreconditionFailed"
            ),
            "StatusCode: 412, api error PreconditionFailed"
        );
    }

    #[test]
    fn failures_are_grouped_by_message() {
        let failures = vec![
            (0, "a".to_owned()),
            (3, "b".to_owned()),
            (5, "a".to_owned()),
        ];
        assert_eq!(summarize(&failures), "2× a (runs 0, 5); 1× b (runs 3)");
    }
}
