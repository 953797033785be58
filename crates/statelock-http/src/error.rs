//! Every refusal the API gives, with its status code and body.
//!
//! Conflicts that involve a lock holder answer with the holder's record as the whole body,
//! encoded exactly as the `.tflock` codec writes it, because Terraform and OpenTofu parse that
//! body to name the holder; the human explanation then goes into the `Statelock-Error` header.
//! Every other refusal is a plain-text message that says what happened.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use statelock_core::{KeyError, LockInfo, StateKey};
use statelock_lock::{FenceError, LockError};
use statelock_state::{LockRefused, StateError};
use statelock_store::StoreError;

use crate::auth::Permission;

/// Header that carries the explanation when the body is a lock record.
pub const ERROR_HEADER: &str = "statelock-error";

const BASIC_CHALLENGE: &str = r#"Basic realm="statelock", charset="UTF-8""#;
const BEARER_CHALLENGE: &str = r#"Bearer realm="statelock""#;

/// Why a request was refused.
#[derive(Debug)]
pub enum ApiError {
    /// The state key in the path breaks a key rule.
    BadKey(KeyError),
    /// The request is malformed in some other way.
    BadRequest(String),
    /// No state is stored at this key.
    NoState(StateKey),
    /// Something else named in the request does not exist (a version, an API path).
    NotFound(String),
    /// The request is well-formed but cannot be carried out on this content (422).
    Unprocessable(String),
    /// The path names no endpoint.
    NoEndpoint(String),
    /// The endpoint exists but not for this method.
    MethodNotAllowed { method: String, allow: &'static str },
    /// The body is larger than the configured limit.
    TooLarge { what: &'static str, limit: usize },
    /// Someone else holds the lock (423, holder's record as body).
    Locked {
        holder: Box<LockInfo>,
        message: String,
    },
    /// A lock object exists that is not a valid record (423, text).
    LockedUnreadable(String),
    /// The request contradicts the current lock or state (409), with the holder when known.
    Conflict {
        message: String,
        holder: Option<Box<LockInfo>>,
    },
    /// The store failed.
    Store(StoreError),
    /// The server is stopping and answers a waiting request instead of serving it (503).
    ShuttingDown(String),
    /// The request body did not arrive in time (408).
    RequestTimeout(String),
    /// No valid credentials (401); `bearer` adds the Bearer challenge (JSON API).
    Unauthorized { reason: String, bearer: bool },
    /// A known principal without the permission this request needs on this key (403).
    Forbidden {
        principal: String,
        permission: Permission,
        key: StateKey,
    },
}

impl ApiError {
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            message: message.into(),
            holder: None,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadKey(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoState(_) | ApiError::NoEndpoint(_) | ApiError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Locked { .. } | ApiError::LockedUnreadable(_) => StatusCode::LOCKED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Store(e) => store_status(e),
            ApiError::ShuttingDown(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::BadKey(e) => format!("invalid state key: {e}"),
            ApiError::BadRequest(m)
            | ApiError::LockedUnreadable(m)
            | ApiError::NotFound(m)
            | ApiError::Unprocessable(m)
            | ApiError::ShuttingDown(m)
            | ApiError::RequestTimeout(m) => m.clone(),
            ApiError::NoState(key) => format!("no state is stored at {key}"),
            ApiError::NoEndpoint(path) => format!(
                "no endpoint at {path}: states live at /v1/states/<key>, locks also at /v1/locks/<key>"
            ),
            ApiError::MethodNotAllowed { method, allow } => {
                format!("method {method} is not supported here; use one of {allow}")
            }
            ApiError::TooLarge { what, limit } => {
                format!("the {what} is larger than the limit of {limit} bytes")
            }
            ApiError::Locked { message, .. } | ApiError::Conflict { message, .. } => {
                message.clone()
            }
            ApiError::Unauthorized { reason, .. } => format!("authentication required: {reason}"),
            ApiError::Forbidden {
                principal,
                permission,
                key,
            } => format!(
                "principal {principal:?} lacks the {permission} permission on state {key} \
                 (a grant such as {permission}:{key} in the principals file)"
            ),
            ApiError::Store(e) => match store_status(e) {
                StatusCode::SERVICE_UNAVAILABLE => format!("the store is unavailable: {e}"),
                _ => format!("the store failed: {e}"),
            },
        }
    }
}

/// An outage or refusal of the backing store is retryable (503, which Terraform's HTTP client
/// retries); anything the store says it cannot do at all is a server fault (500).
fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Other { .. } => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::InvalidKey { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.message();
        if status.is_server_error() {
            tracing::error!(%status, %message, "request failed");
        } else {
            tracing::info!(%status, %message, "request refused");
        }
        let holder = match &self {
            ApiError::Locked { holder, .. } => Some(&**holder),
            ApiError::Conflict { holder, .. } => holder.as_deref(),
            _ => None,
        };
        let mut response = match holder {
            Some(holder) => {
                let mut r = (status, holder.encode()).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if let Some(v) = header_value(&message) {
                    r.headers_mut().insert(ERROR_HEADER, v);
                }
                r
            }
            None => (status, format!("{message}\n")).into_response(),
        };
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let ApiError::Unauthorized { bearer, .. } = self {
            let headers = response.headers_mut();
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
            if bearer {
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_CHALLENGE),
                );
            }
        }
        response
    }
}

/// A header value from free text: control characters (newlines in lock renderings) become
/// spaces, since header values cannot carry them.
fn header_value(text: &str) -> Option<HeaderValue> {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    HeaderValue::from_bytes(cleaned.as_bytes()).ok()
}

impl From<statelock_state::history::ServerKeyError> for ApiError {
    fn from(e: statelock_state::history::ServerKeyError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<FenceError> for ApiError {
    fn from(e: FenceError) -> ApiError {
        let message = e.to_string();
        match e {
            FenceError::NotLocked { .. } => ApiError::conflict(message),
            FenceError::OtherHolder { holder, .. } => ApiError::Conflict {
                message,
                holder: Some(holder),
            },
            FenceError::LockedWithoutId { holder, .. } => ApiError::Locked { message, holder },
            FenceError::Unreadable { .. } => ApiError::LockedUnreadable(message),
            FenceError::Lock(e) => e.into(),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        match e {
            StateError::NotAState(_) => ApiError::BadRequest(e.to_string()),
            StateError::Fenced(e) => e.into(),
            StateError::Stale(_) | StateError::Changed { .. } | StateError::Precondition(_) => {
                ApiError::conflict(e.to_string())
            }
            StateError::NotTheOwner { ref holder, .. } => ApiError::Locked {
                message: e.to_string(),
                holder: holder.clone(),
            },
            StateError::NoState(key) => ApiError::NoState(key),
            StateError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Store(e)
    }
}

impl From<LockRefused> for ApiError {
    fn from(e: LockRefused) -> ApiError {
        match e {
            LockRefused::Held { message, holder } => ApiError::Locked { message, holder },
            LockRefused::ShuttingDown(message) => ApiError::ShuttingDown(message),
            LockRefused::EmptyId => ApiError::BadRequest(e.to_string()),
            LockRefused::Lock(e) => e.into(),
        }
    }
}

impl From<LockError> for ApiError {
    fn from(e: LockError) -> ApiError {
        match e {
            LockError::Held { key, holder, .. } => ApiError::Locked {
                message: format!(
                    "state {key} is locked by {} (lock ID {})",
                    holder.who, holder.id
                ),
                holder: Box::new(holder),
            },
            LockError::HeldIn { key, place, holder } => ApiError::Locked {
                message: format!(
                    "state {key} is locked in {place} by {} (lock ID {})",
                    holder.who, holder.id
                ),
                holder: Box::new(holder),
            },
            // Still held, by the old holder: Terraform sees the usual 423 with its record.
            LockError::TakeoverWithSecondary { key, place, holder } => ApiError::Locked {
                message: format!(
                    "state {key} is locked by {} (lock ID {}); it is idle past --lock-ttl but not \
                     taken over, because it is also held in {place}",
                    holder.who, holder.id
                ),
                holder: Box::new(holder),
            },
            // Retryable like any store outage (503): the `.tflock` lock was rolled back.
            LockError::Secondary {
                key,
                place,
                message,
            } => ApiError::Store(StoreError::other(place, "lock", key.as_str(), message)),
            LockError::IdMismatch { key, given, holder } => ApiError::Conflict {
                message: format!(
                    "lock ID {given:?} does not hold the lock on {key}; it is held by {} under lock ID {}",
                    holder.who, holder.id
                ),
                holder: Some(Box::new(holder)),
            },
            e @ LockError::Unreadable { .. } => ApiError::LockedUnreadable(format!(
                "{e}; an UNLOCK with an empty body (terraform force-unlock) removes it"
            )),
            e @ (LockError::NotLocked { .. } | LockError::Changed { .. }) => {
                ApiError::conflict(e.to_string())
            }
            LockError::Store(e) => ApiError::Store(e),
        }
    }
}
