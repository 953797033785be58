//! `state diff KEY FROM [TO]`: resources added, removed and changed by address, and outputs
//! changed, between two versions (TO defaults to the current state).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use statelock_core::state::{DiffError, OutputChange, StateDiff, diff};

use super::KeyArgs;
use crate::commands::locks::state_key;
use crate::commands::nothing_or_refused;
use statelock_state::versions::{self, CURRENT, Fetched};

pub const ABOUT: &str = "\
Compare two versions of a state: resources added (+), removed (-) and changed (~) by address
(e.g. module.web.aws_instance.app[0]), and outputs added, removed and changed with their values
(sensitive values are never printed). FROM and TO are IDs from `statelock state history`;
TO defaults to `current`. OpenTofu-encrypted states cannot be compared.";

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub target: KeyArgs,

    /// The older version's ID.
    pub from: String,

    /// The newer version's ID; `current` (the default) is the state as it is now.
    #[arg(default_value = CURRENT)]
    pub to: String,

    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let key = state_key(&args.target.key)?;
    let store = args.target.store.open().await?;
    let mut sides = Vec::with_capacity(2);
    for id in [&args.from, &args.to] {
        match versions::fetch(&*store, &key, id).await {
            Ok(f) => sides.push(f),
            Err(e) if e.is_missing() => {
                eprintln!("statelock: {e}");
                return Ok(nothing_or_refused());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (from, to) = (&sides[0], &sides[1]);
    let d = diff(&from.body, &to.body).map_err(|e| match e {
        DiffError::Encrypted(side) => {
            anyhow::anyhow!(
                "encrypted, cannot diff: {side} ({}) of {key} is an OpenTofu-encrypted state",
                name(from, to, side)
            )
        }
        DiffError::NotAState(side, reason) => anyhow::anyhow!(
            "cannot diff: {side} ({}) of {key} is not a state document: {reason}",
            name(from, to, side)
        ),
    })?;
    if args.json {
        let doc = serde_json::json!({
            "key": key.as_str(),
            "from": {"id": from.id, "source": from.source},
            "to": {"id": to.id, "source": to.source},
            "resources": d.resources,
            "outputs": d.outputs,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{key}: {} ({}) -> {} ({})",
            from.id,
            from.source.name(),
            to.id,
            to.source.name()
        );
        print!("{}", render(&d));
    }
    Ok(ExitCode::SUCCESS)
}

fn name<'a>(from: &'a Fetched, to: &'a Fetched, side: statelock_core::state::Side) -> &'a str {
    match side {
        statelock_core::state::Side::From => &from.id,
        statelock_core::state::Side::To => &to.id,
    }
}

/// The diff as `+`/`-`/`~` lines under `Resources:` and `Outputs:`, or `No changes.`
pub fn render(d: &StateDiff) -> String {
    if d.is_empty() {
        return "No changes.\n".to_owned();
    }
    let mut out = String::new();
    let r = &d.resources;
    if !(r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty()) {
        out.push_str("Resources:\n");
        for (mark, list) in [("+", &r.added), ("-", &r.removed), ("~", &r.changed)] {
            for address in list {
                let _ = writeln!(out, "  {mark} {address}");
            }
        }
    }
    let o = &d.outputs;
    if !(o.added.is_empty() && o.removed.is_empty() && o.changed.is_empty()) {
        out.push_str("Outputs:\n");
        for c in &o.added {
            let _ = writeln!(out, "  + {} = {}", c.name, value(c, c.to.as_ref()));
        }
        for c in &o.removed {
            let _ = writeln!(out, "  - {} = {}", c.name, value(c, c.from.as_ref()));
        }
        for c in &o.changed {
            let _ = writeln!(
                out,
                "  ~ {}: {} -> {}",
                c.name,
                value(c, c.from.as_ref()),
                value(c, c.to.as_ref())
            );
        }
    }
    out
}

fn value(c: &OutputChange, v: Option<&serde_json::Value>) -> String {
    match v {
        Some(v) if !c.sensitive => v.to_string(),
        _ => "(sensitive)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_marks_and_hides_sensitive_values() {
        let from = br#"{"outputs":{"n":{"value":"1"},"pw":{"value":"a","sensitive":true}},"resources":[{"type":"t","name":"old","instances":[{}]}]}"#;
        let to = br#"{"outputs":{"n":{"value":"3"},"pw":{"value":"b","sensitive":true}},"resources":[{"type":"t","name":"new","instances":[{}]}]}"#;
        let text = render(&diff(from, to).unwrap());
        assert_eq!(
            text,
            "Resources:\n  + t.new\n  - t.old\nOutputs:\n  ~ n: \"1\" -> \"3\"\n  ~ pw: (sensitive) -> (sensitive)\n"
        );
        assert_eq!(render(&diff(from, from).unwrap()), "No changes.\n");
    }
}
