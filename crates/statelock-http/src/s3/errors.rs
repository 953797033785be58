//! statelock's refusals as S3 errors: the code an S3 client branches on, and a message that
//! says what happened (Terraform prints it after `api error <Code>:`).
//!
//! A lock held by someone else is `PreconditionFailed` (412), as AWS answers a losing
//! `If-None-Match: *`; Terraform then reads the lock object to name the holder, and the
//! message names it too. A state that changed between read and write is
//! `ConditionalRequestConflict` (409), AWS's answer to a conditional-write race.

use s3s::{S3Error, S3ErrorCode};
use statelock_lock::LockError;
use statelock_state::StateError;
use statelock_store::StoreError;

use crate::error::ApiError;

/// An S3 error with `code` and `message`, logged as the `http` front logs its refusals.
pub(super) fn error(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    let message = message.into();
    let server = matches!(
        code,
        S3ErrorCode::InternalError | S3ErrorCode::ServiceUnavailable
    );
    if server {
        tracing::error!(code = %code.as_str(), %message, "S3 request failed");
    } else {
        tracing::info!(code = %code.as_str(), %message, "S3 request refused");
    }
    S3Error::with_message(code, message)
}

pub(super) fn from_api(e: ApiError) -> S3Error {
    let message = e.message();
    let code = match &e {
        ApiError::BadKey(_) | ApiError::BadRequest(_) | ApiError::Unprocessable(_) => {
            S3ErrorCode::InvalidArgument
        }
        ApiError::NoState(_) | ApiError::NotFound(_) | ApiError::NoEndpoint(_) => {
            S3ErrorCode::NoSuchKey
        }
        ApiError::MethodNotAllowed { .. } => S3ErrorCode::MethodNotAllowed,
        ApiError::TooLarge { .. } => S3ErrorCode::EntityTooLarge,
        ApiError::Locked { .. } | ApiError::LockedUnreadable(_) => S3ErrorCode::PreconditionFailed,
        ApiError::Conflict { .. } => S3ErrorCode::ConditionalRequestConflict,
        ApiError::Store(e) => store_code(e),
        ApiError::ShuttingDown(_) => S3ErrorCode::ServiceUnavailable,
        ApiError::RequestTimeout(_) => S3ErrorCode::RequestTimeout,
        ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } => S3ErrorCode::AccessDenied,
    };
    error(code, message)
}

pub(super) fn from_state(e: StateError) -> S3Error {
    let code = match &e {
        StateError::NotAState(_) => S3ErrorCode::InvalidArgument,
        // The guard compares the incoming state with the stored one: a failed precondition
        // on the current object, like a mismatched If-Match.
        StateError::Stale(_) | StateError::Precondition(_) => S3ErrorCode::PreconditionFailed,
        StateError::Changed { .. } | StateError::Fenced(_) => {
            S3ErrorCode::ConditionalRequestConflict
        }
        // Like a lock conflict: the state is held by someone else.
        StateError::NotTheOwner { .. } => S3ErrorCode::PreconditionFailed,
        StateError::NoState(_) => S3ErrorCode::NoSuchKey,
        StateError::Store(e) => store_code(e),
    };
    let message = match &e {
        StateError::Stale(reason) => format!("the stale-write guard refused the state: {reason}"),
        other => other.to_string(),
    };
    error(code, message)
}

pub(super) fn from_lock(e: LockError) -> S3Error {
    from_api(ApiError::from(e))
}

pub(super) fn from_store(e: StoreError) -> S3Error {
    let code = store_code(&e);
    let message = ApiError::Store(e).message();
    error(code, message)
}

/// An outage of the backing store is retryable (503, which every SDK retries); anything else
/// it refuses is a server fault.
fn store_code(e: &StoreError) -> S3ErrorCode {
    match e {
        StoreError::Other { .. } => S3ErrorCode::ServiceUnavailable,
        StoreError::InvalidKey { .. } => S3ErrorCode::InvalidArgument,
        _ => S3ErrorCode::InternalError,
    }
}
