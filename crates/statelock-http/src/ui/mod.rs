//! The web UI at `/ui/`: server-rendered HTML pages over the same state service calls as the
//! JSON API, with one small script for live updates and relative times, all compiled into the
//! binary (no CDN, nothing fetched at run time, works offline).
//!
//! Pages (every key is a query parameter, so keys with slashes need no path rules):
//! - `GET /ui/`: the states, with lock holders, waiters, serial, size, last writer (`states`).
//! - `GET /ui/state?key=K`: outputs (sensitive values never shown), resources, the timeline
//!   (`state`); `GET /ui/diff?key=K&from=ID&to=ID|current` and
//!   `GET /ui/raw?key=K&version=ID` (`diff`).
//! - `GET /ui/locks`: held locks with age and TTL left, the queue of waiting requests;
//!   `GET|POST /ui/unlock?key=K`: confirm, then force-unlock (`locks`).
//! - `GET|POST /ui/rollback?key=K&to=ID`: the plan, then the rollback (`rollback`).
//! - `GET /ui/audit`: the audit trail kept in the store, filtered (`audit`).
//! - `GET /ui/events`: server-sent events when something changed (`live`).
//! - `GET|POST /ui/login`, `POST /ui/logout`: sessions with principals (`session`).
//! - `GET /ui/assets/*`: the stylesheet and script (`assets`).
//!
//! Fronts' rules hold here as everywhere: parse, authorise (`crate::auth`, in the caller
//! scope the middleware set up, from the session cookie on `/ui/` paths), make one service
//! call, shape the answer. Every POST passes `session::check_post` (same origin, CSRF token)
//! before anything else.

mod assets;
mod audit;
mod diff;
mod forms;
mod html;
mod live;
mod locks;
mod rollback;
pub(crate) mod session;
mod state;
mod states;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use statelock_core::StateKey;

use crate::app::AppState;
use crate::error::ApiError;

pub(crate) use live::Changes;

/// What the UI keeps in the process: the key of its session cookies and CSRF tokens, and the
/// signal that tells open pages something changed (both per process; see `session`, `live`).
#[derive(Debug)]
pub(crate) struct UiShared {
    pub session: session::SessionKey,
    pub changes: Changes,
}

impl UiShared {
    pub fn new() -> UiShared {
        UiShared {
            session: session::SessionKey::generate(),
            changes: Changes::default(),
        }
    }
}

/// The UI's root; `/ui` redirects here.
pub const UI_ROOT: &str = "/ui/";

/// Whether `path` belongs to the UI.
pub fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with(UI_ROOT)
}

/// UI paths served without a session: the login form and the static assets (they show
/// nothing about any state).
pub fn is_open(path: &str) -> bool {
    path == session::LOGIN_PATH || path.starts_with(assets::ASSETS_PREFIX)
}

/// Answers a request whose path is a UI path.
pub async fn handle(app: &AppState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let page = path.strip_prefix(UI_ROOT).unwrap_or("");
    let result = match (&parts.method, page) {
        (_, _) if path == "/ui" => return Redirect::permanent(UI_ROOT).into_response(),
        (&Method::GET, p) if p.starts_with("assets/") => return assets::serve(p),
        (&Method::GET, "") => states::page(app, &parts).await,
        (&Method::GET, "state") => state::page(app, &parts).await,
        (&Method::GET, "diff") => diff::page(app, &parts).await,
        (&Method::GET, "raw") => diff::raw(app, &parts).await,
        (&Method::GET, "locks") => locks::page(app, &parts).await,
        (&Method::GET, "unlock") => locks::confirm(app, &parts).await,
        (&Method::POST, "unlock") => locks::unlock(app, &parts, body).await,
        (&Method::GET, "rollback") => rollback::confirm(app, &parts).await,
        (&Method::POST, "rollback") => rollback::rollback(app, &parts, body).await,
        (&Method::GET, "audit") => audit::page(app, &parts).await,
        (&Method::GET, "events") => return live::events(app),
        (&Method::GET, "login") => session::login_form(app, &parts, None),
        (&Method::POST, "login") => session::login(app, &parts, body).await,
        (&Method::POST, "logout") => session::logout(app, &parts, body).await,
        (
            _,
            "" | "state" | "diff" | "raw" | "locks" | "unlock" | "rollback" | "audit" | "events"
            | "login" | "logout",
        ) => Err(ApiError::MethodNotAllowed {
            method: parts.method.to_string(),
            allow: "GET (POST for unlock, rollback, login and logout)",
        }
        .into()),
        _ => Err(UiError::new(
            StatusCode::NOT_FOUND,
            format!("no page at {path}; start at {UI_ROOT}"),
        )),
    };
    result.unwrap_or_else(|e| html::error_page(app, &parts, e))
}

/// A refusal or failure, shown as a page with the status and what happened.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub message: String,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        UiError {
            status: e.status(),
            message: e.message(),
        }
    }
}

impl From<statelock_store::StoreError> for UiError {
    fn from(e: statelock_store::StoreError) -> UiError {
        ApiError::from(e).into()
    }
}

type UiResult = Result<Response, UiError>;

/// The `key` query parameter as a state key the caller may act on with `needs`.
fn state_key(
    app: &AppState,
    query: &forms::Form,
    needs: crate::auth::Permission,
) -> Result<StateKey, UiError> {
    let raw = query
        .get("key")
        .ok_or_else(|| UiError::bad_request("the page needs ?key=<state key>"))?;
    let key = StateKey::parse(raw).map_err(ApiError::BadKey)?;
    statelock_state::history::check_server_key(&key).map_err(ApiError::from)?;
    crate::auth::require(app, needs, &key)?;
    Ok(key)
}

/// A 200 HTML page, with the UI's security headers.
fn html_response(body: String) -> Response {
    html::respond(StatusCode::OK, body)
}

/// After a POST: back to a page with GET (303), so a reload does not repeat the action.
fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location)],
        Body::empty(),
    )
        .into_response()
}
