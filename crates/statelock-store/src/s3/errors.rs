//! How S3 and S3-compatible servers say what went wrong, read from SDK errors.
//!
//! Status codes decide before error codes: HEAD answers carry no body, so no code, and
//! S3-compatible servers disagree on codes more than on statuses.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// The HTTP status of a service's answer, if one arrived.
pub(super) fn status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The object (or version) is absent. A missing *bucket* is a configuration error, not an
/// absent object, so `NoSuchBucket` is excluded although it is a 404 too.
pub(super) fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    match err.code() {
        Some("NoSuchBucket") => false,
        Some("NoSuchKey" | "NotFound" | "NoSuchVersion") => true,
        _ => status(err) == Some(404),
    }
}

/// `400 InvalidArgument`: S3's answer to a malformed parameter, e.g. a version ID of a shape
/// it never issues.
pub(super) fn is_invalid_argument<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    status(err) == Some(400) && err.code() == Some("InvalidArgument")
}

/// `412 PreconditionFailed`: an `If-None-Match: *` or `If-Match` condition did not hold.
pub(super) fn is_precondition_failed<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    status(err) == Some(412) || err.code() == Some("PreconditionFailed")
}

/// `501 NotImplemented`: "A header you provided implies functionality that is not
/// implemented" (LocalStack's answer to DELETE with `If-Match`).
pub(super) fn is_not_implemented<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    status(err) == Some(501) || err.code() == Some("NotImplemented")
}

/// `409 ConditionalRequestConflict`: AWS's answer when another conditional write or delete on
/// the same key is in flight. Nothing was written; asking again settles it.
pub(super) fn is_conflict<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    status(err) == Some(409)
        && matches!(
            err.code(),
            Some("ConditionalRequestConflict" | "OperationAborted") | None
        )
}

/// Whether the request may or may not have taken effect: a 5xx (some Ceph versions answer
/// 500/503 to conditional writes under contention after applying them), a timeout, a lost
/// or unreadable reply. Construction failures and 4xx answers never reached the object.
pub(super) fn is_ambiguous<E>(err: &SdkError<E>) -> bool {
    match err {
        SdkError::ServiceError(_) => status(err).is_some_and(|s| s >= 500),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(failure) => !failure.is_user(),
        _ => false,
    }
}

/// One precise line: `HTTP 404 NoSuchBucket: The specified bucket does not exist` for an
/// answer from the service, else the whole cause chain (`dispatch failure: io error: ...
/// Connection refused`), since the SDK's own `Display` stops at "dispatch failure" and its
/// `DisplayErrorContext` appends pages of `Debug` output.
pub(super) fn describe<E>(err: &SdkError<E>) -> String
where
    E: StdError + ProvideErrorMetadata + 'static,
{
    if let SdkError::ServiceError(service) = err {
        let status = service.raw().status().as_u16();
        let code = err.code().unwrap_or("(no error code)");
        return match err.message() {
            Some(message) => format!("HTTP {status} {code}: {message}"),
            None => format!("HTTP {status} {code}"),
        };
    }
    crate::error::error_chain(err)
}

/// How many times a 409 conflict is retried before it is reported.
const CONFLICT_RETRIES: u32 = 5;

/// Runs `op`, repeating it with a short jittered backoff while it answers
/// `409 ConditionalRequestConflict`.
pub(super) async fn retry_conflicts<T, E, F, Fut>(mut op: F) -> Result<T, SdkError<E>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
{
    let mut delay = Duration::from_millis(20);
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                // Jitter, so racers that collided once do not collide again in lockstep.
                let mut byte = [0u8; 1];
                let _ = getrandom::fill(&mut byte);
                let jitter = Duration::from_millis(u64::from(byte[0]) % 20);
                tokio::time::sleep(delay + jitter).await;
                delay *= 2;
            }
            result => return result,
        }
    }
}
