//! Scenario 7: Terraform 1.15.5's own `backend "s3"` with `use_lockfile = true`, pointed at
//! statelock's S3 front (`endpoints = { s3 = … }`) versus pointed at the bucket itself, moto,
//! with the server's store on that same bucket. Nothing but the endpoint and the credentials
//! differ, so the comparison is what a user gets by changing one line.
//!
//! - One apply: what the extra hop costs when nobody contends. The two arms alternate, apply by
//!   apply, so drift on a shared machine falls on both alike.
//! - Concurrent applies on one state: the front's lock queue (`serve --lock-wait 5m`, no
//!   `-lock-timeout`) versus Terraform retrying a held `.tflock` on the bucket
//!   (`-lock-timeout=5m`, its 1 s → 16 s back-off). Repeated `--repetitions` times: the
//!   retrying arm's wall time is set by which retry the last run wins (attempts at 0, 1, 3,
//!   7, 15, 31 s…), so one run alone can land several-fold either way.

use std::path::Path;

use anyhow::Context;
use statelock_test_support::{REGION, S3Server};

use crate::server::{Server, Store};
use crate::stats::Samples;
use crate::terraform::{self, Backend, Outcome};

/// The state keys of the single-apply part, one per arm, so no arm inherits the other's lock
/// or serial; the concurrent part adds the repetition to its keys for the same reason.
const SINGLE_FRONT: &str = "s3-front/single-front.tfstate";
const SINGLE_DIRECT: &str = "s3-front/single-direct.tfstate";

/// Sequential applies per arm in the single-apply part: enough for a median that one slow
/// run on a shared machine does not move.
pub const SINGLE_APPLIES: usize = 5;

/// The single-apply part: per-apply times of each arm.
pub struct Single {
    pub front: Samples,
    pub direct: Samples,
}

/// The concurrent part: each arm's outcome and how far the state's serial moved.
pub struct Concurrent {
    pub front: Outcome,
    pub front_serials: Option<u64>,
    pub direct: Outcome,
    pub direct_serials: Option<u64>,
}

/// What the AWS SDK needs to sign requests to the front: without `--principals` it accepts
/// any key and secret, and these make it obvious that no moto credential reaches it.
fn front_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "statelock".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "statelock".to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
    ]
}

fn front<'a>(endpoint: &'a str, bucket: &'a str, key: &'a str) -> Backend<'a> {
    Backend::S3Lockfile {
        endpoint,
        bucket,
        key,
        env: front_env(),
        // The server's queue answers a held lock when it is free; Terraform never retries.
        lock_timeout: None,
    }
}

fn direct<'a>(moto: &'a S3Server, bucket: &'a str, key: &'a str) -> Backend<'a> {
    Backend::S3Lockfile {
        endpoint: &moto.endpoint,
        bucket,
        key,
        env: moto.aws_env(),
        lock_timeout: Some("-lock-timeout=5m"),
    }
}

/// Starts `statelock serve` on `bucket` with the S3 front on a free port.
fn serve(
    binary: &Path,
    moto: &'static S3Server,
    bucket: &str,
    extra: &[&str],
    work: &Path,
) -> anyhow::Result<(Server, String)> {
    let server = Server::start_with_s3_front(
        binary,
        Store::S3 {
            server: moto,
            bucket,
        },
        extra,
        work,
    )?;
    let endpoint = server.s3_endpoint.clone().context("no S3 front address")?;
    Ok((server, endpoint))
}

/// `applies` sequential applies per arm, alternating front and direct, each after an untimed
/// `init`; every apply sets a new `n`, so each one writes a new state.
pub fn single(
    binary: &Path,
    moto: &'static S3Server,
    bucket: &str,
    work: &Path,
    applies: usize,
) -> anyhow::Result<Single> {
    let (server, endpoint) = serve(binary, moto, bucket, &[], work)?;
    let via = front(&endpoint, bucket, SINGLE_FRONT);
    let on_bucket = direct(moto, bucket, SINGLE_DIRECT);
    let via_dir = terraform::init(&work.join("s3-front-single-front"), &via, 1)?.remove(0);
    let direct_dir =
        terraform::init(&work.join("s3-front-single-direct"), &on_bucket, 1)?.remove(0);
    let (mut front_times, mut direct_times) = (Samples::default(), Samples::default());
    for n in 1..=applies {
        front_times.push(
            terraform::apply(&via_dir, &via, n)
                .with_context(|| format!("through the S3 front; server log:\n{}", server.log()))?,
        );
        direct_times.push(terraform::apply(&direct_dir, &on_bucket, n)?);
    }
    Ok(Single {
        front: front_times,
        direct: direct_times,
    })
}

/// `runs` applies started at once on one state, through the front (`--lock-wait 5m`), then
/// directly on the bucket (`-lock-timeout=5m`), on fresh states and directories for
/// repetition `rep`. An untimed apply creates each state first, so that the serial before
/// and after shows how many runs landed.
pub fn concurrent(
    binary: &Path,
    moto: &'static S3Server,
    bucket: &str,
    work: &Path,
    runs: usize,
    rep: usize,
) -> anyhow::Result<Concurrent> {
    let (server, endpoint) = serve(binary, moto, bucket, &["--lock-wait", "5m"], work)?;
    let front_key = format!("s3-front/concurrent-front-{rep}.tfstate");
    let via = front(&endpoint, bucket, &front_key);
    let (front, front_serials) = measure(
        &work.join(format!("s3-front-concurrent-front-{rep}")),
        &via,
        runs,
        || serial(moto, bucket, &front_key),
    )
    .with_context(|| format!("through the S3 front; server log:\n{}", server.log()))?;
    drop(server);
    let direct_key = format!("s3-front/concurrent-direct-{rep}.tfstate");
    let on_bucket = direct(moto, bucket, &direct_key);
    let (direct, direct_serials) = measure(
        &work.join(format!("s3-front-concurrent-direct-{rep}")),
        &on_bucket,
        runs,
        || serial(moto, bucket, &direct_key),
    )?;
    Ok(Concurrent {
        front,
        front_serials,
        direct,
        direct_serials,
    })
}

fn measure(
    root: &Path,
    backend: &Backend<'_>,
    runs: usize,
    serial: impl Fn() -> Option<u64>,
) -> anyhow::Result<(Outcome, Option<u64>)> {
    let dirs = terraform::init(root, backend, runs)?;
    terraform::apply(&dirs[0], backend, 0)?;
    let before = serial();
    let outcome = terraform::concurrent(&dirs, backend)?;
    let grew = before.zip(serial()).map(|(b, a)| a.saturating_sub(b));
    Ok((outcome, grew))
}

/// The `serial` of the state object `key`, read from the bucket with boto3; `None` when it
/// cannot be read, since the figure is only a cross-check of the failures column.
fn serial(moto: &S3Server, bucket: &str, key: &str) -> Option<u64> {
    let out = moto
        .try_boto3(
            r#"
body = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read()
print(json.loads(body)["serial"])
"#,
            &[bucket, key],
        )
        .ok()?;
    out.trim().parse().ok()
}
