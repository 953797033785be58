//! The command line. These structs only parse and validate; `serve::ServeConfig` turns them
//! into a store and a server configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::lock_args::LockArgs;
use crate::size::ByteSize;
use crate::store_url::S3Args;

/// Terraform and OpenTofu remote state with S3-native locking.
#[derive(Debug, Parser)]
#[command(name = "statelock", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Terraform/OpenTofu `http` state backend.
    #[command(long_about = SERVE_ABOUT, after_help = SERVE_EXAMPLE)]
    Serve(Box<ServeArgs>),
    /// List, show and remove `.tflock` locks in a bucket (Terraform/OpenTofu `use_lockfile`).
    Locks(crate::commands::locks::LocksArgs),
    /// Check that a store gives real mutual exclusion for lockfile locking.
    #[command(long_about = crate::commands::probe::PROBE_ABOUT, after_help = crate::commands::probe::PROBE_EXIT_CODES)]
    Probe(crate::commands::probe::ProbeArgs),
    /// Check an S3 bucket's settings for Terraform/OpenTofu state (versioning, encryption,
    /// public access, noncurrent-version expiry, Object Lock).
    #[command(long_about = crate::commands::doctor::ABOUT)]
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Print the least-privilege IAM policy for Terraform's S3 backend with lockfile locking.
    #[command(long_about = crate::commands::iam_policy::ABOUT)]
    IamPolicy(crate::commands::iam_policy::IamPolicyArgs),
    /// List states, their history (S3 versions and server history), show, diff and roll back.
    #[command(long_about = crate::commands::state::ABOUT)]
    State(crate::commands::state::StateArgs),
    /// Create tokens for the principals file of `serve --principals`.
    Token(crate::commands::token::TokenArgs),
    /// Move from DynamoDB locking to S3-native .tflock locks: plan, apply, usage check.
    Migrate(crate::commands::migrate::MigrateArgs),
}

const SERVE_ABOUT: &str = "\
Serve the Terraform/OpenTofu `http` state backend.

Each state lives at /v1/states/<key>, where <key> is its object key (slashes allowed, e.g.
team-a/prod/terraform.tfstate). That one URL is the backend's address, lock_address and
unlock_address. Locks are `<key>.tflock` objects, the same ones Terraform's `backend \"s3\"`
writes with `use_lockfile = true`, so both kinds of client exclude each other.

Writes are fenced (only the lock holder may write) and, unless --no-stale-write-guard is given,
refused when they would replace a state with an unrelated lineage or an older serial.

Clients that cannot send the LOCK/UNLOCK methods may lock with PUT and unlock with DELETE
on /v1/locks/<key> instead.";

const SERVE_EXAMPLE: &str = "\
Example:
  statelock serve --listen 127.0.0.1:8080 --store file://./statelock-data

then, in the Terraform configuration (the server prints this block on start):
  terraform {
    backend \"http\" {
      address        = \"http://127.0.0.1:8080/v1/states/team-a/prod/terraform.tfstate\"
      lock_address   = \"http://127.0.0.1:8080/v1/states/team-a/prod/terraform.tfstate\"
      unlock_address = \"http://127.0.0.1:8080/v1/states/team-a/prod/terraform.tfstate\"
      lock_method    = \"LOCK\"
      unlock_method  = \"UNLOCK\"
    }
  }

Configuration:
  Every flag can also be set with its STATELOCK_* variable (shown with each flag) or in a
  TOML file given with --config FILE (or STATELOCK_CONFIG), whose keys are the long flag
  names; `true` switches a flag on. The command line wins over the environment, which
  wins over the file, which wins over the built-in default. For example:
    listen = \"0.0.0.0:8080\"
    store = \"s3://my-bucket/terraform\"
    s3-endpoint = \"http://127.0.0.1:9000\"
    s3-path-style = true
    max-state-size = \"10MiB\"
    lock-wait = \"10m\"

Set STATELOCK_LOG (e.g. debug) to change the log level.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file of flag values keyed by long flag name (e.g. max-state-size = "10MiB");
    /// the command line and STATELOCK_* variables override it. See "Configuration" below.
    // `config_file` reads the file before clap parses; the flag is declared here too so that
    // clap accepts and documents it.
    #[arg(long, env = "STATELOCK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "STATELOCK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where states and locks are kept: file://PATH (a local directory), memory:// (lost on
    /// exit; for trying things out), or s3://BUCKET[/PREFIX] (an S3 or S3-compatible bucket;
    /// see the S3 options below).
    #[arg(
        long,
        env = "STATELOCK_STORE",
        default_value = "file://./statelock-data"
    )]
    pub store: String,

    /// Address of the S3-compatible front, for Terraform's `backend "s3"` (with
    /// `use_lockfile = true`, workspaces included) pointed at it by `endpoints.s3`; port 0
    /// picks a free port (the chosen one is printed). Its one bucket is --bucket-name.
    #[arg(
        long,
        env = "STATELOCK_S3_LISTEN",
        default_value = "127.0.0.1:9000",
        help_heading = "S3 front"
    )]
    pub s3_listen: SocketAddr,

    /// Domains under which a `Host` of `<bucket>.<domain>` is a virtual-hosted-style request
    /// for that bucket (what SDK clients send without `use_path_style`; `<bucket>.localhost`
    /// resolves to the loopback address on systems that follow RFC 6761, systemd-resolved
    /// among them). Comma-separated; other hosts, IP addresses included, are path style.
    #[arg(
        long,
        env = "STATELOCK_S3_DOMAIN",
        value_delimiter = ',',
        default_value = "localhost",
        value_name = "DOMAIN",
        help_heading = "S3 front"
    )]
    pub s3_domain: Vec<String>,

    /// Serve only the `http` backend and the JSON API: no S3 front.
    #[arg(long, env = "STATELOCK_NO_S3_FRONT", help_heading = "S3 front")]
    pub no_s3_front: bool,

    /// Bucket name written into each lock record's Path (`<bucket>/<key>`); defaults to the
    /// S3 bucket, or the directory's name for file:// stores.
    #[arg(long, env = "STATELOCK_BUCKET_NAME")]
    pub bucket_name: Option<String>,

    /// Largest state accepted; larger writes get 413. Accepts sizes like 10MiB, 500KB, 1048576.
    #[arg(long, env = "STATELOCK_MAX_STATE_SIZE", default_value = "64MiB")]
    pub max_state_size: ByteSize,

    /// Accept writes that replace a state with an unrelated lineage or a serial that is not
    /// higher (needed for `state push -force` and lineage-changing migrations).
    #[arg(long, env = "STATELOCK_NO_STALE_WRITE_GUARD")]
    pub no_stale_write_guard: bool,

    /// Versions kept per state in the history (under .statelock/history/ in the store); older
    /// ones are pruned after each write. 0 keeps every version.
    #[arg(long, env = "STATELOCK_HISTORY_RETENTION", default_value_t = statelock_state::history::DEFAULT_RETENTION)]
    pub history_retention: usize,

    #[command(flatten)]
    pub locking: LockArgs,

    #[command(flatten)]
    pub security: crate::security::SecurityArgs,

    #[command(flatten)]
    pub transport: crate::transport::TransportArgs,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub dual_lock: crate::dual_lock::DualLockArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults() {
        let Command::Serve(args) = Cli::try_parse_from(["statelock", "serve"]).unwrap().command
        else {
            panic!("not serve")
        };
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.store, "file://./statelock-data");
        assert_eq!(args.max_state_size.bytes(), 64 * 1024 * 1024);
        assert!(!args.no_stale_write_guard);
        assert_eq!(args.history_retention, 100);
        assert!(!args.s3.allow_unsafe_store && args.s3.s3_endpoint.is_none());
    }

    #[test]
    fn kms_key_needs_kms_encryption() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["statelock", "serve", "--store", "s3://b"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let config = |extra: &[&str]| {
            let Command::Serve(args) = parse(extra).unwrap().command else {
                panic!("not serve")
            };
            crate::serve::ServeConfig::from_args(*args)
        };
        assert!(config(&["--s3-kms-key-id", "k"]).is_err());
        assert!(config(&["--s3-sse", "kms", "--s3-kms-key-id", "k"]).is_ok());
        assert!(parse(&["--s3-sse", "aes"]).is_err());
    }
}
