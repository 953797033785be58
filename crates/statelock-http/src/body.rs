//! Reading request bodies under a size limit and a time limit, so a request costs at most
//! about one copy of the largest body allowed, an oversized upload is refused before it is
//! buffered, and a client that sends slowly cannot hold a request open (slowloris).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// Reads `body` whole, refusing with 413 once it exceeds `limit` bytes and with 408 when it
/// has not arrived within `timeout`; `what` names the body in the message ("state", "lock
/// record").
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &'static str,
    timeout: Duration,
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
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        return Err(ApiError::RequestTimeout(format!(
            "the {what} did not arrive within {}s; nothing was changed",
            timeout.as_secs_f64()
        )));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}
