//! Where the lock table is and how to reach it; credentials and region come from the
//! standard AWS environment unless set here.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};

/// One lock table.
#[derive(Clone, Debug)]
pub struct DynamoConfig {
    pub table: String,
    /// A custom endpoint (DynamoDB Local, moto, LocalStack), e.g. `http://127.0.0.1:8000`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `(access key, secret key)`, overriding the credential chain.
    pub static_credentials: Option<(String, String)>,
}

impl DynamoConfig {
    pub fn new(table: impl Into<String>) -> DynamoConfig {
        DynamoConfig {
            table: table.into(),
            endpoint: None,
            region: None,
            static_credentials: None,
        }
    }

    pub fn endpoint(mut self, endpoint: Option<String>) -> DynamoConfig {
        self.endpoint = endpoint;
        self
    }

    pub fn region(mut self, region: Option<String>) -> DynamoConfig {
        self.region = region;
        self
    }

    pub fn static_credentials(mut self, access_key: &str, secret_key: &str) -> DynamoConfig {
        self.static_credentials = Some((access_key.to_owned(), secret_key.to_owned()));
        self
    }

    /// `DynamoDB table T`, with ` via <endpoint>` for custom endpoints.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("DynamoDB table {} via {endpoint}", self.table),
            None => format!("DynamoDB table {}", self.table),
        }
    }

    pub(crate) async fn client(&self) -> aws_sdk_dynamodb::Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
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
        let shared = loader.load().await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
        if shared.region().is_none() {
            // SigV4 needs a region; local endpoints ignore it and AWS names the right one.
            builder = builder.region(Region::from_static("us-east-1"));
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }
}
