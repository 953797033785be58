//! Reading request bodies under a size limit and a time limit, so a request costs at most
//! about one copy of the largest body allowed, an oversized upload is refused before it is
//! buffered, and a client that sends slowly cannot hold a request open (slowloris).
//!
//! A body with a declared length (Terraform always sends one) is copied frame by frame into
//! one buffer of exactly that size, and each frame is dropped at once. Collecting the frames
//! first and joining them afterwards would hold two copies at the peak, and the frames'
//! many mid-sized allocations stay in the allocator's arenas after they are freed, so a
//! 100 MiB state cost about three times its size in resident memory.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    let read = async {
        match declared {
            Some(length) => read_declared(body, length as usize).await,
            None => Limited::new(body, limit)
                .collect()
                .await
                .map(|collected| collected.to_bytes()),
        }
    };
    let Ok(read) = tokio::time::timeout(timeout, read).await else {
        return Err(ApiError::RequestTimeout(format!(
            "the {what} did not arrive within {}s; nothing was changed",
            timeout.as_secs_f64()
        )));
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Reads a body of `length` declared bytes (already checked against the limit) into one
/// buffer of that size. hyper itself refuses a body that runs past its declared length, so
/// more bytes than declared is an error here only as a second line of defence.
async fn read_declared(mut body: Body, length: usize) -> Result<Bytes, BoxError> {
    let mut buffer = BytesMut::with_capacity(length);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers carry no body bytes
        };
        if buffer.len() + data.len() > length {
            return Err(
                format!("the body is longer than its Content-Length of {length} bytes").into(),
            );
        }
        buffer.put(data);
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static str]) -> Body {
        let frames = parts
            .iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())));
        Body::from_stream(futures::stream::iter(frames.collect::<Vec<_>>()))
    }

    fn with_length(n: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
        headers
    }

    async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
        read_limited(headers, body, limit, "state", Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn a_declared_body_arrives_whole_from_many_frames() {
        let bytes = read(
            &with_length(12),
            chunked(&["{\"a\"", ":", "\"bcd\"", "}\n"]),
            64,
        )
        .await
        .unwrap();
        assert_eq!(&bytes[..], b"{\"a\":\"bcd\"}\n");
    }

    #[tokio::test]
    async fn more_bytes_than_declared_is_refused() {
        let err = read(&with_length(3), chunked(&["ab", "cd"]), 64)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ApiError::BadRequest(m) if m.contains("Content-Length of 3")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn limits_hold_with_and_without_a_declared_length() {
        let declared = read(&with_length(65), chunked(&["x"]), 64).await;
        assert!(matches!(declared, Err(ApiError::TooLarge { .. })));
        let streamed = read(&HeaderMap::new(), chunked(&["0123456789"; 7]), 64).await;
        assert!(matches!(streamed, Err(ApiError::TooLarge { .. })));
        let fits = read(&HeaderMap::new(), chunked(&["0123456789"; 6]), 64).await;
        assert_eq!(fits.unwrap().len(), 60);
    }
}
