//! Multipart uploads of states: Create, UploadPart, Complete, Abort and ListParts, with AWS's
//! rules and errors. Terraform's S3 backend uploads a state above 5 MiB this way (the AWS
//! SDK's upload manager, 5 MiB parts).
//!
//! The parts wait in the store (`uploads`) and the state changes only at Complete, as one
//! `write_state`, the same call PutObject makes: the stale-write guard, the history and the
//! compare-and-swap apply to the whole assembled state exactly as to a PutObject of it, and a
//! refused Complete changes nothing and leaves the upload open (for a retry or an Abort), as
//! on AWS.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use hyper::HeaderMap;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, ChecksumAlgorithm, ChecksumType,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CompletedPart,
    CreateMultipartUploadInput, CreateMultipartUploadOutput, ETag, ListPartsInput, ListPartsOutput,
    Part, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::{S3ErrorCode, S3Result, TrailingHeaders};
use statelock_core::StateKey;

use crate::app::AppState;

use super::body::{self, ALGORITHMS, Limits, Upload as _, checksum, etag, hex};
use super::errors::{error, from_store};
use super::objects::{write_conditions, write_state};
use super::uploads::{self, Manifest, PART_NUMBERS, UploadId};

/// The smallest part S3 accepts, except the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Sets the `checksum_<algorithm>` field of an S3 output.
macro_rules! set_checksum {
    ($output:expr, $algorithm:expr, $value:expr) => {
        match $algorithm {
            "CRC32" => $output.checksum_crc32 = Some($value),
            "CRC32C" => $output.checksum_crc32c = Some($value),
            "CRC64NVME" => $output.checksum_crc64nvme = Some($value),
            "SHA1" => $output.checksum_sha1 = Some($value),
            "SHA256" => $output.checksum_sha256 = Some($value),
            _ => {}
        }
    };
}

fn no_such_upload(id: &str) -> s3s::S3Error {
    error(
        S3ErrorCode::NoSuchUpload,
        format!(
            "the multipart upload {id:?} does not exist: it was never created, or was completed, \
             aborted or expired"
        ),
    )
}

/// The open upload `id` of `key`. A malformed ID, an unknown one and one of another key are
/// all `NoSuchUpload`, as on AWS, so that an ID reveals nothing about other uploads.
async fn open_upload(app: &AppState, key: &StateKey, id: &str) -> S3Result<(UploadId, Manifest)> {
    let parsed = UploadId::parse(id).ok_or_else(|| no_such_upload(id))?;
    let manifest = uploads::manifest(app.store(), &parsed)
        .await
        .map_err(from_store)?
        .filter(|m| m.key == key.as_str())
        .ok_or_else(|| no_such_upload(id))?;
    Ok((parsed, manifest))
}

pub(super) async fn create(
    app: &AppState,
    key: &StateKey,
    input: &CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    // Clients that crash leave their uploads behind; each Create removes expired ones, so
    // no background task (and no coordination between replicas) is needed.
    uploads::sweep(app.store(), SystemTime::now()).await;
    let id = UploadId::random();
    let manifest = Manifest {
        key: key.as_str().to_owned(),
        checksum_algorithm: input
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase()),
        checksum_type: input.checksum_type.as_ref().map(|t| t.as_str().to_owned()),
    };
    uploads::open(app.store(), &id, &manifest)
        .await
        .map_err(from_store)?;
    tracing::info!(
        %key,
        upload_id = id.as_str(),
        checksum_algorithm = ?manifest.checksum_algorithm,
        checksum_type = ?manifest.checksum_type,
        "multipart upload created"
    );
    Ok(CreateMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        upload_id: Some(id.as_str().to_owned()),
        checksum_algorithm: input.checksum_algorithm.clone(),
        checksum_type: input.checksum_type.clone(),
        ..Default::default()
    })
}

pub(super) async fn upload_part(
    app: &AppState,
    key: &StateKey,
    input: &mut UploadPartInput,
    headers: &HeaderMap,
    trailing: Option<&TrailingHeaders>,
) -> S3Result<UploadPartOutput> {
    let number = input.part_number;
    if !PART_NUMBERS.contains(&number) {
        return Err(error(
            S3ErrorCode::InvalidArgument,
            format!("part number {number} is not between 1 and 10000"),
        ));
    }
    let (id, manifest) = open_upload(app, key, &input.upload_id).await?;
    let config = app.config();
    // A re-uploaded part replaces the earlier one, so only the others count against the
    // limit. Parts racing each other can still pass together; Complete checks the total.
    let others: u64 = uploads::parts(app.store(), &id)
        .await
        .map_err(from_store)?
        .iter()
        .filter(|p| p.number != number)
        .map(|p| p.size)
        .sum();
    let limits = Limits {
        max: config
            .max_state_size
            .saturating_sub(usize::try_from(others).unwrap_or(usize::MAX)),
        what: "part (with the parts already uploaded, the state would exceed its size limit)",
        timeout: config.body_timeout,
    };
    let bytes = body::read(input, headers, trailing, &limits).await?;
    let size = bytes.len();
    let tag = etag(&bytes);
    let mut output = UploadPartOutput {
        e_tag: Some(ETag::Strong(tag)),
        ..Default::default()
    };
    // The client copies these into its Complete request, so answer every checksum it chose.
    for algorithm in ALGORITHMS {
        let chosen = manifest.checksum_algorithm.as_deref() == Some(algorithm)
            || input
                .checksum_algorithm
                .as_ref()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(algorithm))
            || input.checksum_header(algorithm).is_some();
        if chosen && let Some(value) = checksum(algorithm, &bytes) {
            set_checksum!(output, algorithm, value);
        }
    }
    uploads::put_part(app.store(), &id, number, bytes)
        .await
        .map_err(from_store)?;
    tracing::info!(
        %key,
        upload_id = id.as_str(),
        part = number,
        size,
        content_sha256 = header_kind(headers, "x-amz-content-sha256"),
        checksum_headers = ?sent_checksums(headers),
        trailer = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).unwrap_or(""),
        "multipart part stored"
    );
    Ok(output)
}

/// For the log: a payload hash is shown as `<hash>`, streaming modes by name.
fn header_kind<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    match headers.get(name).and_then(|v| v.to_str().ok()) {
        Some(v) if v.len() == 64 => "<hash>",
        Some(v) => v,
        None => "",
    }
}

fn sent_checksums(headers: &HeaderMap) -> Vec<&str> {
    headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-checksum-") || *name == "content-md5")
        .collect()
}

pub(super) async fn complete(
    app: &AppState,
    key: &StateKey,
    input: &CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let (id, manifest) = open_upload(app, key, &input.upload_id).await?;
    let listed: &[CompletedPart] = input
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.as_deref())
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(error(
            S3ErrorCode::MalformedXML,
            "CompleteMultipartUpload lists no parts",
        ));
    }
    let mut numbers = Vec::with_capacity(listed.len());
    for part in listed {
        let number = part.part_number.unwrap_or(0);
        if !PART_NUMBERS.contains(&number) {
            return Err(error(
                S3ErrorCode::InvalidArgument,
                format!("part number {number} is not between 1 and 10000"),
            ));
        }
        if numbers.last().is_some_and(|last| *last >= number) {
            return Err(error(
                S3ErrorCode::InvalidPartOrder,
                "the parts are not listed in ascending order of part number; nothing was written",
            ));
        }
        numbers.push(number);
    }
    let max = app.config().max_state_size;
    let mut bodies: Vec<Bytes> = Vec::with_capacity(listed.len());
    let mut total = 0usize;
    for (i, part) in listed.iter().enumerate() {
        let number = numbers[i];
        let bytes = uploads::part(app.store(), &id, number)
            .await
            .map_err(from_store)?
            .ok_or_else(|| invalid_part(number, "was not uploaded"))?;
        check_listed_part(part, number, &bytes)?;
        let last = i + 1 == listed.len();
        if !last && (bytes.len() as u64) < MIN_PART_SIZE {
            return Err(error(
                S3ErrorCode::EntityTooSmall,
                format!(
                    "part {number} is {} bytes; every part but the last must be at least 5 MiB; \
                     nothing was written",
                    bytes.len()
                ),
            ));
        }
        total += bytes.len();
        if total > max {
            return Err(error(
                S3ErrorCode::EntityTooLarge,
                format!(
                    "the parts add up to more than the state size limit of {max} bytes; nothing \
                     was written"
                ),
            ));
        }
        bodies.push(bytes);
    }
    if let Some(declared) = input.mpu_object_size
        && u64::try_from(declared).ok() != Some(total as u64)
    {
        return Err(error(
            S3ErrorCode::InvalidRequest,
            format!(
                "x-amz-mp-object-size is {declared} but the parts hold {total} bytes; nothing was \
                 written"
            ),
        ));
    }
    let mut whole = BytesMut::with_capacity(total);
    for b in &bodies {
        whole.extend_from_slice(b);
    }
    let mut output = CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        e_tag: Some(ETag::Strong(multipart_etag(&bodies))),
        ..Default::default()
    };
    if let Some(algorithm) = manifest.checksum_algorithm.as_deref() {
        let full = manifest.checksum_type.as_deref() == Some(ChecksumType::FULL_OBJECT)
            || algorithm == "CRC64NVME";
        let value = if full {
            checksum(algorithm, &whole)
        } else {
            composite_checksum(algorithm, &bodies)
        };
        if let Some(value) = value {
            set_checksum!(output, algorithm, value);
            output.checksum_type = Some(ChecksumType::from_static(if full {
                ChecksumType::FULL_OBJECT
            } else {
                ChecksumType::COMPOSITE
            }));
        }
    }
    let expect = write_conditions(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    write_state(app, key, whole.freeze(), expect).await?;
    let sizes: Vec<usize> = bodies.iter().map(Bytes::len).collect();
    // What the client listed besides ETags, so a log shows what a client's upload manager sends.
    let listed_checksums: Vec<&str> = listed
        .iter()
        .flat_map(|p| {
            [
                p.checksum_crc32.as_ref().map(|_| "CRC32"),
                p.checksum_crc32c.as_ref().map(|_| "CRC32C"),
                p.checksum_crc64nvme.as_ref().map(|_| "CRC64NVME"),
                p.checksum_sha1.as_ref().map(|_| "SHA1"),
                p.checksum_sha256.as_ref().map(|_| "SHA256"),
            ]
        })
        .flatten()
        .collect();
    tracing::info!(
        %key,
        upload_id = id.as_str(),
        parts = bodies.len(),
        ?sizes,
        size = total,
        ?listed_checksums,
        mpu_object_size = ?input.mpu_object_size,
        checksum_type = ?input.checksum_type.as_ref().map(ChecksumType::as_str),
        "multipart upload completed"
    );
    // The state is written; parts left by a failed removal are expired by a later sweep.
    if let Err(e) = uploads::remove(app.store(), &id).await {
        tracing::warn!(%key, upload_id = id.as_str(), error = %statelock_store::error_chain(&e), "could not remove the parts of a completed multipart upload");
    }
    Ok(output)
}

fn invalid_part(number: i32, why: &str) -> s3s::S3Error {
    error(
        S3ErrorCode::InvalidPart,
        format!("part {number} {why}; nothing was written"),
    )
}

/// The ETag and any checksum the Complete request lists for a part, against its stored bytes.
fn check_listed_part(part: &CompletedPart, number: i32, bytes: &[u8]) -> S3Result<()> {
    let stored = etag(bytes);
    match &part.e_tag {
        Some(tag) if tag.value().eq_ignore_ascii_case(&stored) => {}
        Some(tag) => {
            return Err(invalid_part(
                number,
                &format!(
                    "has the ETag \"{stored}\", not the \"{}\" listed",
                    tag.value()
                ),
            ));
        }
        None => return Err(invalid_part(number, "is listed without its ETag")),
    }
    let listed = [
        ("CRC32", &part.checksum_crc32),
        ("CRC32C", &part.checksum_crc32c),
        ("CRC64NVME", &part.checksum_crc64nvme),
        ("SHA1", &part.checksum_sha1),
        ("SHA256", &part.checksum_sha256),
    ];
    for (algorithm, value) in listed {
        if let Some(value) = value
            && checksum(algorithm, bytes).as_deref() != Some(value.trim())
        {
            return Err(invalid_part(
                number,
                &format!("does not have the {algorithm} checksum {value} listed"),
            ));
        }
    }
    Ok(())
}

/// The ETag S3 gives a multipart object: the MD5 of the parts' binary MD5s, then `-<parts>`.
fn multipart_etag(bodies: &[Bytes]) -> String {
    let mut digests = Vec::with_capacity(bodies.len() * 16);
    for b in bodies {
        digests.extend_from_slice(&Md5::checksum(b));
    }
    format!("{}-{}", hex(&Md5::checksum(&digests)), bodies.len())
}

/// S3's composite checksum: the checksum of the parts' binary checksums, then `-<parts>`.
fn composite_checksum(algorithm: &str, bodies: &[Bytes]) -> Option<String> {
    let mut digests = Vec::new();
    for b in bodies {
        let part = checksum(algorithm, b)?;
        digests.extend(STANDARD.decode(part).ok()?);
    }
    Some(format!(
        "{}-{}",
        checksum(algorithm, &digests)?,
        bodies.len()
    ))
}

pub(super) async fn abort(
    app: &AppState,
    key: &StateKey,
    input: &AbortMultipartUploadInput,
) -> S3Result<AbortMultipartUploadOutput> {
    let (id, _) = open_upload(app, key, &input.upload_id).await?;
    uploads::remove(app.store(), &id)
        .await
        .map_err(from_store)?;
    tracing::info!(%key, upload_id = id.as_str(), "multipart upload aborted");
    Ok(AbortMultipartUploadOutput::default())
}

pub(super) async fn list_parts(
    app: &AppState,
    key: &StateKey,
    input: &ListPartsInput,
) -> S3Result<ListPartsOutput> {
    let (id, manifest) = open_upload(app, key, &input.upload_id).await?;
    let after = input.part_number_marker.unwrap_or(0);
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let stored = uploads::parts(app.store(), &id).await.map_err(from_store)?;
    let remaining: Vec<_> = stored.into_iter().filter(|p| p.number > after).collect();
    let truncated = remaining.len() > max;
    let mut parts = Vec::new();
    for stored in remaining.into_iter().take(max) {
        // Stores keep no MD5, so an ETag costs a read of the part; parts of a state are few.
        let Some(bytes) = uploads::part(app.store(), &id, stored.number)
            .await
            .map_err(from_store)?
        else {
            continue;
        };
        let mut part = Part {
            e_tag: Some(ETag::Strong(etag(&bytes))),
            part_number: Some(stored.number),
            size: Some(bytes.len() as i64),
            last_modified: stored.last_modified.map(Timestamp::from),
            ..Default::default()
        };
        if let Some(algorithm) = manifest.checksum_algorithm.as_deref()
            && let Some(value) = checksum(algorithm, &bytes)
        {
            set_checksum!(part, algorithm, value);
        }
        parts.push(part);
    }
    Ok(ListPartsOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        upload_id: Some(id.as_str().to_owned()),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: parts.last().and_then(|p| p.part_number),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        checksum_algorithm: manifest.checksum_algorithm.map(ChecksumAlgorithm::from),
        parts: Some(parts),
        ..Default::default()
    })
}
