//! `statelock doctor`: checks that an S3 bucket is set up the way a Terraform/OpenTofu state
//! bucket should be, and prints the command that fixes each failure.

mod checks;
mod fetch;
pub(crate) mod finding;
mod fix;
mod render;

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::store_url::S3Args;
use crate::store_url::{StoreUrl, connect_s3};

use finding::Report;
use fix::Fixes;

/// Exit code for a store that is not an S3 bucket, as for other usage errors.
const EXIT_NOT_S3: u8 = 2;

pub const ABOUT: &str = "\
Check an S3 bucket's settings for Terraform/OpenTofu state.

Checks: versioning (Enabled, so a bad state can be restored), default encryption (SSE-S3
or SSE-KMS), the public access block (all four settings on), a lifecycle rule that expires
noncurrent versions under the prefix (every lock and state write leaves one, see
terraform#36445), and Object Lock (informational).

Each finding is ok, info, warn or fail, with a one-line reason and, for failures, the
`aws s3api` command that fixes it. A setting the store cannot report (S3-compatible servers
often answer 501 NotImplemented) is a warning, never ok.

Exit code: 0 without failures, 4 with at least one failure, 1 if the check itself could
not run, 2 for a store that is not an S3 bucket.";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The bucket to check, as s3://BUCKET[/PREFIX]; the prefix is where the states live.
    #[arg(long, env = "STATELOCK_STORE")]
    pub store: String,

    /// Print the findings as JSON, for automation.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub s3: S3Args,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let (bucket, prefix) = match StoreUrl::parse(&args.store)? {
        StoreUrl::S3 { bucket, prefix } => (bucket, prefix),
        _ => {
            eprintln!(
                "statelock: doctor checks S3 bucket settings; {} is not an s3:// store",
                args.store
            );
            return Ok(ExitCode::from(EXIT_NOT_S3));
        }
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(diagnose(&args, bucket, prefix))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::table(&report));
    }
    Ok(report.exit_code())
}

async fn diagnose(
    args: &DoctorArgs,
    bucket: String,
    prefix: Option<String>,
) -> anyhow::Result<Report> {
    let store = connect_s3(&bucket, prefix.as_deref(), &args.s3).await?;
    let settings = fetch::read(store.client(), &bucket)
        .await
        .with_context(|| format!("cannot read the settings of bucket {bucket}"))?;
    let fixes = Fixes::new(&bucket, store.config().endpoint.as_deref());
    let key_space = checks::key_space(prefix.as_deref());
    let findings = vec![
        checks::versioning(&settings.versioning, &fixes),
        checks::encryption(&settings.encryption, &fixes),
        checks::public_access(&settings.public_access, &fixes),
        checks::noncurrent_expiry(&settings.lifecycle, &key_space, &fixes),
        checks::object_lock(&settings.object_lock),
    ];
    let store_text = match &prefix {
        Some(p) => format!("s3://{bucket}/{p}"),
        None => format!("s3://{bucket}"),
    };
    Ok(Report::new(store_text, bucket, prefix, findings))
}
