//! The authentication layer: every request outside the operational endpoints (`/healthz`,
//! `/readyz`, `/metrics`) must carry credentials of a known principal when the server has
//! principals; the handler then runs as that [`Caller`].
//!
//! Credentials in the `Authorization` header win; without them, on the web UI's paths, its
//! session cookie (`crate::ui::session`), then a verified client certificate listed in the
//! principals file identifies the caller. A UI request without either goes to the login page.
//! The login page and the UI's assets are open, like the probes.
//!
//! A refused request is answered here, before its body is read or anything else happens, so
//! nothing it sent reaches the store.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::credentials::{self, Credentials};
use super::{CALLER, Caller, ClientCertificate};
use crate::app::AppState;
use crate::error::ApiError;

/// Paths served to anyone: probes and scrapers must work without a principal.
pub const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// axum middleware (`from_fn_with_state`) that authenticates and scopes the caller.
pub async fn authenticate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let path = request.uri().path();
    let open = OPEN_PATHS.contains(&path) || crate::ui::is_open(path);
    let ui = crate::ui::is_ui(path);
    let principal = match app.config().auth.as_deref() {
        Some(auth) if !open => match identify(&app, &auth.current(), &request, ui) {
            Ok(principal) => Some(principal),
            // A person without a session: to the login page, which brings them back.
            Err(_) if ui => return crate::ui::session::login_redirect(request.uri()),
            Err(reason) => {
                tracing::info!(
                    remote = ?remote,
                    method = %request.method(),
                    path = %request.uri().path(),
                    reason,
                    "request refused: not authenticated"
                );
                let target = format!("{} {}", request.method(), request.uri().path());
                crate::audit::denied(&app, None, 401, reason, Some(target));
                let api = request.uri().path().starts_with(crate::api::API_PREFIX);
                return ApiError::Unauthorized {
                    reason: reason.to_owned(),
                    bearer: api,
                }
                .into_response();
            }
        },
        _ => None,
    };
    let caller = Caller { principal, remote };
    CALLER.scope(caller, next.run(request)).await
}

/// The principal the headers prove to be, or why they prove nothing. The reasons are the
/// same for an unknown principal and a wrong token, so names cannot be probed.
fn identify(
    app: &AppState,
    principals: &super::Principals,
    request: &Request,
    ui: bool,
) -> Result<Arc<super::Principal>, &'static str> {
    let certificate = request.extensions().get::<ClientCertificate>();
    let found = match credentials::from_headers(request.headers())? {
        // The UI's session cookie counts on UI paths only, where every POST is CSRF-checked.
        None if ui
            && let Some(principal) =
                crate::ui::session::principal(app, principals, request.headers()) =>
        {
            return Ok(principal);
        }
        None => match certificate {
            Some(ClientCertificate(fingerprint)) => {
                return principals
                    .check_certificate(fingerprint)
                    .map(Arc::clone)
                    .ok_or(
                        "the client certificate stands for no principal, and no token was sent",
                    );
            }
            None => {
                return Err("no credentials; send HTTP Basic (principal, token) or a Bearer token");
            }
        },
        Some(Credentials::Basic { principal, token }) => principals.check_basic(&principal, &token),
        Some(Credentials::Bearer { token }) => principals.check_bearer(&token),
    };
    found
        .map(Arc::clone)
        .ok_or("unknown principal or wrong token")
}
