//! One SDK configuration (region, profile, `AWS_ENDPOINT_URL`, retries) and the service
//! clients built from it.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error(
        "no AWS region: pass --region, set AWS_REGION, set [aws] region in the project file, or configure one for your profile"
    )]
    NoRegion,
    #[error(
        "no AWS credentials: set AWS_PROFILE (or pass --profile), run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({0})"
    )]
    NoCredentials(String),
    #[error("AWS rejected the credentials (sts:GetCallerIdentity failed)")]
    Identity(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where to find AWS: the command line wins over the project file, which wins over the
/// environment and the shared config files.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub region: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    /// API Gateway's v1 API, for the one account-wide setting v2 lacks (the CloudWatch role).
    pub apigw_account: aws_sdk_apigateway::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// ACM and Route 53: read (and, for the alias record, written) for `[domain]`.
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
}

impl Clients {
    pub fn region(&self) -> &str {
        self.sdk.region().map(|r| r.as_ref()).unwrap_or_default()
    }
}

/// Loads the SDK configuration and checks that a region and credentials exist, without
/// calling AWS.
pub async fn connect(target: &Target) -> Result<Clients, AwsSetupError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(6))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none_or(|r| r.as_ref().trim().is_empty()) {
        return Err(AwsSetupError::NoRegion);
    }
    match sdk.credentials_provider() {
        None => {
            return Err(AwsSetupError::NoCredentials(
                "no credentials provider".into(),
            ))
        }
        Some(provider) => {
            use aws_credential_types::provider::ProvideCredentials;
            let provided = provider.provide_credentials().await;
            if let Ok(creds) = &provided {
                // Whatever the source (profile, SSO, environment), never print them.
                crate::redact::add(creds.secret_access_key());
                if let Some(token) = creds.session_token() {
                    crate::redact::add(token);
                }
            }
            if let Err(e) = provided {
                let detail = handler::error_chain(&e);
                let one_line = detail
                    .split('\n')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(AwsSetupError::NoCredentials(one_line));
            }
        }
    }
    Ok(Clients {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        iam: aws_sdk_iam::Client::new(&sdk),
        lambda: aws_sdk_lambda::Client::new(&sdk),
        apigw: aws_sdk_apigatewayv2::Client::new(&sdk),
        apigw_account: aws_sdk_apigateway::Client::new(&sdk),
        logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
        sts: aws_sdk_sts::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        acm: aws_sdk_acm::Client::new(&sdk),
        route53: aws_sdk_route53::Client::new(&sdk),
        sdk,
    })
}

/// The account the credentials belong to.
pub async fn account_id(clients: &Clients) -> Result<String, AwsSetupError> {
    let out = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsSetupError::Identity(Box::new(e)))?;
    out.account
        .ok_or_else(|| AwsSetupError::Identity("GetCallerIdentity returned no account".into()))
}
