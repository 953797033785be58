//! Configuration of the S3 adapter, and the SDK client it builds.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

/// Server-side encryption requested on every put, as Terraform's `encrypt` / `kms_key_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    S3,
    /// SSE-KMS: `x-amz-server-side-encryption: aws:kms`, with the key ID if given (else the
    /// bucket's or account's default KMS key).
    Kms { key_id: Option<String> },
}

/// Where and how to reach one bucket.
///
/// Credentials and region come from the standard AWS chain (environment, profiles, IMDS) unless
/// set here.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Keys are stored under `<prefix>/<key>`; listings strip it again. No leading or
    /// trailing `/`.
    pub prefix: Option<String>,
    /// A custom endpoint such as `http://127.0.0.1:9000`, for S3-compatible servers.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    pub region: Option<String>,
    /// `(access key, secret key)`, overriding the credential chain.
    pub static_credentials: Option<(String, String)>,
    pub sse: Option<ServerSideEncryption>,
    /// `MaxKeys` of each listing page; the server's default (1000 on AWS) if unset.
    pub list_page_size: Option<i32>,
    /// Whether the server honours `If-Match` on DeleteObject. When false, a conditional
    /// delete is refused with `NotImplemented` rather than silently made unconditional.
    pub conditional_delete: bool,
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for one attempt of one operation, upload or download included.
    pub attempt_timeout: Duration,
    /// Time allowed for one operation, all SDK retries included.
    pub operation_timeout: Duration,
}

impl S3Config {
    /// A configuration for `bucket` with everything else from the environment.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: None,
            endpoint: None,
            path_style: false,
            region: None,
            static_credentials: None,
            sse: None,
            list_page_size: None,
            conditional_delete: true,
            connect_timeout: Duration::from_secs(3),
            // Generous enough for a 100 MiB state over a slow link; a lock or state write that
            // hangs longer than this is better reported than waited for.
            attempt_timeout: Duration::from_secs(120),
            operation_timeout: Duration::from_secs(300),
        }
    }

    /// Store keys under `prefix/`; surrounding `/` are ignored and an empty prefix means none.
    pub fn prefix(mut self, prefix: impl Into<String>) -> S3Config {
        let prefix = prefix.into();
        let trimmed = prefix.trim_matches('/');
        self.prefix = (!trimmed.is_empty()).then(|| trimmed.to_owned());
        self
    }

    pub fn endpoint(mut self, endpoint: impl Into<String>) -> S3Config {
        self.endpoint = Some(endpoint.into());
        self
    }

    pub fn path_style(mut self, path_style: bool) -> S3Config {
        self.path_style = path_style;
        self
    }

    pub fn region(mut self, region: impl Into<String>) -> S3Config {
        self.region = Some(region.into());
        self
    }

    pub fn static_credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> S3Config {
        self.static_credentials = Some((access_key.into(), secret_key.into()));
        self
    }

    pub fn sse(mut self, sse: ServerSideEncryption) -> S3Config {
        self.sse = Some(sse);
        self
    }

    pub fn list_page_size(mut self, size: i32) -> S3Config {
        self.list_page_size = Some(size);
        self
    }

    pub fn conditional_delete(mut self, supported: bool) -> S3Config {
        self.conditional_delete = supported;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> S3Config {
        self.connect_timeout = timeout;
        self
    }

    pub fn attempt_timeout(mut self, timeout: Duration) -> S3Config {
        self.attempt_timeout = timeout;
        self
    }

    pub fn operation_timeout(mut self, timeout: Duration) -> S3Config {
        self.operation_timeout = timeout;
        self
    }

    /// `s3://bucket/prefix`, with ` via <endpoint>` for custom endpoints.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if let Some(prefix) = &self.prefix {
            s.push('/');
            s.push_str(prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            s.push_str(" via ");
            s.push_str(endpoint);
        }
        s
    }

    /// The SDK client: the standard chain, overridden by this configuration.
    pub(crate) async fn client(&self) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(self.connect_timeout)
                .operation_attempt_timeout(self.attempt_timeout)
                .operation_timeout(self.operation_timeout)
                .build(),
        );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((access, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                access.clone(),
                secret.clone(),
                None,
                None,
                "statelock-static",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(self.path_style)
            // We send a precomputed x-amz-checksum-sha256 header ourselves (as OpenTofu does);
            // left to itself the SDK would add CRC32 checksums, as aws-chunked trailers over
            // HTTPS, which several S3-compatible stores reject (terraform#36704, #36742).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if shared.region().is_none() {
            // S3-compatible servers rarely care about the region but SigV4 needs one; on AWS a
            // wrong region is answered with a redirect error that names the right one.
            builder = builder.region(Region::from_static("us-east-1"));
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}
