//! Reading request bodies under a limit, so a request costs at most about one copy of the
//! largest body allowed, and an oversized upload is refused before it is buffered.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// Reads `body` whole, refusing with 413 once it exceeds `limit` bytes; `what` names the body
/// in the message ("state", "lock record").
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &'static str,
) -> Result<Bytes, ApiError> {
    let too_large = ApiError::TooLarge { what, limit };
    // A declared length over the limit is refused without reading a byte.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}
