//! Principals on the S3 front: SigV4 checked against each principal's derived secret
//! (`statelock_auth::S3SecretKey`), then the same grants as on the `http` front.
//!
//! | request                                        | needs   |
//! |------------------------------------------------|---------|
//! | GetObject, HeadObject (of a state or its lock) | `read`  |
//! | ListObjects(V2): lists only readable keys      | (any)   |
//! | PutObject, DeleteObject of `<key>.tflock`      | `lock`  |
//! | PutObject, DeleteObject, multipart of a state  | `write` |
//! | taking over a lock idle for over `--lock-ttl`  | `admin` |
//! | anything on the probe's `.statelock/probe/…`   | `admin` |
//!
//! The access key is the principal's name. The front runs each request as that principal
//! (the `http` front's caller scope) from the access key the request claims; s3s verifies the
//! signature against that principal's secret before any operation runs, so a request that
//! claims someone else's name never gets that far.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};
use statelock_auth::S3SecretKey;
use statelock_core::{LOCK_SUFFIX, StateKey};
use statelock_state::is_scratch_key;

use crate::auth::{Authenticator, Caller, Permission};

/// The principals file and the server key their secrets derive from.
#[derive(Clone, Debug)]
pub(super) struct PrincipalKeys {
    pub principals: Arc<Authenticator>,
    pub key: Arc<S3SecretKey>,
}

impl PrincipalKeys {
    /// The caller a request claims to be, from its `Authorization` header or presigned query.
    pub(super) fn claimed_caller(&self, req: &hyper::Request<hyper::body::Incoming>) -> Caller {
        let principal =
            claimed_access_key(req).and_then(|name| self.principals.current().get(&name).cloned());
        // The accept loop puts the client's address on every request, for both fronts.
        let remote = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0);
        Caller { principal, remote }
    }
}

#[async_trait::async_trait]
impl S3Auth for PrincipalKeys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.principals.current().get(access_key) {
            Some(principal) => Ok(SecretKey::from(self.key.secret_for(&principal.name))),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "no principal {access_key:?} in the server's principals file"
            )),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for PrincipalKeys {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "this server has principals: sign requests with a principal's S3 credentials \
                 (`statelock token s3 --help`)"
            ));
        };
        let Some(principal) = self
            .principals
            .current()
            .get(&credentials.access_key)
            .cloned()
        else {
            return Err(s3_error!(InvalidAccessKeyId, "unknown principal"));
        };
        let S3Path::Object { key, .. } = cx.s3_path() else {
            // Bucket-level calls (listing, HeadBucket) need no grant: listings are filtered.
            return Ok(());
        };
        if is_scratch_key(key) {
            // `statelock probe` judging the front: an operator's check, on the key itself.
            if principal.allows(Permission::Admin, key) {
                return Ok(());
            }
            return Err(s3_error!(
                AccessDenied,
                "principal {} lacks the admin permission `statelock probe` needs on {key}",
                principal.name
            ));
        }
        let wanted = match (cx.s3_op().name(), key.ends_with(LOCK_SUFFIX)) {
            ("GetObject" | "HeadObject", _) => Permission::Read,
            ("PutObject" | "DeleteObject", true) => Permission::Lock,
            _ => Permission::Write,
        };
        let state = key.strip_suffix(LOCK_SUFFIX).unwrap_or(key);
        // A key that is no state key is refused by the operation itself, with the reason.
        let Ok(state) = StateKey::parse(state) else {
            return Ok(());
        };
        if principal.allows(wanted, state.as_str()) {
            return Ok(());
        }
        Err(s3_error!(
            AccessDenied,
            "principal {} lacks the {} permission on {state}",
            principal.name,
            wanted.as_str()
        ))
    }
}

/// The access key ID in `Credential=<id>/...` (header) or `X-Amz-Credential=<id>%2F...`.
fn claimed_access_key(req: &hyper::Request<hyper::body::Incoming>) -> Option<String> {
    if let Some(value) = req.headers().get(hyper::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let at = value.find("Credential=")? + "Credential=".len();
        return value[at..].split('/').next().map(str::to_owned);
    }
    let query = req.uri().query()?;
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    let value = value.replace("%2F", "/").replace("%2f", "/");
    value.split('/').next().map(str::to_owned)
}
