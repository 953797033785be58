//! S3-compatible servers (moto, SeaweedFS, s3rver, LocalStack, Ceph RGW) started once per test
//! process, and a boto3 client to drive them.
//!
//! Each server runs under a small keeper shell whose stdin is a pipe from this process. The
//! pipe's write end lives in a static, so it closes only when the test process exits, however
//! it exits; the keeper then sees end-of-file, kills the server and removes its directory.
//! No `Drop` is involved, because statics are never dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::env::isolated;
use crate::tools::{free_ports, python_bin, tool};

/// Access key the servers accept (Ceph RGW's test user has it; moto, SeaweedFS and LocalStack
/// check none) and clients sign with.
pub const ACCESS_KEY: &str = "AKIAEXAMPLE";
/// Secret key matching [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "secret";
/// Region of every bucket.
pub const REGION: &str = "us-east-1";

/// How long a server may take to answer; generous because a parallel `cargo` build on a
/// 2-core machine can slow a cold Python start several times over.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills the server when our end of its stdin closes, then removes its directory. SIGTERM
/// first, SIGKILL after 5 s: LocalStack, for one, does not always stop on SIGTERM, and a
/// keeper waiting for it forever would leave both behind.
const KEEPER: &str = r#"
"$@" </dev/null &
child=$!
echo "$child" > "$STATELOCK_SERVER_DIR/pid"
cat >/dev/null
kill "$child" 2>/dev/null
i=0
while [ "$i" -lt 20 ] && [ -e "/proc/$child" ] \
  && [ "$(cut -d' ' -f3 "/proc/$child/stat" 2>/dev/null)" != Z ]; do
  sleep 0.25
  i=$((i + 1))
done
kill -9 "$child" 2>/dev/null
wait
rm -rf "$STATELOCK_SERVER_DIR"
"#;

/// A running S3-compatible server, alive until the test process exits.
#[derive(Debug)]
pub struct S3Server {
    /// Which server this is: `moto`, `seaweedfs` or `s3rver`.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`, for path-style requests.
    pub endpoint: String,
    /// The server's private directory: its log (`server.log`) and, for SeaweedFS, its data.
    pub dir: PathBuf,
    /// Access key and secret this server accepts: s3rver checks them, the others do not.
    pub credentials: (&'static str, &'static str),
    /// The keeper shell, whose piped stdin is never written, only held open: the pipe closing
    /// at our exit is what stops the server. Never waited for, since that happens after exit.
    _keeper: Child,
}

/// The moto server of this test process, started on first use.
pub fn moto() -> &'static S3Server {
    static MOTO: OnceLock<S3Server> = OnceLock::new();
    MOTO.get_or_init(|| {
        let [port] = free_ports::<1>();
        let moto = tool("moto_server");
        let server = S3Server::spawn(
            "moto",
            port,
            &[
                moto.as_os_str(),
                "-H".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.to_string().as_ref(),
            ],
        );
        server.wait_until_answering(None);
        server
    })
}

/// The s3rver (npm) server of this test process, started on first use. It answers S3 but
/// ignores conditional headers: the store `statelock probe` must judge unsafe.
pub fn s3rver() -> &'static S3Server {
    static S3RVER: OnceLock<S3Server> = OnceLock::new();
    S3RVER.get_or_init(|| {
        let [port] = free_ports::<1>();
        let dir = server_dir("s3rver");
        std::fs::create_dir_all(dir.join("data")).expect("create the s3rver data directory");
        let s3rver = tool("s3rver");
        let data = dir.join("data");
        let port_text = port.to_string();
        let args: [&std::ffi::OsStr; 8] = [
            s3rver.as_os_str(),
            "--directory".as_ref(),
            data.as_os_str(),
            "--address".as_ref(),
            "127.0.0.1".as_ref(),
            "--port".as_ref(),
            port_text.as_ref(),
            "--silent".as_ref(),
        ];
        let mut server = S3Server::spawn_in("s3rver", dir, port, &args);
        // s3rver's only built-in account.
        server.credentials = ("S3RVER", "S3RVER");
        server.wait_until_answering(None);
        server
    })
}

/// The SeaweedFS (`weed mini`) server of this test process, started on first use.
pub fn seaweedfs() -> &'static S3Server {
    static SEAWEEDFS: OnceLock<S3Server> = OnceLock::new();
    SEAWEEDFS.get_or_init(|| {
        let ports = free_ports::<SEAWEEDFS_PORTS>();
        let dir = server_dir("seaweedfs");
        start_seaweedfs(dir.clone(), &dir.join("data"), ports)
    })
}

/// Ports `weed mini` listens on: S3 first, then gRPC, master, volume, filer, admin, WebDAV.
const SEAWEEDFS_PORTS: usize = 11;

/// `weed mini` on `data`, with its log and pid under `dir`, on `ports` (S3 first), answered
/// once a real write went through the whole chain.
fn start_seaweedfs(dir: PathBuf, data: &Path, ports: [u16; SEAWEEDFS_PORTS]) -> S3Server {
    let names = [
        "s3.port",
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "admin.port",
        "admin.port.grpc",
        "webdav.port",
    ];
    let mut args: Vec<String> = vec![
        tool("weed").display().to_string(),
        "mini".into(),
        format!("-dir={}", data.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-master.telemetry=false".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
    ];
    args.extend(
        names
            .iter()
            .zip(ports)
            .map(|(name, port)| format!("-{name}={port}")),
    );
    std::fs::create_dir_all(data).expect("create the SeaweedFS data directory");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let server = S3Server::spawn_in("seaweedfs", dir, ports[0], &args);
    // The S3 gateway answers before the volume server has registered, so only a real
    // write proves the whole chain is up.
    server.wait_until_answering(Some(PROBE_WRITE));
    server
}

/// A SeaweedFS of the caller's own (not the process-wide [`seaweedfs`]) that can be paused,
/// killed and started again on the same ports and data: for fault runs. Its data directory
/// outlives each process; every start gets a fresh keeper, so the process still dies with
/// the test process however that exits, and when this value is dropped.
#[derive(Debug)]
pub struct RestartableSeaweedFs {
    data: PathBuf,
    ports: [u16; SEAWEEDFS_PORTS],
    /// `None` only inside [`RestartableSeaweedFs::restart`].
    server: Option<S3Server>,
}

impl RestartableSeaweedFs {
    /// Starts `weed mini` keeping its data in `data`, on free ports kept for its restarts.
    pub fn start(data: &Path) -> RestartableSeaweedFs {
        let ports = free_ports::<SEAWEEDFS_PORTS>();
        let server = start_seaweedfs(server_dir("seaweedfs"), data, ports);
        RestartableSeaweedFs {
            data: data.to_owned(),
            ports,
            server: Some(server),
        }
    }

    /// The running server (its endpoint stays the same across restarts).
    pub fn server(&self) -> &S3Server {
        self.server.as_ref().expect("a SeaweedFS server")
    }

    /// The `weed` process's ID, to signal it (SIGSTOP, SIGKILL).
    pub fn pid(&self) -> Option<u32> {
        self.server().pid()
    }

    /// Starts `weed mini` again on the same data and ports, after it was killed (or kills the
    /// old one first if it still runs), and waits until it answers a write.
    pub fn restart(&mut self) {
        if let Some(pid) = self.pid() {
            // SIGKILL works on a stopped process too; an exited one makes this a no-op.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        // Closing the old keeper's stdin makes it reap what is left of the old process and
        // remove only its own directory (the data lives elsewhere); it is waited for in the
        // background, so that restarts leave no zombies behind.
        if let Some(mut old) = self.server.take() {
            drop(old._keeper.stdin.take());
            std::thread::spawn(move || {
                let _ = old._keeper.wait();
            });
        }
        self.server = Some(start_seaweedfs_when_ports_free(&self.data, self.ports));
    }
}

/// [`start_seaweedfs`] once the old process has let go of its ports.
fn start_seaweedfs_when_ports_free(data: &Path, ports: [u16; SEAWEEDFS_PORTS]) -> S3Server {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline
        && ports
            .iter()
            .any(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    start_seaweedfs(server_dir("seaweedfs"), data, ports)
}

/// The LocalStack S3 emulator of this test process (`localstack-core` in its own venv, in
/// host mode: no Docker, S3 only), started on first use.
pub fn localstack() -> &'static S3Server {
    static LOCALSTACK: OnceLock<S3Server> = OnceLock::new();
    LOCALSTACK.get_or_init(|| {
        let [port] = free_ports::<1>();
        let dir = server_dir("localstack");
        let python = crate::tools::tools_dir().join("localstack/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run bash scripts/setup-test-tools.sh",
            python.display()
        );
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = vec!["env".into()];
        args.extend(
            [
                // The machine may look like a container to it (/.dockerenv), which would move
                // its directories under /var/lib and bind 0.0.0.0.
                "OVERRIDE_IN_DOCKER=0",
                "SERVICES=s3",
                "STRICT_SERVICE_LOADING=1",
                "EAGER_SERVICE_LOADING=1",
                // Hypercorn binds exactly GATEWAY_LISTEN; the default server binds 0.0.0.0.
                "GATEWAY_SERVER=hypercorn",
                "PERSISTENCE=0",
                // No analytics, no certificate download, no DNS server on port 53.
                "DISABLE_EVENTS=1",
                "SKIP_SSL_CERT_DOWNLOAD=1",
                "DNS_ADDRESS=0",
            ]
            .map(str::to_owned),
        );
        args.push(format!("GATEWAY_LISTEN={listen}"));
        args.push(format!("LOCALSTACK_HOST={listen}"));
        args.push(format!("FILESYSTEM_ROOT={}", dir.join("fs").display()));
        args.extend([
            python.display().to_string(),
            "-m".into(),
            "localstack.runtime.main".into(),
        ]);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let server = S3Server::spawn_in("localstack", dir, port, &args);
        server.wait_until_answering(Some(PROBE_WRITE));
        server
    })
}

/// The Ceph RADOS Gateway of this test process (a one-node Ceph 16 cluster from Debian's
/// packages, run by `scripts/ceph-rgw.sh`), started on first use.
///
/// RGW 16 ignores `If-None-Match: *` on *versioned* buckets (every racer wins), so tests that
/// need working locks use unversioned buckets there; the probe tests show the difference.
pub fn ceph_rgw() -> &'static S3Server {
    static CEPH: OnceLock<S3Server> = OnceLock::new();
    CEPH.get_or_init(|| {
        let [s3_port, mon_port] = free_ports::<2>();
        let dir = server_dir("ceph-rgw");
        let script = crate::tools::workspace_root().join("scripts/ceph-rgw.sh");
        let data = dir.join("data");
        let (s3, mon) = (s3_port.to_string(), mon_port.to_string());
        let args: [&std::ffi::OsStr; 7] = [
            "bash".as_ref(),
            script.as_os_str(),
            data.as_os_str(),
            s3.as_ref(),
            mon.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
        ];
        let server = S3Server::spawn_in("ceph-rgw", dir, s3_port, &args);
        server.wait_until_answering(Some(PROBE_WRITE));
        server
    })
}

/// A boto3 round trip through bucket creation, put and get.
const PROBE_WRITE: &str = r#"
try:
    s3.create_bucket(Bucket="statelock-ready-probe")
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_object(Bucket="statelock-ready-probe", Key="probe", Body=b"ok")
assert s3.get_object(Bucket="statelock-ready-probe", Key="probe")["Body"].read() == b"ok"
"#;

/// A fresh private directory for one server; the keeper removes it when the server stops.
fn server_dir(name: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("statelock-{name}-"))
        .tempdir()
        .expect("create a temporary directory")
        .keep()
}

impl S3Server {
    fn spawn(name: &'static str, port: u16, command: &[&std::ffi::OsStr]) -> S3Server {
        S3Server::spawn_in(name, server_dir(name), port, command)
    }

    fn spawn_in(
        name: &'static str,
        dir: PathBuf,
        port: u16,
        command: &[&std::ffi::OsStr],
    ) -> S3Server {
        let log = File::create(dir.join("server.log")).expect("create the server log");
        // Isolated: SeaweedFS turns on authentication when it sees AWS credentials.
        let keeper = isolated("sh")
            .arg("-c")
            .arg(KEEPER)
            .arg("sh")
            .args(command)
            .env("STATELOCK_SERVER_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} via sh: {e}"));
        S3Server {
            name,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
            credentials: (ACCESS_KEY, SECRET_KEY),
            _keeper: keeper,
        }
    }

    /// The server process's ID (not its keeper's), once the keeper has started it.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// The server's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The last lines of the log, so a panic message stays readable.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Whether the server process has exited (it stays a zombie until the keeper reaps it).
    fn has_died(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) else {
            return false;
        };
        match std::fs::read_to_string(Path::new("/proc").join(pid.trim()).join("stat")) {
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }

    /// Polls until the server answers HTTP and, if given, a boto3 probe script succeeds.
    fn wait_until_answering(&self, probe: Option<&str>) {
        let start = Instant::now();
        let mut last = String::from("no attempt yet");
        loop {
            let ready = match http_status(&self.endpoint) {
                Ok(_) => match probe {
                    None => true,
                    Some(script) => match self.try_boto3(script, &[]) {
                        Ok(_) => true,
                        Err(e) => {
                            last = e;
                            false
                        }
                    },
                },
                Err(e) => {
                    last = e;
                    false
                }
            };
            if ready {
                eprintln!(
                    "test-support: {} ready at {} after {:.1?}",
                    self.name,
                    self.endpoint,
                    start.elapsed()
                );
                return;
            }
            if self.has_died() {
                panic!(
                    "{} exited during startup; last probe: {last}\n--- server log ---\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if start.elapsed() > START_TIMEOUT {
                panic!(
                    "{} not ready at {} after {START_TIMEOUT:?}; last probe: {last}\n--- server log ---\n{}",
                    self.name,
                    self.endpoint,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Environment variables that point AWS SDKs (boto3, Terraform) at this server, isolated
    /// from the user's own AWS configuration.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ENDPOINT", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.credentials.0.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", self.credentials.1.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
    }

    /// Runs Python `script` with the venv's interpreter and returns its stdout, or its exit
    /// status and stderr.
    ///
    /// The script starts with `os`, `sys`, `json`, `boto3` imported, `ENDPOINT` set, and `s3`,
    /// a boto3 S3 client for this server (path-style, region us-east-1, default retries).
    /// `args` are `sys.argv[1:]`.
    pub fn try_boto3(&self, script: &str, args: &[&str]) -> Result<String, String> {
        let program = format!("{BOTO3_PRELUDE}\n{script}");
        let output = isolated(python_bin())
            .arg("-c")
            .arg(&program)
            .args(args)
            .envs(self.aws_env())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run {}: {e}", python_bin().display()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "boto3 script failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// [`S3Server::try_boto3`], panicking with the script's stderr on failure.
    pub fn boto3(&self, script: &str, args: &[&str]) -> String {
        self.try_boto3(script, args)
            .unwrap_or_else(|e| panic!("{} at {}: {e}", self.name, self.endpoint))
    }

    /// The body of object `key` in `bucket`, read with boto3, or `None` if there is none.
    pub fn object(&self, bucket: &str, key: &str) -> Option<String> {
        let out = self.boto3(
            r#"
try:
    print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read().decode()))
except s3.exceptions.NoSuchKey:
    print("null")
"#,
            &[bucket, key],
        );
        serde_json::from_str(&out).expect("boto3 printed JSON")
    }

    /// Creates the DynamoDB lock table `name` that Terraform's `backend "s3"` expects
    /// (partition key `LockID`, a string), with boto3; moto serves DynamoDB on its S3 port.
    pub fn try_create_lock_table(&self, name: &str) -> Result<(), String> {
        self.try_boto3(
            r#"
ddb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1")
ddb.create_table(
    TableName=sys.argv[1],
    KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
"#,
            &[name],
        )
        .map(drop)
    }

    /// [`S3Server::try_create_lock_table`], panicking with the script's stderr on failure.
    pub fn create_lock_table(&self, name: &str) {
        self.try_create_lock_table(name)
            .unwrap_or_else(|e| panic!("{} at {}: {e}", self.name, self.endpoint));
    }

    /// Creates bucket `name` with boto3, with versioning enabled if asked.
    pub fn create_bucket(&self, name: &str, versioning: bool) {
        self.boto3(
            r#"
bucket, versioning = sys.argv[1], sys.argv[2] == "1"
s3.create_bucket(Bucket=bucket)
if versioning:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
"#,
            &[name, if versioning { "1" } else { "0" }],
        );
    }
}

const BOTO3_PRELUDE: &str = r#"
import os, sys, json
import boto3
from botocore.config import Config
ENDPOINT = os.environ["ENDPOINT"]
s3 = boto3.client(
    "s3",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60),
)
"#;

/// The status code of `GET /` at `endpoint`, over a bare HTTP/1.0 exchange (no client crate
/// needed for a readiness poll).
fn http_status(endpoint: &str) -> Result<u16, String> {
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http endpoint: {endpoint}"))?;
    let sock = addr
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(1))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer from {addr}: {head:?}"))
}
