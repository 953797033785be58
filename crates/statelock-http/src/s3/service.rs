//! The [`s3s::S3`] implementation: which operations the front answers, each checking the
//! bucket and the key and handing over to `objects`, `locks`, `multipart` or `list`. Every
//! operation not here is s3s's default, `NotImplemented` (ListMultipartUploads among them).

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::app::AppState;

use super::body::{self, Limits};
use super::errors::error;
use super::keys::{Target, check_bucket, target};
use super::list::{self, Query};
use super::locks::{self, MAX_LOCK_BODY};
use super::{multipart, objects};

/// The S3 operations over one server's states and locks.
#[derive(Clone, Debug)]
pub(super) struct StatelockS3 {
    app: AppState,
}

impl StatelockS3 {
    pub(super) fn new(app: AppState) -> StatelockS3 {
        StatelockS3 { app }
    }
}

/// The state a multipart operation names. Lock records are small and written only by
/// PutObject with `If-None-Match: *`, a lock acquire that a multipart upload cannot be.
fn multipart_state(key: &str) -> S3Result<statelock_core::StateKey> {
    match target(key)? {
        Target::State(state) => Ok(state),
        Target::Lock(_) => Err(error(
            s3s::S3ErrorCode::InvalidRequest,
            format!(
                "{key:?} is a lock object: locks are taken with PutObject and If-None-Match: *, \
                 not with a multipart upload"
            ),
        )),
        Target::Scratch(_) => Err(error(
            s3s::S3ErrorCode::InvalidRequest,
            format!("{key:?} is a probe object: those are written with PutObject only"),
        )),
    }
}

fn is_url(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

#[async_trait::async_trait]
impl S3 for StatelockS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(vec![Bucket {
                name: Some(self.app.config().bucket.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        // No constraint means us-east-1; SDKs accept any region against a custom endpoint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        check_bucket(&self.app, &input.bucket)?;
        let url = is_url(input.encoding_type.as_ref());
        let prefix = input.prefix.clone().unwrap_or_default();
        let page = list::list(
            &self.app,
            &Query {
                prefix: &prefix,
                delimiter: input.delimiter.as_deref(),
                after: input.marker.clone().filter(|m| !m.is_empty()),
                max_keys: input.max_keys,
                url,
            },
        )
        .await?;
        let enc = |s: String| if url { list::url_encode(&s) } else { s };
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc(prefix)),
            marker: input.marker.map(enc),
            delimiter: input.delimiter.map(enc),
            max_keys: Some(input.max_keys.unwrap_or(1000)),
            is_truncated: Some(page.next.is_some()),
            next_marker: page.next.map(enc),
            contents: Some(page.contents),
            common_prefixes: Some(page.common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        check_bucket(&self.app, &input.bucket)?;
        let url = is_url(input.encoding_type.as_ref());
        let prefix = input.prefix.clone().unwrap_or_default();
        // The token continues a listing; start-after only applies to its first page.
        let after = match &input.continuation_token {
            Some(token) => Some(list::untoken(token)?),
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let page = list::list(
            &self.app,
            &Query {
                prefix: &prefix,
                delimiter: input.delimiter.as_deref(),
                after,
                max_keys: input.max_keys,
                url,
            },
        )
        .await?;
        let enc = |s: String| if url { list::url_encode(&s) } else { s };
        let key_count = page.contents.len() + page.common_prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc(prefix)),
            delimiter: input.delimiter.map(enc),
            max_keys: Some(input.max_keys.unwrap_or(1000)),
            key_count: Some(key_count as i32),
            continuation_token: input.continuation_token,
            start_after: input.start_after.map(enc),
            is_truncated: Some(page.next.is_some()),
            next_continuation_token: page.next.as_deref().map(list::token),
            contents: Some(page.contents),
            common_prefixes: Some(page.common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let target = target(&req.input.key)?;
        Ok(S3Response::new(
            objects::head(&self.app, &target, &req.input).await?,
        ))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let target = target(&req.input.key)?;
        Ok(S3Response::new(
            objects::get(&self.app, &target, &req.input).await?,
        ))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let S3Request {
            mut input,
            headers,
            trailing_headers,
            ..
        } = req;
        check_bucket(&self.app, &input.bucket)?;
        let target = target(&input.key)?;
        let config = self.app.config();
        let limits = match &target {
            Target::State(_) => Limits {
                max: config.max_state_size,
                what: "state",
                timeout: config.body_timeout,
            },
            Target::Lock(_) => Limits {
                max: MAX_LOCK_BODY,
                what: "lock record",
                timeout: config.body_timeout,
            },
            Target::Scratch(_) => Limits {
                max: MAX_LOCK_BODY,
                what: "probe object",
                timeout: config.body_timeout,
            },
        };
        let bytes = body::read(&mut input, &headers, trailing_headers.as_ref(), &limits).await?;
        let output = match &target {
            Target::State(key) => objects::put_state(&self.app, key, &input, bytes).await?,
            Target::Lock(key) => locks::put_lock(&self.app, key, &input, bytes).await?,
            Target::Scratch(key) => objects::put_scratch(&self.app, key, &input, bytes).await?,
        };
        Ok(S3Response::new(output))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let output = match target(&req.input.key)? {
            Target::State(key) => objects::delete_state(&self.app, &key).await?,
            Target::Lock(key) => {
                locks::delete_lock(&self.app, &key, req.input.if_match.as_ref()).await?
            }
            Target::Scratch(key) => {
                objects::delete_scratch(&self.app, &key, req.input.if_match.as_ref()).await?
            }
        };
        Ok(S3Response::new(output))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let key = multipart_state(&req.input.key)?;
        Ok(S3Response::new(
            multipart::create(&self.app, &key, &req.input).await?,
        ))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let S3Request {
            mut input,
            headers,
            trailing_headers,
            ..
        } = req;
        check_bucket(&self.app, &input.bucket)?;
        let key = multipart_state(&input.key)?;
        Ok(S3Response::new(
            multipart::upload_part(
                &self.app,
                &key,
                &mut input,
                &headers,
                trailing_headers.as_ref(),
            )
            .await?,
        ))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let key = multipart_state(&req.input.key)?;
        Ok(S3Response::new(
            multipart::complete(&self.app, &key, &req.input).await?,
        ))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let key = multipart_state(&req.input.key)?;
        Ok(S3Response::new(
            multipart::abort(&self.app, &key, &req.input).await?,
        ))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        check_bucket(&self.app, &req.input.bucket)?;
        let key = multipart_state(&req.input.key)?;
        Ok(S3Response::new(
            multipart::list_parts(&self.app, &key, &req.input).await?,
        ))
    }
}
