//! `statelock serve --config FILE`: a TOML file whose keys are the long flag names. Its
//! values become clap *defaults* of the `serve` flags, so clap's own order (command line,
//! then `STATELOCK_*` variable, then default) yields command line > environment > file >
//! built-in default, and every value is still parsed and validated by the flag's own parser.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use crate::cli::Cli;

const CONFIG_FLAG: &str = "--config";
const CONFIG_ENV: &str = "STATELOCK_CONFIG";
const SERVE: &str = "serve";

/// Parses the command line, with the config file's values as defaults. Usage errors and
/// `--help` exit here as clap does; errors in the config file itself are returned.
pub fn parse_or_exit(args: Vec<OsString>) -> anyhow::Result<Cli> {
    let mut cmd = match config_path(&args) {
        Some(path) => with_file_defaults(Cli::command(), &path, &read(&path)?)?,
        None => Cli::command(),
    };
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    Ok(parsed.unwrap_or_else(|e| e.format(&mut cmd).exit()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))
}

/// The config file has to be known before clap parses, since its values change what clap
/// does; so `--config` is found by hand. A misplaced `--config` (e.g. before `serve`) is
/// still rejected afterwards by clap, which knows the flag only on `serve`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if arg == CONFIG_FLAG {
            return rest.next().map(PathBuf::from);
        }
        if let Some(value) = arg
            .to_str()
            .and_then(|a| a.strip_prefix(CONFIG_FLAG)?.strip_prefix('='))
        {
            return Some(PathBuf::from(value));
        }
    }
    // clap also treats an empty variable as unset.
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `cmd` with each entry of the TOML `text` set as the default of the `serve` flag it names.
fn with_file_defaults(
    cmd: clap::Command,
    path: &Path,
    text: &str,
) -> anyhow::Result<clap::Command> {
    let file = path.display();
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("config file {file} is not valid TOML"))?;
    let serve = cmd
        .find_subcommand(SERVE)
        .context("the command line has no serve subcommand")?;
    // `config` is left out: a file naming another file would only be ignored.
    let flags: BTreeMap<&str, &Arg> = serve
        .get_arguments()
        .filter_map(|arg| Some((arg.get_long()?, arg)))
        .filter(|(long, _)| !matches!(*long, "config" | "help"))
        .collect();

    let mut defaults: Vec<(String, String)> = Vec::new();
    let mut spelled: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in &table {
        // snake_case keys are accepted because the matching Rust/serde habit is common.
        let long = key.replace('_', "-");
        let Some((&long, &arg)) = flags.get_key_value(long.as_str()) else {
            let valid = flags.keys().copied().collect::<Vec<_>>().join(", ");
            bail!("config file {file}: unknown key `{key}`; valid keys are: {valid}");
        };
        if let Some(other) = spelled.insert(long, key) {
            bail!("config file {file}: `{other}` and `{key}` both set --{long}");
        }
        let text = if matches!(arg.get_action(), ArgAction::SetTrue) {
            match value {
                // `false` must not become a default of "false" only by accident of clap's
                // bool parsing; leaving the flag alone is what "off" means.
                toml::Value::Boolean(true) => "true".to_owned(),
                toml::Value::Boolean(false) => continue,
                other => bail!(
                    "config file {file}: `{key}` must be true or false, not a {}",
                    other.type_str()
                ),
            }
        } else {
            match value {
                toml::Value::String(s) => s.clone(),
                // Integers are natural for counts and byte sizes (`history-retention = 50`).
                toml::Value::Integer(i) => i.to_string(),
                other => bail!(
                    "config file {file}: `{key}` must be a string or an integer, not a {}",
                    other.type_str()
                ),
            }
        };
        check_value(arg, long, &text).with_context(|| format!("config file {file}: `{key}`"))?;
        defaults.push((arg.get_id().to_string(), text));
    }

    Ok(cmd.mut_subcommand(SERVE, |mut serve| {
        for (id, text) in defaults {
            serve = serve.mut_arg(id, |arg| arg.default_value(text));
        }
        serve
    }))
}

/// Runs the flag's own value parser on a file value now, so a bad value is reported with
/// the file and key even when the command line or environment would override it, instead of
/// as a bare "invalid value" from clap or not at all.
fn check_value(arg: &Arg, long: &str, text: &str) -> anyhow::Result<()> {
    // A fresh argument with only the parser: the real one's `requires`, env and defaults
    // would drag the rest of the command in.
    let probe = Arg::new(arg.get_id().clone())
        .long(long.to_owned())
        .value_parser(arg.get_value_parser().clone())
        .value_names(arg.get_value_names().unwrap_or_default().to_vec())
        .action(ArgAction::Set);
    clap::Command::new("statelock")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--{long}={text}")])
        .map(drop)
        .map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            anyhow::anyhow!("{}", first.strip_prefix("error: ").unwrap_or(first))
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{Command, ServeArgs};
    use crate::store_url::SseKind;

    /// `serve` parsed from `argv` (after `statelock serve`) with `toml` as the config file.
    fn serve_with(toml: &str, argv: &[&str]) -> anyhow::Result<ServeArgs> {
        let cmd = with_file_defaults(Cli::command(), Path::new("test.toml"), toml)?;
        serve_from(cmd, argv)
    }

    fn serve_from(cmd: clap::Command, argv: &[&str]) -> anyhow::Result<ServeArgs> {
        let mut full = vec!["statelock", "serve"];
        full.extend_from_slice(argv);
        let matches = cmd.try_get_matches_from(full)?;
        let Command::Serve(args) = Cli::from_arg_matches(&matches)?.command else {
            anyhow::bail!("not serve")
        };
        Ok(*args)
    }

    fn error(toml: &str) -> String {
        format!("{:#}", serve_with(toml, &[]).unwrap_err())
    }

    const FILE: &str = r#"
        listen = "0.0.0.0:9090"
        store = "s3://bucket/prefix"
        max-state-size = "10MiB"
        lock-wait = "10m"
        s3-endpoint = "http://127.0.0.1:9000"
        s3-path-style = true
        history-retention = 50
        bucket_name = "snake"
        s3-sse = "kms"
        s3-kms-key-id = "key"
    "#;

    #[test]
    fn file_values_replace_the_built_in_defaults() {
        let args = serve_with(FILE, &[]).unwrap();
        assert_eq!(args.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(args.store, "s3://bucket/prefix");
        assert_eq!(args.max_state_size.bytes(), 10 * 1024 * 1024);
        assert_eq!(args.locking.lock_wait, Duration::from_secs(600));
        assert_eq!(args.history_retention, 50);
        assert_eq!(args.bucket_name.as_deref(), Some("snake"));
        assert_eq!(
            args.s3.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert!(args.s3.s3_path_style);
        assert_eq!(args.s3.s3_sse, Some(SseKind::Kms));
        assert_eq!(args.s3.s3_kms_key_id.as_deref(), Some("key"));
        // Flags the file does not name keep their built-in defaults.
        assert_eq!(args.locking.lock_poll_interval, Duration::from_secs(1));
        assert!(!args.no_stale_write_guard && !args.s3.allow_unsafe_store);
    }

    #[test]
    fn command_line_beats_the_file() {
        let args = serve_with(
            FILE,
            &[
                "--listen",
                "127.0.0.1:1",
                "--history-retention=7",
                "--store",
                "memory://",
            ],
        )
        .unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:1");
        assert_eq!(args.history_retention, 7);
        assert_eq!(args.store, "memory://");
        assert_eq!(args.max_state_size.bytes(), 10 * 1024 * 1024);
    }

    #[test]
    fn environment_beats_the_file_and_command_line_beats_both() {
        // A variable no other test reads stands in for STATELOCK_LISTEN, so that setting it
        // cannot change what a test running in parallel sees.
        const VAR: &str = "STATELOCK_TEST_CONFIG_FILE_LISTEN";
        // SAFETY: only this test reads or writes VAR, and the test process does not read the
        // environment from C code.
        unsafe { std::env::set_var(VAR, "127.0.0.2:2") };
        let cmd = || {
            let cmd = with_file_defaults(Cli::command(), Path::new("test.toml"), FILE).unwrap();
            cmd.mut_subcommand(SERVE, |s| s.mut_arg("listen", |a| a.env(VAR)))
        };
        let env_only = serve_from(cmd(), &[]).unwrap();
        let cli_too = serve_from(cmd(), &["--listen", "127.0.0.3:3"]).unwrap();
        // SAFETY: as above.
        unsafe { std::env::remove_var(VAR) };
        assert_eq!(env_only.listen.to_string(), "127.0.0.2:2");
        assert_eq!(env_only.store, "s3://bucket/prefix");
        assert_eq!(cli_too.listen.to_string(), "127.0.0.3:3");
    }

    #[test]
    fn kms_key_and_encryption_may_come_from_different_layers() {
        let from_file = |toml: &str, argv: &[&str]| {
            crate::serve::ServeConfig::from_args(serve_with(toml, argv).unwrap())
        };
        assert!(from_file("s3-sse = \"kms\"", &["--s3-kms-key-id", "k"]).is_ok());
        assert!(from_file("s3-kms-key-id = \"k\"", &["--s3-sse", "kms"]).is_ok());
        let e = from_file("s3-kms-key-id = \"k\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--s3-kms-key-id needs --s3-sse"), "{e}");
    }

    #[test]
    fn booleans_true_sets_false_leaves_off() {
        let on = "s3-path-style = true\nno-stale-write-guard = true\nallow_unsafe_store = true";
        let args = serve_with(on, &[]).unwrap();
        assert!(args.s3.s3_path_style && args.no_stale_write_guard && args.s3.allow_unsafe_store);
        let off = "s3-path-style = false\nno-stale-write-guard = false";
        let args = serve_with(off, &[]).unwrap();
        assert!(!args.s3.s3_path_style && !args.no_stale_write_guard);
        // `false` in the file cannot switch off what the command line switches on.
        let args = serve_with(off, &["--s3-path-style"]).unwrap();
        assert!(args.s3.s3_path_style);
        let e = error("s3-path-style = \"yes\"");
        assert!(
            e.contains("`s3-path-style` must be true or false, not a string"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_file_and_the_valid_keys() {
        let e = error("listen = \"127.0.0.1:1\"\nlisten-addr = \"x\"");
        assert!(
            e.contains("config file test.toml: unknown key `listen-addr`"),
            "{e}"
        );
        assert!(
            e.contains("valid keys are: allow-unsafe-store, audit-log, audit-store, body-timeout, bucket-name,"),
            "{e}"
        );
        assert!(e.contains("s3-path-style"), "{e}");
        // Not settable from a file: `config` would be ignored, `help` is not a setting.
        assert!(!e.contains(" config,") && !e.contains("help"), "{e}");
        assert!(error("config = \"other.toml\"").contains("unknown key `config`"));
        // A section is a key too, so `[serve]` is not silently skipped.
        assert!(error("[serve]\nlisten = \"127.0.0.1:1\"").contains("unknown key `serve`"));
    }

    #[test]
    fn wrong_types_and_values_name_the_key() {
        let e = error("history-retention = 1.5");
        assert!(
            e.contains("config file test.toml: `history-retention` must be a string or an integer, not a float"),
            "{e}"
        );
        let e = error("listen = \"nowhere\"");
        assert!(
            e.contains("config file test.toml: `listen`: invalid value 'nowhere' for '--listen"),
            "{e}"
        );
        let e = error("lock-wait = \"2h\"");
        assert!(
            e.contains("`lock-wait`: invalid value '2h' for '--lock-wait <LOCK_WAIT>'"),
            "{e}"
        );
        let e = error("s3-sse = \"aes\"");
        assert!(e.contains("`s3-sse`: invalid value 'aes'"), "{e}");
        let e = error("history-retention = -1");
        assert!(e.contains("`history-retention`: invalid value '-1'"), "{e}");
    }

    #[test]
    fn duplicate_spellings_and_bad_toml_are_errors() {
        let e = error("max-state-size = 1\nmax_state_size = 2");
        assert!(e.contains("both set --max-state-size"), "{e}");
        let e = error("listen = ");
        assert!(e.contains("config file test.toml is not valid TOML"), "{e}");
    }

    #[test]
    fn config_path_comes_from_the_flag_or_the_environment() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let found = |a: &[&str]| config_path(&args(a));
        assert_eq!(
            found(&["statelock", "serve", "--config", "a.toml"]),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            found(&["statelock", "serve", "--listen", "x", "--config=b.toml"]),
            Some(PathBuf::from("b.toml"))
        );
        // `--config-x` is another flag, and nothing after `--` is a flag.
        assert_ne!(
            found(&["statelock", "serve", "--config-x=c"]),
            Some("c".into())
        );
        assert_ne!(
            found(&["statelock", "--", "--config", "d"]),
            Some("d".into())
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = format!(
            "{:#}",
            read(Path::new("/nonexistent/statelock.toml")).unwrap_err()
        );
        assert!(
            e.contains("cannot read the config file /nonexistent/statelock.toml"),
            "{e}"
        );
    }
}
