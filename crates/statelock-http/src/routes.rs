//! The router: one fallback that classifies each request into an [`Endpoint`] and dispatches.

use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::endpoint::{Action, Endpoint};
use crate::error::ApiError;
use crate::{api, auth, health, lock, metrics, state, ui};

/// The HTTP API over `state`'s store.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::serve))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .with_state(state)
}

async fn dispatch(State(app): State<AppState>, request: Request) -> Response {
    handle(app, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(app: AppState, request: Request) -> Result<Response, ApiError> {
    if ui::is_ui(request.uri().path()) {
        return Ok(ui::handle(&app, request).await);
    }
    let (parts, body) = request.into_parts();
    if parts.uri.path().starts_with(api::API_PREFIX) {
        return api::handle(&app, &parts).await;
    }
    // Present when served with `into_make_service_with_connect_info`; absent in-process.
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Endpoint { key, action } = Endpoint::parse(&parts.method, parts.uri.path())?;
    auth::require(&app, auth::needed(action), &key)?;
    match action {
        Action::ReadState => state::read(&app, &key).await,
        Action::WriteState => {
            state::write(&app, &key, &parts.uri, &parts.headers, body, client).await
        }
        Action::DeleteState => state::delete(&app, &key, &parts.uri, client).await,
        Action::Lock => lock::lock(&app, &key, &parts.uri, &parts.headers, body).await,
        Action::Unlock => lock::unlock(&app, &key, &parts.headers, body).await,
    }
}
