//! `statelock iam-policy`: prints the least-privilege IAM policy for Terraform's and
//! OpenTofu's `backend "s3"` with `use_lockfile = true`.

mod policy;

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use policy::Scope;

pub const ABOUT: &str = "\
Print the least-privilege IAM policy for Terraform's S3 backend with lockfile locking
(`use_lockfile = true`, Terraform >= 1.10, OpenTofu >= 1.10).

The policy allows s3:ListBucket only for the given keys and prefixes (an s3:prefix
condition); s3:GetObject and s3:PutObject on the state objects; and s3:GetObject,
s3:PutObject and s3:DeleteObject on their `.tflock` lock objects (terraform#36139: releasing
a lock deletes it).

--read-only drops s3:PutObject on the states but keeps the lock permissions, because
`terraform plan` takes the lock too. Readers that always run with -lock=false can add
--no-lock to drop them.

The output is stable: same flags, same bytes.";

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The state bucket.
    #[arg(long)]
    pub bucket: String,

    /// A state key, as the backend's `key` (repeat for several).
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,

    /// Allow every state under this key prefix (repeat for several).
    #[arg(long = "prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,

    /// Also cover non-default workspaces, stored as <PREFIX>/<workspace>/<key>; the
    /// backend's `workspace_key_prefix`, `env:` if given without a value.
    #[arg(long, value_name = "PREFIX", num_args = 0..=1, default_missing_value = "env:")]
    pub workspace_key_prefix: Option<String>,

    /// Read the states but not write them (plan, output, remote-state readers). Keeps the
    /// lock permissions, since plan locks too; add --no-lock for -lock=false readers.
    #[arg(long)]
    pub read_only: bool,

    /// Leave out the `.tflock` permissions, for clients that always run with -lock=false.
    #[arg(long)]
    pub no_lock: bool,

    /// ARN of the KMS key the states are encrypted with (`kms_key_id`).
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,

    /// ARN of a DynamoDB lock table still in use next to the lockfile (`dynamodb_table`).
    #[arg(long, value_name = "ARN")]
    pub dynamodb_table: Option<String>,

    /// ARN partition: aws, aws-cn or aws-us-gov.
    #[arg(long, default_value = "aws")]
    pub partition: String,
}

pub fn run(args: IamPolicyArgs) -> anyhow::Result<ExitCode> {
    let scope = scope(args)?;
    println!("{}", serde_json::to_string_pretty(&scope.policy())?);
    Ok(ExitCode::SUCCESS)
}

/// Checks the flags with the S3 backend's own rules for `key` and `workspace_key_prefix`.
fn scope(args: IamPolicyArgs) -> anyhow::Result<Scope> {
    if args.bucket.is_empty() || args.bucket.contains('/') {
        bail!("--bucket must be a bucket name, without slashes");
    }
    if args.keys.is_empty() && args.prefixes.is_empty() {
        bail!("give at least one --key or --prefix");
    }
    for key in &args.keys {
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains("//") {
            bail!("--key {key:?}: a key must not be empty, start or end with '/', or contain '//'");
        }
    }
    let prefixes: Vec<String> = args
        .prefixes
        .iter()
        .map(|p| p.trim_matches('/').to_owned())
        .collect();
    if prefixes.iter().any(String::is_empty) {
        bail!(
            "--prefix must not be empty; to allow the whole bucket use a broader policy on purpose"
        );
    }
    if let Some(ws) = &args.workspace_key_prefix
        && (ws.starts_with('/') || ws.ends_with('/'))
    {
        bail!("--workspace-key-prefix must not start or end with '/'");
    }
    for (flag, arn) in [
        ("--kms-key", &args.kms_key),
        ("--dynamodb-table", &args.dynamodb_table),
    ] {
        if let Some(arn) = arn
            && !arn.starts_with("arn:")
        {
            bail!("{flag} needs an ARN (arn:...), got {arn:?}");
        }
    }
    if args
        .kms_key
        .as_deref()
        .is_some_and(|k| k.contains(":alias/"))
    {
        bail!("--kms-key needs the key's ARN: IAM does not match a key by its alias ARN");
    }
    Ok(Scope {
        partition: args.partition,
        bucket: args.bucket,
        keys: args.keys,
        prefixes,
        workspace_key_prefix: args.workspace_key_prefix,
        read_only: args.read_only,
        no_lock: args.no_lock,
        kms_key: args.kms_key,
        dynamodb_table: args.dynamodb_table,
    })
}
