//! Reading a PutObject or UploadPart body whole, within its size and time limits, and checking
//! every digest the client sent with it before anything is written.
//!
//! What s3s does, when it verifies the signature (`S3Front::with_credentials`): decodes
//! aws-chunked bodies (checking chunk and trailer signatures), hands the trailers over in
//! `S3Request::trailing_headers`, and fails the body stream when a signed payload's SHA-256
//! differs from `x-amz-content-sha256`. What it does not do in any mode: compare
//! `x-amz-checksum-*` (header or trailer) or `Content-MD5` with the body. On the open front it
//! sees requests as anonymous and does neither decoding nor hashing, so this module decodes
//! aws-chunked itself (chunk signatures cannot be checked without the secret, and are
//! ignored) and checks the payload hash itself.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use hyper::HeaderMap;
use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::{PutObjectInput, StreamingBlob, UploadPartInput};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders};

use super::errors::error;

/// What a body must respect.
pub(super) struct Limits {
    /// Largest decoded body, in bytes.
    pub max: usize,
    /// What the body is, for messages ("state", "lock record").
    pub what: &'static str,
    pub timeout: Duration,
}

/// What the reader needs from a request that carries an object's bytes: a PutObject or an
/// UploadPart, whose bodies follow the same rules.
pub(super) trait Upload {
    fn take_body(&mut self) -> Option<StreamingBlob>;
    fn content_length(&self) -> Option<i64>;
    fn content_md5(&self) -> Option<&str>;
    /// The `x-amz-checksum-*` header of `algorithm` (one of [`ALGORITHMS`]).
    fn checksum_header(&self, algorithm: &str) -> Option<&str>;
}

macro_rules! upload_input {
    ($input:ty) => {
        impl Upload for $input {
            fn take_body(&mut self) -> Option<StreamingBlob> {
                self.body.take()
            }
            fn content_length(&self) -> Option<i64> {
                self.content_length
            }
            fn content_md5(&self) -> Option<&str> {
                self.content_md5.as_deref()
            }
            fn checksum_header(&self, algorithm: &str) -> Option<&str> {
                match algorithm {
                    "CRC32" => self.checksum_crc32.as_deref(),
                    "CRC32C" => self.checksum_crc32c.as_deref(),
                    "CRC64NVME" => self.checksum_crc64nvme.as_deref(),
                    "SHA1" => self.checksum_sha1.as_deref(),
                    "SHA256" => self.checksum_sha256.as_deref(),
                    _ => None,
                }
            }
        }
    };
}

upload_input!(PutObjectInput);
upload_input!(UploadPartInput);

/// The decoded body of `input`, after every digest the client sent matched it.
pub(super) async fn read(
    input: &mut impl Upload,
    headers: &HeaderMap,
    trailing: Option<&TrailingHeaders>,
    limits: &Limits,
) -> S3Result<Bytes> {
    let content_sha256 = header(headers, "x-amz-content-sha256");
    let streaming = content_sha256.is_some_and(|v| v.starts_with("STREAMING-"));
    let declared = match header(headers, "x-amz-decoded-content-length") {
        Some(v) => v.parse::<u64>().ok(),
        None if streaming => None,
        None => input.content_length().and_then(|n| u64::try_from(n).ok()),
    };
    if declared.is_some_and(|n| n > limits.max as u64) {
        return Err(too_large(limits));
    }
    // The aws-chunked framing adds a few bytes per chunk and the trailers; a sixteenth plus
    // 64 KiB covers any real client's chunk sizes.
    let raw_limit = if streaming {
        limits.max + limits.max / 16 + 64 * 1024
    } else {
        limits.max
    };
    let blob = input.take_body();
    let raw = match tokio::time::timeout(limits.timeout, collect(blob, raw_limit, limits)).await {
        Ok(raw) => raw?,
        Err(_) => {
            return Err(error(
                S3ErrorCode::RequestTimeout,
                format!(
                    "the {} body did not arrive within {}s; nothing was written",
                    limits.what,
                    limits.timeout.as_secs()
                ),
            ));
        }
    };
    // With a handle, s3s decoded the aws-chunked body (and the trailers are ready now that
    // the stream has ended); without one, an aws-chunked body is still framed.
    let (data, trailers) = match trailing {
        Some(handle) => (raw, handle.take().unwrap_or_default()),
        None if streaming => decode_aws_chunked(&raw)?,
        None => (raw, HeaderMap::new()),
    };
    if let Some(n) = declared
        && streaming
        && n != data.len() as u64
    {
        return Err(error(
            S3ErrorCode::IncompleteBody,
            format!(
                "x-amz-decoded-content-length is {n} but the aws-chunked body holds {} bytes",
                data.len()
            ),
        ));
    }
    if data.len() > limits.max {
        return Err(too_large(limits));
    }
    if let Some(expected) = content_sha256.filter(|v| v.len() == 64) {
        let actual = hex(&Sha256::checksum(&data));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(error(
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                format!(
                    "the provided x-amz-content-sha256 {expected} does not match the body's \
                     SHA-256 {actual}; nothing was written"
                ),
            ));
        }
    }
    check_declared_trailers(headers, &trailers)?;
    check_checksums(input, &trailers, &data)?;
    check_content_md5(input.content_md5(), &data)?;
    if streaming {
        // Which wire form arrived matters when a client's upload is refused elsewhere.
        let names: Vec<&str> = trailers.keys().map(|k| k.as_str()).collect();
        tracing::info!(what = limits.what, bytes = data.len(), trailers = ?names, "aws-chunked body decoded and checked");
    }
    Ok(data)
}

async fn collect(blob: Option<StreamingBlob>, limit: usize, limits: &Limits) -> S3Result<Bytes> {
    let Some(mut blob) = blob else {
        return Ok(Bytes::new());
    };
    let mut buf = BytesMut::new();
    while let Some(chunk) = blob.next().await {
        let chunk = chunk.map_err(|e| stream_error(&*e))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limits));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The stream errors s3s's own checks raise, as the S3 errors AWS gives for them.
fn stream_error(e: &(dyn std::error::Error + 'static)) -> S3Error {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        error(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "the body's SHA-256 does not match x-amz-content-sha256; nothing was written",
        )
    } else if text.contains("SignatureMismatch") {
        error(
            S3ErrorCode::SignatureDoesNotMatch,
            "an aws-chunked chunk or trailer signature does not match; nothing was written",
        )
    } else {
        error(
            S3ErrorCode::IncompleteBody,
            format!("the request body could not be read ({text}); nothing was written"),
        )
    }
}

fn too_large(limits: &Limits) -> S3Error {
    error(
        S3ErrorCode::EntityTooLarge,
        format!(
            "the {} is larger than the limit of {} bytes; nothing was written",
            limits.what, limits.max
        ),
    )
}

/// Decodes an aws-chunked body: `<hex size>[;chunk-signature=..]\r\n<bytes>\r\n`, repeated,
/// then `0\r\n`, the trailers as `name:value\r\n` lines, and an empty line.
fn decode_aws_chunked(raw: &[u8]) -> S3Result<(Bytes, HeaderMap)> {
    let malformed = |why: &str| {
        error(
            S3ErrorCode::IncompleteBody,
            format!("malformed aws-chunked body: {why}; nothing was written"),
        )
    };
    let mut data = BytesMut::new();
    let mut rest = raw;
    loop {
        let (line, after) =
            split_line(rest).ok_or_else(|| malformed("a chunk header has no CRLF"))?;
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| malformed("a chunk size is not hexadecimal"))?;
        if size == 0 {
            rest = after;
            break;
        }
        if after.len() < size + 2 || &after[size..size + 2] != b"\r\n" {
            return Err(malformed("a chunk is shorter than its size"));
        }
        data.extend_from_slice(&after[..size]);
        rest = &after[size + 2..];
    }
    let mut trailers = HeaderMap::new();
    while let Some((line, after)) = split_line(rest) {
        rest = after;
        if line.is_empty() {
            break;
        }
        let text = std::str::from_utf8(line).map_err(|_| malformed("a trailer is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| malformed("a trailer has no ':'"))?;
        let name =
            hyper::header::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .map_err(|_| malformed("a trailer name is invalid"))?;
        let value = hyper::header::HeaderValue::from_str(value.trim())
            .map_err(|_| malformed("a trailer value is invalid"))?;
        trailers.append(name, value);
    }
    Ok((data.freeze(), trailers))
}

fn split_line(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = input.windows(2).position(|w| w == b"\r\n")?;
    Some((&input[..at], &input[at + 2..]))
}

/// A checksum named in `x-amz-trailer` must have arrived, or the body would go unchecked.
fn check_declared_trailers(headers: &HeaderMap, trailers: &HeaderMap) -> S3Result<()> {
    let Some(declared) = header(headers, "x-amz-trailer") else {
        return Ok(());
    };
    for name in declared.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = name.to_ascii_lowercase();
        if name.starts_with("x-amz-checksum-") && !trailers.contains_key(name.as_str()) {
            return Err(error(
                S3ErrorCode::InvalidRequest,
                format!("x-amz-trailer names {name} but the body has no such trailer"),
            ));
        }
    }
    Ok(())
}

/// The checksum algorithms of S3, by the name `x-amz-checksum-<name>` and
/// `x-amz-sdk-checksum-algorithm` use.
pub(super) const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// The base64 checksum of `data` with `algorithm` (case-insensitive), as S3 writes it; `None`
/// for an algorithm S3 does not have.
pub(super) fn checksum(algorithm: &str, data: &[u8]) -> Option<String> {
    let digest = match algorithm.to_ascii_uppercase().as_str() {
        "CRC32" => Crc32::checksum(data).to_vec(),
        "CRC32C" => Crc32c::checksum(data).to_vec(),
        "CRC64NVME" => Crc64Nvme::checksum(data).to_vec(),
        "SHA1" => Sha1::checksum(data).as_ref().to_vec(),
        "SHA256" => Sha256::checksum(data).as_ref().to_vec(),
        _ => return None,
    };
    Some(STANDARD.encode(digest))
}

/// Every `x-amz-checksum-*` value sent (header or trailer) against the body.
fn check_checksums(input: &impl Upload, trailers: &HeaderMap, data: &[u8]) -> S3Result<()> {
    for algorithm in ALGORITHMS {
        let trailer_name = format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase());
        let in_trailer = trailers.get(&trailer_name).and_then(|v| v.to_str().ok());
        for expected in [input.checksum_header(algorithm), in_trailer]
            .into_iter()
            .flatten()
        {
            let actual = checksum(algorithm, data).unwrap_or_default();
            if actual != expected.trim() {
                return Err(error(
                    S3ErrorCode::BadDigest,
                    format!(
                        "the {algorithm} checksum you specified ({expected}) did not match the \
                         calculated checksum ({actual}); nothing was written"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_content_md5(sent: Option<&str>, data: &[u8]) -> S3Result<()> {
    let Some(sent) = sent else { return Ok(()) };
    let expected = STANDARD
        .decode(sent.trim())
        .ok()
        .filter(|d| d.len() == 16)
        .ok_or_else(|| {
            error(
                S3ErrorCode::InvalidDigest,
                format!("Content-MD5 {sent:?} is not the base64 of a 16-byte MD5"),
            )
        })?;
    if Md5::checksum(data)[..] != expected[..] {
        return Err(error(
            S3ErrorCode::BadDigest,
            "the Content-MD5 you specified did not match the body; nothing was written",
        ));
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Lower-case hex, as S3 writes ETags and payload hashes.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ETag S3 gives a single-part object: the MD5 of its body in hex.
pub(super) fn etag(body: &[u8]) -> String {
    hex(&Md5::checksum(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_terraform_aws_chunked_body_with_its_trailer() {
        let raw = b"5\r\nhello\r\n6;chunk-signature=abc\r\n world\r\n0\r\nx-amz-checksum-sha256:abc=\r\n\r\n";
        let (data, trailers) = decode_aws_chunked(raw).unwrap();
        assert_eq!(&data[..], b"hello world");
        assert_eq!(trailers.get("x-amz-checksum-sha256").unwrap(), "abc=");
        assert!(decode_aws_chunked(b"5\r\nhel").is_err());
        assert!(decode_aws_chunked(b"zz\r\n").is_err());
    }
}
