//! `statelock token create`: a new token for a principal, printed once; only its SHA-256 goes
//! into the principals file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use statelock_auth::{Grant, create_token};
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
    let TokenCommand::Create(args) = args.command;
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
