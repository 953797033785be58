//! The hyper service of the S3 front, and how it treats request signatures.
//!
//! s3s verifies SigV4 only against a secret that an [`S3Auth`] returns for the access key, and
//! without an `S3Auth` it refuses every signed request ("This service has no authentication
//! provider"). Every AWS SDK signs, so "accept any credentials" cannot be an `S3Auth`: the
//! secret the client used is unknowable. The open front therefore removes `Authorization`
//! before s3s sees the request, which makes it anonymous to s3s; the price is that s3s then
//! neither decodes aws-chunked bodies nor checks the payload hash, so `body` does both.

use std::future::Future;
use std::pin::Pin;

use hyper::body::Incoming;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse, S3Result, s3_error};

use crate::app::AppState;

use super::access::PrincipalKeys;
use super::hosts::VirtualHosts;
use super::service::StatelockS3;

/// The S3 front as a hyper service, for `hyper_util`'s connection builders.
#[derive(Clone, Debug)]
pub struct S3Front {
    service: S3Service,
    /// Signatures are not checked: `Authorization` is dropped before s3s sees a request.
    open: bool,
    /// With principals: each request runs as the principal it signs as.
    principals: Option<PrincipalKeys>,
}

/// The S3 front over `app`, for the bucket `HttpConfig::bucket`.
///
/// Without principals (`HttpConfig::auth` is `None`) any access key and secret is accepted,
/// as is an unsigned request. With principals and `HttpConfig::s3_secret_key`, requests must
/// be signed with a principal's derived secret and are held to its grants (see `access`);
/// with principals but no key every request is refused (`AccessDenied`), since a front that
/// let everyone in would bypass them. [`S3Front::with_credentials`] accepts one key pair,
/// verified by s3s.
pub fn s3_service(app: AppState) -> S3Front {
    let config = app.config().clone();
    let mut builder = S3ServiceBuilder::new(StatelockS3::new(app));
    builder.set_host(VirtualHosts::new(&config.s3_domains));
    let principals = match (&config.auth, &config.s3_secret_key) {
        (None, _) => None,
        (Some(principals), Some(key)) => Some(PrincipalKeys {
            principals: principals.clone(),
            key: key.clone(),
        }),
        (Some(_), None) => {
            builder.set_auth(RefuseAll);
            None
        }
    };
    if let Some(keys) = &principals {
        builder.set_auth(keys.clone());
        builder.set_access(keys.clone());
    }
    S3Front {
        service: builder.build(),
        open: config.auth.is_none(),
        principals,
    }
}

impl S3Front {
    /// The S3 front over `app` accepting only requests signed with this key pair (s3s checks
    /// the signature, aws-chunked chunk and trailer signatures and the signed payload hash).
    pub fn with_credentials(
        app: AppState,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> S3Front {
        let hosts = VirtualHosts::new(&app.config().s3_domains);
        let mut builder = S3ServiceBuilder::new(StatelockS3::new(app));
        builder.set_host(hosts);
        builder.set_auth(SimpleAuth::from_single(
            access_key.into(),
            SecretKey::from(secret_key.into()),
        ));
        S3Front {
            service: builder.build(),
            open: false,
            principals: None,
        }
    }

    /// The s3s service underneath, for callers that serve it through tower.
    pub fn inner(&self) -> &S3Service {
        &self.service
    }

    /// Answers one request with the body type the `http` front answers with, so that one
    /// accept loop (TLS, header limits, graceful shutdown) serves both fronts.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> axum::response::Response {
        match hyper::service::Service::call(self, req).await {
            Ok(response) => response.map(axum::body::Body::new),
            Err(e) => {
                // s3s answers protocol errors as S3 XML itself; this is a failure to answer.
                tracing::error!(error = ?e, "the S3 front could not answer a request");
                axum::response::IntoResponse::into_response((
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "the S3 front could not answer this request\n",
                ))
            }
        }
    }
}

type Reply = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for S3Front {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = Reply;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        if self.open {
            req.headers_mut().remove(hyper::header::AUTHORIZATION);
        }
        let Some(principals) = &self.principals else {
            return hyper::service::Service::call(&self.service, req);
        };
        // Audit lines and permission checks deep in the lock path read the caller from the
        // request's scope, as on the `http` front.
        let caller = principals.claimed_caller(&req);
        let answer = hyper::service::Service::call(&self.service, req);
        Box::pin(crate::auth::as_caller(caller, answer))
    }
}

/// A server with principals but no S3 secret key: knows no access key.
struct RefuseAll;

#[async_trait::async_trait]
impl S3Auth for RefuseAll {
    async fn get_secret_key(&self, _access_key: &str) -> S3Result<SecretKey> {
        Err(s3_error!(
            AccessDenied,
            "this server has principals but no --s3-secret-key-file, so the S3 front knows no \
             credentials; see `statelock token s3 --help`"
        ))
    }
}
