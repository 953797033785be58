//! The real `statelock serve` binary configured through `--config FILE` / `STATELOCK_CONFIG`:
//! it serves with the file's settings, the environment overrides the file, and a broken file
//! stops it with a message that names the problem. Needs no external tools.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};

/// Kills the server even when an assertion fails first. Holds its stdout open, since the
/// server's writes of the rest of the backend block fail on a closed pipe.
struct Killed(Child, Option<BufReader<ChildStdout>>);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path, listen: &str) -> std::path::PathBuf {
    let path = dir.join("statelock.toml");
    let store = format!("file://{}", dir.join("data").display());
    std::fs::write(
        &path,
        format!("listen = \"{listen}\"\nstore = \"{store}\"\nhistory-retention = 5\n"),
    )
    .unwrap();
    path
}

/// Starts `statelock serve` with `args` and `env`, and returns it with the address from
/// its first stdout line.
fn start(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> (Killed, String) {
    let mut cmd = crate::harness::statelock_command();
    cmd.arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Killed(cmd.spawn().unwrap(), None);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    child.1 = Some(stdout);
    let addr = first
        .trim()
        .strip_prefix("statelock listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, addr)
}

fn get_status(addr: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply[9..12].parse().unwrap()
}

#[test]
fn serves_with_the_settings_of_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:0");
    let (_server, addr) = start(&["--config".as_ref(), config.as_os_str()], &[]);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    assert_eq!(get_status(&addr, "/v1/states/x"), 404);
}

#[test]
fn environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 would be a fixed port; the variable must replace it with a free one.
    let config = write_config(dir.path(), "127.0.0.1:9");
    let (_server, addr) = start(
        &[],
        &[
            ("STATELOCK_CONFIG", config.to_str().unwrap()),
            ("STATELOCK_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert!(!addr.ends_with(":9"), "{addr}");
    assert_eq!(get_status(&addr, "/v1/states/x"), 404);
}

#[test]
fn a_broken_config_file_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nlock-wiat = \"10m\"\n").unwrap();
    let missing = dir.path().join("missing.toml");
    for (file, expected) in [
        (&bad, "unknown key `lock-wiat`; valid keys are: "),
        (&missing, "cannot read the config file"),
    ] {
        let out = crate::harness::statelock_command()
            .arg("serve")
            .arg("--config")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
