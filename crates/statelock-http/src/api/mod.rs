//! The JSON history API under `/v1/api/`: states, versions, diffs and rollback.
//!
//! - `GET  /v1/api/states`: every state with size, last change and lock holder.
//! - `GET  /v1/api/states/<key>/versions`: the state's versions, newest first.
//! - `GET  /v1/api/states/<key>/versions/<id>`: one version's body, byte for byte.
//! - `GET  /v1/api/states/<key>/diff?from=<id>&to=<id|current>`: resources and outputs changed.
//! - `POST /v1/api/states/<key>/rollback?to=<id>[&force=true]`: copy a version forward.
//!
//! The action is always the last path segment (or the last two for one version), and version
//! IDs have a fixed shape, so a key that itself ends in `versions` or `diff` stays unambiguous.

pub(crate) mod rollback;
mod states;
mod versions;

use axum::extract::Query;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use statelock_core::StateKey;

use crate::app::AppState;
use crate::auth::{self, Permission};
use crate::endpoint::percent_decode;
use crate::error::ApiError;
use statelock_state::history::{VersionId, check_server_key};

/// Every API path starts with this.
pub const API_PREFIX: &str = "/v1/api/";

/// Answers a request whose path starts with [`API_PREFIX`].
pub async fn handle(app: &AppState, parts: &Parts) -> Result<Response, ApiError> {
    let path = parts.uri.path();
    let rest = path.strip_prefix(API_PREFIX).unwrap_or_default();
    if rest == "states" {
        allow(&parts.method, Method::GET)?;
        return states::list(app).await;
    }
    let Some(rest) = rest.strip_prefix("states/") else {
        return Err(no_endpoint(path));
    };
    let (key, action) = split_action(rest).ok_or_else(|| no_endpoint(path))?;
    let key = StateKey::parse(&percent_decode(key)?).map_err(ApiError::BadKey)?;
    check_server_key(&key)?;
    let needs = match action {
        ApiAction::Rollback => Permission::Admin,
        _ => Permission::Read,
    };
    auth::require(app, needs, &key)?;
    match action {
        ApiAction::Versions => {
            allow(&parts.method, Method::GET)?;
            versions::list(app, &key).await
        }
        ApiAction::Version(id) => {
            allow(&parts.method, Method::GET)?;
            versions::body(app, &key, &parse_id(id)?).await
        }
        ApiAction::Diff => {
            allow(&parts.method, Method::GET)?;
            versions::diff(app, &key, query(parts)?).await
        }
        ApiAction::Rollback => {
            allow(&parts.method, Method::POST)?;
            rollback::rollback(app, &key, query(parts)?).await
        }
    }
}

enum ApiAction<'a> {
    Versions,
    Version(&'a str),
    Diff,
    Rollback,
}

/// Splits `<key>/<action>` from the right.
fn split_action(rest: &str) -> Option<(&str, ApiAction<'_>)> {
    let (head, last) = rest.rsplit_once('/')?;
    let action = match last {
        "versions" => ApiAction::Versions,
        "diff" => ApiAction::Diff,
        "rollback" => ApiAction::Rollback,
        id if VersionId::parse(id).is_some() => {
            let key = head.strip_suffix("/versions")?;
            return Some((key, ApiAction::Version(id)));
        }
        _ => return None,
    };
    Some((head, action))
}

fn parse_id(id: &str) -> Result<VersionId, ApiError> {
    VersionId::parse(id).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{id:?} is not a version ID; IDs look like 20240102T030405.000000000Z-00000000000000000007-0a1b2c3d \
             and are listed by GET /v1/api/states/<key>/versions"
        ))
    })
}

fn query<T: serde::de::DeserializeOwned>(parts: &Parts) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
}

fn allow(method: &Method, expected: Method) -> Result<(), ApiError> {
    if *method == expected {
        return Ok(());
    }
    Err(ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow: if expected == Method::GET {
            "GET"
        } else {
            "POST"
        },
    })
}

fn no_endpoint(path: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint at {path}: the API has /v1/api/states and /v1/api/states/<key>/{{versions, versions/<id>, diff, rollback}}"
    ))
}

/// A 200 with `value` as JSON.
fn json(value: &impl Serialize) -> Response {
    let body = serde_json::to_vec_pretty(value).expect("API answers always serialise");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
