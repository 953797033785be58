//! `state show KEY [VERSION]`: one version in brief (serial, lineage, Terraform version,
//! resources, outputs with sensitive values withheld), or its exact bytes with `--raw`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Args;
use statelock_core::state::StateSummary;
use statelock_state::history::md5_hex;

use super::KeyArgs;
use crate::commands::locks::state_key;
use crate::commands::nothing_or_refused;
use statelock_state::versions::{self, CURRENT, Fetched};

pub const ABOUT: &str = "\
Show one version of a state: serial, lineage, Terraform version, resource count and outputs.
Sensitive output values are never printed. VERSION is an ID from `statelock state history`
(an S3 version ID or a server history ID); without it, the current state. --raw prints the
version's exact bytes instead, e.g. to inspect it or keep a copy.";

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub target: KeyArgs,

    /// The version ID; `current` (the default) is the state as it is now.
    #[arg(default_value = CURRENT)]
    pub version: String,

    /// One JSON object instead of text.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,

    /// The version's bytes, exactly as stored.
    #[arg(long)]
    pub raw: bool,
}

pub async fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let key = state_key(&args.target.key)?;
    let store = args.target.store.open().await?;
    let fetched = match versions::fetch(&*store, &key, &args.version).await {
        Ok(f) => f,
        Err(e) if e.is_missing() => {
            eprintln!("statelock: {e}");
            return Ok(nothing_or_refused());
        }
        Err(e) => return Err(e.into()),
    };
    if args.raw {
        std::io::stdout().write_all(&fetched.body)?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = StateSummary::parse(&fetched.body).map_err(|e| {
        anyhow::anyhow!(
            "version {} of {key} is not a state document: {e}",
            fetched.id
        )
    })?;
    if args.json {
        let doc = serde_json::json!({
            "key": key.as_str(),
            "id": fetched.id,
            "source": fetched.source,
            "size": fetched.body.len(),
            "md5": md5_hex(&fetched.body),
            "state": summary,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(key.as_str(), &fetched, &summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn render(key: &str, fetched: &Fetched, s: &StateSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "State:             {key}");
    let _ = writeln!(
        out,
        "Version:           {} ({})",
        fetched.id,
        fetched.source.name()
    );
    let _ = writeln!(out, "Serial:            {}", or_dash(s.serial));
    let _ = writeln!(out, "Lineage:           {}", or_dash(s.lineage.as_deref()));
    let _ = writeln!(
        out,
        "Terraform version: {}",
        or_dash(s.terraform_version.as_deref())
    );
    let _ = writeln!(
        out,
        "Size, MD5:         {} bytes, {}",
        fetched.body.len(),
        md5_hex(&fetched.body)
    );
    if s.encrypted {
        out.push_str("Encrypted:         yes (OpenTofu); resources and outputs are sealed\n");
        return out;
    }
    let _ = writeln!(
        out,
        "Resources:         {} ({} instances)",
        or_dash(s.resources),
        or_dash(s.instances)
    );
    let outputs = s.outputs.as_deref().unwrap_or_default();
    let _ = writeln!(out, "Outputs:           {}", outputs.len());
    for o in outputs {
        let value = match &o.value {
            Some(v) if !o.sensitive => v.to_string(),
            _ => "(sensitive)".to_owned(),
        };
        let _ = writeln!(out, "  {} = {value}", o.name);
    }
    out
}
