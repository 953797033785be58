//! The `serve` flags for who may use the server, and reloading the principals on SIGHUP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use statelock_http::audit::AuditLog;
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

    /// The key the principals' S3 secrets derive from (`statelock token s3` creates it and
    /// prints a principal's credentials). Without it a server with --principals refuses
    /// every request on its S3 front. Keep it as secret as the states.
    #[arg(long, env = "STATELOCK_S3_SECRET_KEY_FILE", value_name = "FILE")]
    pub s3_secret_key_file: Option<PathBuf>,

    /// Serve everyone without authentication on a non-loopback address. Without principals
    /// the server otherwise refuses to listen anywhere but on loopback.
    #[arg(long, env = "STATELOCK_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Append the audit trail to FILE, one JSON line per lock, unlock, force-unlock,
    /// takeover, write, delete, rollback and refused request (`-` for stdout, after the
    /// backend block). Lines name the principal, remote address, key, lock ID, serials, size
    /// and MD5.
    #[arg(long, env = "STATELOCK_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Also store every audit event (except refusals) as an object under .statelock/audit/
    /// in the store, before the request is answered, so all replicas share one trail.
    #[arg(long, env = "STATELOCK_AUDIT_STORE")]
    pub audit_store: bool,
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

impl SecurityArgs {
    /// The S3 secret key, if one is configured.
    pub fn s3_secret_key(&self) -> anyhow::Result<Option<Arc<statelock_auth::S3SecretKey>>> {
        let Some(path) = &self.s3_secret_key_file else {
            return Ok(None);
        };
        if self.principals.is_none() {
            anyhow::bail!(
                "--s3-secret-key-file needs --principals: the S3 secrets belong to principals"
            );
        }
        Ok(Some(Arc::new(statelock_auth::S3SecretKey::load(path)?)))
    }

    /// The audit trail, if one is configured.
    pub fn audit_log(&self) -> anyhow::Result<Option<Arc<AuditLog>>> {
        if self.audit_log.is_none() && !self.audit_store {
            return Ok(None);
        }
        let target = self.audit_log.as_deref();
        let log = AuditLog::open(target, self.audit_store).with_context(|| {
            format!(
                "cannot open the audit log {}",
                target.unwrap_or(Path::new("")).display()
            )
        })?;
        Ok(Some(Arc::new(log)))
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
