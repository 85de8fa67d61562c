//! One SDK configuration (region, profile, `AWS_ENDPOINT_URL`, retries) and the service
//! clients built from it; where each service is ([`endpoint`]); an AWS failure as a person
//! reads it ([`error`]).

mod endpoint;
mod error;

pub use error::{
    aws_error, send_unrepeated, waited, AwsContext, AwsError, Cause, FunctionError, WaitError,
};

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

/// What is missing before any AWS call can be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "no AWS region: pass --region, set AWS_REGION, set [aws] region in the project file, or configure one for your profile"
    )]
    NoRegion,
    #[error(
        "no AWS credentials: set AWS_PROFILE (or pass --profile), run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({0})"
    )]
    NoCredentials(String),
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
    /// Every client, from one SDK configuration (no call is made).
    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Clients {
        Clients {
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
        }
    }

    pub fn region(&self) -> &str {
        self.sdk.region().map(|r| r.as_ref()).unwrap_or_default()
    }
}

/// Loads the SDK configuration and checks that a region and credentials exist, without
/// calling AWS.
pub async fn connect(target: &Target) -> Result<Clients, SetupError> {
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
    let Some(region) = sdk.region().filter(|r| !r.as_ref().trim().is_empty()) else {
        return Err(SetupError::NoRegion);
    };
    endpoint::remember(region.as_ref(), sdk.endpoint_url());
    match sdk.credentials_provider() {
        None => return Err(SetupError::NoCredentials("no credentials provider".into())),
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
                return Err(SetupError::NoCredentials(one_line));
            }
        }
    }
    Ok(Clients::from_sdk(sdk))
}

/// The account the credentials belong to (the one call that checks them).
pub async fn account_id(clients: &Clients) -> Result<String, AwsError> {
    let out = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .aws("GetCallerIdentity (the credentials' account)")?;
    out.account.ok_or_else(|| AwsError {
        call: "GetCallerIdentity".to_owned(),
        cause: Cause::Other("STS answered without an account".to_owned()),
        retryable: false,
    })
}

/// For the creates that are not idempotent (a retry after a lost answer makes a second API
/// or integration; AWS refuses a second route or stage with a ConflictException, emulators
/// may make one): no SDK retry. A failure goes back to the engine, which observes again
/// and finds what the lost call created before it tries anything else.
pub fn apigw_no_retries() -> aws_sdk_apigatewayv2::config::Builder {
    aws_sdk_apigatewayv2::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}
