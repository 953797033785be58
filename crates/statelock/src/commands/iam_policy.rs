//! `statelock iam-policy`: placeholder.
use std::process::ExitCode;
pub const ABOUT: &str = "x";
#[derive(Debug, clap::Args)]
pub struct IamPolicyArgs {}
pub fn run(_args: IamPolicyArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
