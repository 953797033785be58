//! Who may touch which state: principals with tokens and grants, checked on every request.
//!
//! - `grants`: permissions (`read` < `lock` < `write` < `admin`) on key patterns.
//! - `token`: generating tokens and comparing their SHA-256 digests in constant time.
//! - `principals`: the TOML principals file, its validation, and appending new tokens.
//! - `credentials`: HTTP Basic and Bearer from the `Authorization` header; without one, a
//!   verified client certificate listed in the principals file.
//! - `middleware`: authenticates each request (401) and runs the handler as that caller.
//!
//! # Which request needs what
//!
//! | request                                                   | needs   |
//! |-----------------------------------------------------------|---------|
//! | GET a state, the history API (versions, diff)             | `read`  |
//! | LOCK, UNLOCK with the holder's own record                 | `lock`  |
//! | POST/PUT/DELETE a state                                   | `write` |
//! | force-unlock (empty or ID-only UNLOCK body)               | `admin` |
//! | taking over a lock idle for longer than `--lock-ttl`      | `admin` |
//! | rollback                                                  | `admin` |
//!
//! A write is accepted only from the lock holder (fencing), which is why `write` implies
//! `lock`. `GET /v1/api/states` lists only the states the caller may read. There is no
//! per-request override of the stale-write guard; `--no-stale-write-guard` is the operator's.
//!
//! # How handlers learn the caller
//!
//! The middleware runs the rest of the request inside a task-local scope holding the
//! [`Caller`]. The checks deep in the lock path (force-unlock, takeover) read it from there
//! instead of having it threaded through every signature in between. Nothing in request
//! handling spawns tasks, so the scope covers all of it. Outside any scope (a router built
//! without the middleware, which only in-crate code can do) the checks fail closed on a server
//! with principals: nothing is allowed.

mod credentials;
mod middleware;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use statelock_core::StateKey;

use crate::app::AppState;
use crate::endpoint::Action;
use crate::error::ApiError;

pub use middleware::authenticate;
pub use statelock_auth::{
    Grant, KeyPattern, Permission, Principal, Principals, PrincipalsError, TOKEN_PREFIX, TokenHash,
};

/// The principals the server checks requests against, reloadable from their file.
pub struct Authenticator {
    path: PathBuf,
    principals: RwLock<Arc<Principals>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("path", &self.path)
            .field("principals", &self.current().len())
            .finish()
    }
}

impl Authenticator {
    pub fn load(path: &Path) -> Result<Authenticator, PrincipalsError> {
        Ok(Authenticator {
            path: path.to_owned(),
            principals: RwLock::new(Arc::new(Principals::load(path)?)),
        })
    }

    /// Reads the file again. On any error the principals in use stay as they were, so a typo
    /// in the file never locks everyone out (or lets everyone in). Returns how many there are.
    pub fn reload(&self) -> Result<usize, PrincipalsError> {
        let fresh = Arc::new(Principals::load(&self.path)?);
        let count = fresh.len();
        *self.principals.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(count)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn current(&self) -> Arc<Principals> {
        self.principals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The SHA-256 fingerprint of the certificate a client presented in the TLS handshake, once
/// verified against `--tls-client-ca`; the accept loop puts it into each request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct ClientCertificate(pub TokenHash);

impl ClientCertificate {
    pub fn from_der(der: &[u8]) -> ClientCertificate {
        ClientCertificate(TokenHash::of_bytes(der))
    }
}

/// Who sent the request being handled.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `None` when the server runs without principals: everything is allowed.
    pub principal: Option<Arc<Principal>>,
    pub remote: Option<SocketAddr>,
}

impl Caller {
    /// The principal's name, `anonymous` without authentication.
    pub fn name(&self) -> &str {
        self.principal.as_ref().map_or("anonymous", |p| &p.name)
    }

    pub fn may(&self, wanted: Permission, key: &str) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| p.allows(wanted, key))
    }
}

tokio::task_local! {
    static CALLER: Caller;
}

/// Runs `f` as `caller`'s request (for fronts that authenticate without the middleware, such
/// as the S3 front's SigV4).
pub(crate) async fn as_caller<F: std::future::Future>(caller: Caller, f: F) -> F::Output {
    CALLER.scope(caller, f).await
}

/// The caller of the request being handled, if it runs under the middleware.
pub fn current() -> Option<Caller> {
    CALLER.try_with(Clone::clone).ok()
}

/// Whether the current caller may do `wanted` on `key`. Fails closed: on a server with
/// principals, code that runs outside a request's caller scope (a spawned task, a router
/// built without the middleware) may do nothing; without principals everyone may.
pub fn may(app: &AppState, wanted: Permission, key: &StateKey) -> bool {
    may_on(app, wanted, key.as_str())
}

/// [`may`] for an object key that is no state key (the probe's scratch objects).
pub fn may_on(app: &AppState, wanted: Permission, key: &str) -> bool {
    match current() {
        Some(caller) => caller.may(wanted, key),
        None => app.config().auth.is_none(),
    }
}

/// 403 naming the missing permission unless the current caller has it (see [`may`] for a
/// request with no caller).
pub fn require(app: &AppState, wanted: Permission, key: &StateKey) -> Result<(), ApiError> {
    if may(app, wanted, key) {
        return Ok(());
    }
    let principal = current().map_or_else(
        || "(no caller: the request ran outside the authentication layer)".to_owned(),
        |c| c.name().to_owned(),
    );
    let refusal = ApiError::Forbidden {
        principal,
        permission: wanted,
        key: key.clone(),
    };
    crate::audit::denied(app, Some(key), 403, &refusal.message(), None);
    Err(refusal)
}

/// The permission an `http` backend request needs before it is looked at further; UNLOCK
/// bodies that force-unlock need `admin` on top, checked once the body is read.
pub fn needed(action: Action) -> Permission {
    match action {
        Action::ReadState => Permission::Read,
        Action::Lock | Action::Unlock => Permission::Lock,
        Action::WriteState | Action::DeleteState => Permission::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::HttpConfig;
    use statelock_store::MemoryStore;

    fn app(auth: bool) -> AppState {
        let mut config = HttpConfig::new("bucket");
        if auth {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("principals.toml");
            std::fs::write(
                &file,
                "[[principal]]\nname = \"ci\"\ngrants = [\"admin:**\"]\n",
            )
            .unwrap();
            config.auth = Some(Arc::new(Authenticator::load(&file).unwrap()));
        }
        AppState::new(Arc::new(MemoryStore::new()), config)
    }

    #[test]
    fn without_a_caller_nothing_is_allowed_on_a_server_with_principals() {
        let key = StateKey::parse("team/app.tfstate").unwrap();
        let open = app(false);
        assert!(
            may(&open, Permission::Admin, &key),
            "no principals: all allowed"
        );
        assert!(require(&open, Permission::Write, &key).is_ok());
        let guarded = app(true);
        assert!(!may(&guarded, Permission::Read, &key));
        let refusal = require(&guarded, Permission::Read, &key).unwrap_err();
        assert!(
            refusal.message().contains("no caller"),
            "{}",
            refusal.message()
        );
    }
}
