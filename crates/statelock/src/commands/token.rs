//! `statelock token create`: a new token for a principal, printed once; only its SHA-256 goes
//! into the principals file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use statelock_auth::{Grant, Principals, S3SecretKey, check_access_key, create_token};
use statelock_core::Timestamp;

pub const ABOUT: &str = "\
Create tokens for principals of `statelock serve --principals FILE`.

A principal is a name, one or more tokens and grants of PERMISSION:PATTERN. Permissions are
read < lock < write < admin, each implying the ones before it: `lock` is what `terraform plan`
needs (it locks), `write` what `apply` needs, and only `admin` may force-unlock, take over an
idle lock (--lock-ttl) or roll back. Patterns match state keys: `*` within one path segment,
`**` across segments (team-a/**, */prod/*.tfstate).

The token is printed once, on stdout, and stored nowhere: the file keeps only its SHA-256.
Send SIGHUP to the server to load the new file.";

const EXAMPLES: &str = "\
Examples:
  statelock token create ci-team-a --grant write:team-a/** --principals principals.toml
  statelock token create viewer --grant lock:** --principals principals.toml   # plan, not apply
  statelock token create ci-team-a --principals principals.toml   # a second token, same grants
  kill -HUP $(pidof statelock)

Terraform then authenticates with
  backend \"http\" { username = \"ci-team-a\" ... }   and   TF_HTTP_PASSWORD=<token>";

#[derive(Debug, Args)]
#[command(long_about = ABOUT)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Generate a token for NAME (creating the principal with --grant if it is new).
    #[command(long_about = ABOUT, after_help = EXAMPLES)]
    Create(CreateArgs),
    /// Print the S3 credentials of principal NAME, for the server's S3 front.
    #[command(long_about = S3_ABOUT, after_help = S3_EXAMPLES)]
    S3(S3Args),
}

const S3_ABOUT: &str = "\
Print the S3 credentials of a principal for `statelock serve`'s S3 front (Terraform's
`backend \"s3\"` pointed at it): the access key ID is the principal's name, and the secret is
derived from the server's S3 secret key (HMAC-SHA256 of the name), so the principals file
still holds no secret. The key file is created (32 random bytes, mode 0600) if it does not
exist; give the same file to `serve --s3-secret-key-file`. The principal's grants apply to
every key over S3, workspace keys (env:/<workspace>/<key>) included. Removing the principal
from the principals file revokes its S3 access too; replacing the key file rotates every
principal's secret.";

const S3_EXAMPLES: &str = "\
Examples:
  statelock token s3 ci-team-a --principals principals.toml --s3-secret-key-file s3.key
  statelock serve --principals principals.toml --s3-secret-key-file s3.key

Terraform then signs with
  AWS_ACCESS_KEY_ID=ci-team-a AWS_SECRET_ACCESS_KEY=<printed secret> terraform init";

#[derive(Debug, Args)]
pub struct S3Args {
    /// The principal (it must exist in the principals file).
    pub name: String,

    /// The principals file.
    #[arg(long, env = "STATELOCK_PRINCIPALS", value_name = "FILE")]
    pub principals: PathBuf,

    /// The server's S3 secret key (created if absent).
    #[arg(long, env = "STATELOCK_S3_SECRET_KEY_FILE", value_name = "FILE")]
    pub s3_secret_key_file: PathBuf,

    /// Print {"principal", "access_key_id", "secret_access_key", "key_file"} as JSON instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The principal: the HTTP Basic user name (Terraform's `username`).
    pub name: String,

    /// PERMISSION:PATTERN, e.g. write:team-a/** (repeat for several). Needed for a new
    /// principal; for an existing one, leave it out to add a token with the same grants.
    #[arg(long = "grant", value_name = "PERMISSION:PATTERN", value_parser = Grant::parse)]
    pub grants: Vec<Grant>,

    /// The principals file (created if absent).
    #[arg(long, env = "STATELOCK_PRINCIPALS", value_name = "FILE")]
    pub principals: PathBuf,

    /// Print {"principal", "token", "file"} as JSON instead.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let args = match args.command {
        TokenCommand::Create(args) => args,
        TokenCommand::S3(args) => return s3_credentials(&args),
    };
    let created = Timestamp::now().to_rfc3339();
    let token = create_token(&args.principals, &args.name, &args.grants, &created)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "principal": args.name,
                "token": token,
                "file": args.principals.display().to_string(),
            })
        );
    } else {
        eprintln!(
            "token for principal {:?} added to {} (only its SHA-256 is stored; this is the only \
             time it is shown). Send SIGHUP to a running server to load it.",
            args.name,
            args.principals.display()
        );
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}

fn s3_credentials(args: &S3Args) -> anyhow::Result<ExitCode> {
    let principals = Principals::load(&args.principals)?;
    if principals.get(&args.name).is_none() {
        anyhow::bail!(
            "principal {:?} is not in {}; create it with `statelock token create {} --grant ...`",
            args.name,
            args.principals.display(),
            args.name
        );
    }
    check_access_key(&args.name)?;
    let key = S3SecretKey::load_or_create(&args.s3_secret_key_file)?;
    let secret = key.secret_for(&args.name);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "principal": args.name,
                "access_key_id": args.name,
                "secret_access_key": secret,
                "key_file": args.s3_secret_key_file.display().to_string(),
            })
        );
    } else {
        eprintln!(
            "S3 credentials of principal {:?} (derived from {}; the server needs \
             --s3-secret-key-file with that file):",
            args.name,
            args.s3_secret_key_file.display()
        );
        println!("AWS_ACCESS_KEY_ID={}", args.name);
        println!("AWS_SECRET_ACCESS_KEY={secret}");
    }
    Ok(ExitCode::SUCCESS)
}
