//! The `serve` flags for who may use the server, and reloading the principals on SIGHUP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use statelock_http::auth::Authenticator;

#[derive(Debug, Args)]
#[command(next_help_heading = "Access control")]
pub struct SecurityArgs {
    /// TOML file of principals, their token digests and grants (create entries with
    /// `statelock token create`). Every request must then authenticate: HTTP Basic with the
    /// principal's name and a token (Terraform's username/password), or `Authorization:
    /// Bearer <token>`. Reloaded on SIGHUP; a file that fails to load keeps the old one.
    #[arg(long, env = "STATELOCK_PRINCIPALS", value_name = "FILE")]
    pub principals: Option<PathBuf>,

    /// Serve everyone without authentication on a non-loopback address. Without principals
    /// the server otherwise refuses to listen anywhere but on loopback.
    #[arg(long, env = "STATELOCK_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl SecurityArgs {
    /// The principals to check requests against; refuses an open server on the network.
    pub fn authenticator(&self, listen: SocketAddr) -> anyhow::Result<Option<Arc<Authenticator>>> {
        let Some(path) = &self.principals else {
            if !listen.ip().is_loopback() && !self.insecure_no_auth {
                anyhow::bail!(
                    "refusing to serve on {listen} without authentication: anyone who can reach \
                     it could read every state (and the secrets in them) and change them. Give \
                     --principals FILE (see `statelock token create --help`), listen on \
                     127.0.0.1, or pass --insecure-no-auth if something in front of the server \
                     authenticates"
                );
            }
            return Ok(None);
        };
        let auth = Authenticator::load(path)?;
        if auth.current().is_empty() {
            tracing::warn!(file = %path.display(), "the principals file lists no principals: every request will be refused with 401");
        }
        Ok(Some(Arc::new(auth)))
    }
}

/// Reloads the principals file on every SIGHUP, for the life of the process.
pub fn reload_on_sighup(auth: Arc<Authenticator>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match auth.reload() {
                Ok(count) => tracing::info!(
                    file = %auth.path().display(),
                    principals = count,
                    "SIGHUP: principals reloaded"
                ),
                Err(e) => tracing::error!(
                    error = %statelock_store::error_chain(&e),
                    "SIGHUP: principals NOT reloaded, the previous ones stay in use"
                ),
            }
        }
    });
    Ok(())
}
