//! How connections are served: plain HTTP or TLS (rustls, optionally requiring client
//! certificates), with limits that keep slow or oversized clients from holding the server.
//!
//! - `tls`: the rustls configuration from PEM files.
//! - `accept`: the accept loop over hyper, with graceful shutdown.

mod accept;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use statelock_core::parse_duration;

pub use accept::{Front, serve};

/// Largest request head (request line and headers) accepted; beyond it the answer is 431.
/// Terraform's requests carry a handful of short headers; 16 KiB leaves room for proxies.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Args)]
#[command(next_help_heading = "TLS and connection limits")]
pub struct TransportArgs {
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key). Terraform's http
    /// backend verifies it unless `skip_cert_verification = true`.
    #[arg(
        long,
        env = "STATELOCK_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "STATELOCK_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Require every client to present a certificate signed by a CA in this PEM file before
    /// anything is read (mutual TLS; Terraform >= 1.4 `client_certificate_pem`, OpenTofu).
    /// With --principals, a request without a token is identified by its certificate's
    /// SHA-256 fingerprint, listed in a [[certificate]] table of the principals file.
    #[arg(
        long,
        env = "STATELOCK_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Longest a client may take to send a request's headers (and to finish the TLS
    /// handshake); slower connections are closed.
    #[arg(long, env = "STATELOCK_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Longest a client may take to send a request body once its headers are in; slower
    /// uploads are refused with 408 and change nothing.
    #[arg(long, env = "STATELOCK_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,
}

/// What the accept loop needs.
#[derive(Clone, Debug)]
pub struct Transport {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub header_timeout: Duration,
}

impl Transport {
    pub fn from_args(args: &TransportArgs) -> anyhow::Result<Transport> {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(tls::server_config(
                cert,
                key,
                args.tls_client_ca.as_deref(),
            )?)),
            _ => None,
        };
        Ok(Transport {
            tls,
            header_timeout: args.header_timeout,
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}
