//! Child processes with an environment of the test's choosing, not the developer's.
//!
//! A developer's shell usually carries AWS settings (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
//! checksum options...), Terraform settings (`TF_CLI_ARGS`, `TF_WORKSPACE`...) and perhaps
//! statelock's own (`STATELOCK_STORE`). Inherited, they change what the peers do: SeaweedFS
//! turns on authentication when it sees AWS credentials, boto3 and Terraform sign with the
//! wrong keys, and `statelock` picks up a store or flag the test never named. Every process the
//! harness starts is built here, so none of them sees those variables unless the test sets them.

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// Prefixes of inherited variables that a child never sees: AWS SDK and CLI settings,
/// Terraform's and OpenTofu's, and statelock's own (`STATELOCK_TOOLS` excepted, which only
/// says where the test tools are).
const PERSONAL_PREFIXES: [&str; 4] = ["AWS_", "TF_", "TOFU_", "STATELOCK_"];

/// Inherited variables of these names are kept although their prefix is listed.
const KEPT: [&str; 1] = ["STATELOCK_TOOLS"];

/// Whether an inherited variable of this name is withheld from children.
pub fn is_personal(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    // Lower-case spellings are withheld too: some tools and SDKs accept them.
    let upper = name.to_ascii_uppercase();
    PERSONAL_PREFIXES.iter().any(|p| upper.starts_with(p)) && !KEPT.contains(&upper.as_str())
}

/// `program` with every personal variable of `inherited` removed, and the AWS SDKs told to
/// read no configuration or credentials file and not to ask an instance metadata service.
pub fn isolated_from(
    program: impl AsRef<OsStr>,
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
) -> Command {
    let mut command = Command::new(program);
    for (name, _) in inherited {
        if is_personal(&name) {
            command.env_remove(name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // `statelock serve` also opens its S3 front, by default on port 9000: on a free port
        // instead, so that the servers of parallel tests never collide.
        .env("STATELOCK_S3_LISTEN", "127.0.0.1:0");
    command
}

/// [`isolated_from`] this process's own environment: the way every test starts a process.
pub fn isolated(program: impl AsRef<OsStr>) -> Command {
    isolated_from(program, std::env::vars_os())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(command: &Command) -> Vec<String> {
        command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn personal_settings_are_removed_and_the_rest_kept() {
        let parent = [
            ("AWS_ACCESS_KEY_ID", "AKIAUSER"),
            ("AWS_PROFILE", "work"),
            ("aws_region", "eu-west-1"),
            ("TF_CLI_ARGS_apply", "-parallelism=1"),
            ("STATELOCK_STORE", "s3://prod"),
            ("STATELOCK_TOOLS", "/tools"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let command = isolated_from("true", parent);
        let mut gone = removed(&command);
        gone.sort();
        assert_eq!(
            gone,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_PROFILE",
                "STATELOCK_STORE",
                "TF_CLI_ARGS_apply",
                "aws_region"
            ]
        );
        let set: Vec<_> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?, v?.to_str()?)))
            .collect();
        assert!(set.contains(&("AWS_CONFIG_FILE", "/dev/null")), "{set:?}");
        assert!(set.contains(&("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")));
        assert!(
            set.contains(&("STATELOCK_S3_LISTEN", "127.0.0.1:0")),
            "{set:?}"
        );
    }

    #[test]
    fn a_child_sees_only_what_the_test_sets() {
        // The variables this test process really has: whatever they are, none that is
        // personal reaches `env`, and one set afterwards does.
        let out = isolated("env")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run env");
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let name = line.split('=').next().unwrap_or_default();
            if is_personal(OsStr::new(name)) {
                assert!(
                    [
                        "AWS_REGION",
                        "AWS_CONFIG_FILE",
                        "AWS_SHARED_CREDENTIALS_FILE",
                        "AWS_EC2_METADATA_DISABLED",
                        "STATELOCK_S3_LISTEN"
                    ]
                    .contains(&name),
                    "{name} leaked into the child"
                );
            }
        }
        assert!(text.contains("AWS_REGION=us-east-1"), "{text}");
    }
}
