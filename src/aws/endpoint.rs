//! Where each AWS service wsctl calls is: `AWS_ENDPOINT_URL_<SERVICE>`, else
//! `AWS_ENDPOINT_URL` (LocalStack, moto, `wsctl dev`), else the service's regional endpoint,
//! the SDK's own order. Used to name the endpoint in an error ("connection refused at ...").

use std::net::ToSocketAddrs;
use std::sync::OnceLock;

/// The services wsctl calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Iam,
    Lambda,
    ApiGatewayV2,
    ApiGateway,
    Logs,
    Sts,
    CloudWatch,
    Ssm,
    Acm,
    Route53,
}

impl Service {
    const ALL: [Service; 11] = [
        Service::DynamoDb,
        Service::Iam,
        Service::Lambda,
        Service::ApiGatewayV2,
        Service::ApiGateway,
        Service::Logs,
        Service::Sts,
        Service::CloudWatch,
        Service::Ssm,
        Service::Acm,
        Service::Route53,
    ];

    /// The SDK crate that calls it.
    fn crate_name(self) -> &'static str {
        match self {
            Service::DynamoDb => "aws_sdk_dynamodb",
            Service::Iam => "aws_sdk_iam",
            Service::Lambda => "aws_sdk_lambda",
            Service::ApiGatewayV2 => "aws_sdk_apigatewayv2",
            Service::ApiGateway => "aws_sdk_apigateway",
            Service::Logs => "aws_sdk_cloudwatchlogs",
            Service::Sts => "aws_sdk_sts",
            Service::CloudWatch => "aws_sdk_cloudwatch",
            Service::Ssm => "aws_sdk_ssm",
            Service::Acm => "aws_sdk_acm",
            Service::Route53 => "aws_sdk_route53",
        }
    }

    /// The service whose SDK crate defines the error type `E` (its path names the crate).
    pub fn of_error<E>() -> Option<Service> {
        let path = std::any::type_name::<E>();
        let krate = path.split("::").next().unwrap_or_default();
        Service::ALL.into_iter().find(|s| s.crate_name() == krate)
    }

    /// The prefix of its IAM actions (`dynamodb:CreateTable`).
    pub fn iam_prefix(self) -> &'static str {
        match self {
            Service::DynamoDb => "dynamodb",
            Service::Iam => "iam",
            Service::Lambda => "lambda",
            Service::ApiGatewayV2 | Service::ApiGateway => "apigateway",
            Service::Logs => "logs",
            Service::Sts => "sts",
            Service::CloudWatch => "cloudwatch",
            Service::Ssm => "ssm",
            Service::Acm => "acm",
            Service::Route53 => "route53",
        }
    }

    /// Its `AWS_ENDPOINT_URL_<SERVICE>` suffix (the SDK's service id, upper-cased).
    fn env_suffix(self) -> &'static str {
        match self {
            Service::DynamoDb => "DYNAMODB",
            Service::Iam => "IAM",
            Service::Lambda => "LAMBDA",
            Service::ApiGatewayV2 => "APIGATEWAYV2",
            Service::ApiGateway => "API_GATEWAY",
            Service::Logs => "CLOUDWATCH_LOGS",
            Service::Sts => "STS",
            Service::CloudWatch => "CLOUDWATCH",
            Service::Ssm => "SSM",
            Service::Acm => "ACM",
            Service::Route53 => "ROUTE_53",
        }
    }

    /// Its regional endpoint (global for IAM and Route 53).
    fn default_endpoint(self, region: &str) -> String {
        match self {
            Service::Iam => "https://iam.amazonaws.com".to_owned(),
            Service::Route53 => "https://route53.amazonaws.com".to_owned(),
            _ => {
                let host = match self {
                    Service::ApiGatewayV2 | Service::ApiGateway => "apigateway",
                    Service::CloudWatch => "monitoring",
                    other => other.iam_prefix(),
                };
                format!("https://{host}.{region}.amazonaws.com")
            }
        }
    }
}

/// What [`of`] needs: the region and the endpoint override, once `aws::connect` knows them.
#[derive(Debug, Clone, Default)]
struct Known {
    region: String,
    endpoint_url: Option<String>,
}

static KNOWN: OnceLock<Known> = OnceLock::new();

/// Records the region and the configured endpoint (`AWS_ENDPOINT_URL` or the profile's).
pub fn remember(region: &str, endpoint_url: Option<&str>) {
    let _ = KNOWN.set(Known {
        region: region.to_owned(),
        endpoint_url: endpoint_url.map(str::to_owned),
    });
}

/// The endpoint `service` is called at.
pub fn of(service: Service) -> String {
    let known = KNOWN.get().cloned().unwrap_or_default();
    std::env::var(format!("AWS_ENDPOINT_URL_{}", service.env_suffix()))
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or(known.endpoint_url)
        .unwrap_or_else(|| service.default_endpoint(&known.region))
        .trim_end_matches('/')
        .to_owned()
}

/// The host of an endpoint URL.
pub fn host(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_owned(),
        _ => authority.to_owned(),
    }
    .trim_start_matches('[')
    .trim_end_matches(']')
    .to_owned()
}

/// Whether the endpoint's host resolves to an address (asked of the system's resolver, on
/// the path of an error only).
pub fn resolves(endpoint: &str) -> bool {
    let port = if endpoint.starts_with("http://") {
        80
    } else {
        443
    };
    (host(endpoint).as_str(), port)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_known_by_their_error_types() {
        assert_eq!(
            Service::of_error::<aws_sdk_dynamodb::operation::create_table::CreateTableError>(),
            Some(Service::DynamoDb)
        );
        assert_eq!(
            Service::of_error::<aws_sdk_apigatewayv2::operation::get_apis::GetApisError>(),
            Some(Service::ApiGatewayV2)
        );
        assert_eq!(
            Service::of_error::<aws_sdk_apigateway::operation::get_account::GetAccountError>(),
            Some(Service::ApiGateway)
        );
        assert_eq!(Service::of_error::<std::io::Error>(), None);
        assert_eq!(
            Service::ApiGatewayV2.default_endpoint("eu-west-1"),
            "https://apigateway.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(host("http://127.0.0.1:4566"), "127.0.0.1");
        assert_eq!(
            host("https://sts.us-east-1.amazonaws.com/"),
            "sts.us-east-1.amazonaws.com"
        );
        assert_eq!(host("http://[::1]:5000/x"), "::1");
        assert!(resolves("http://127.0.0.1:1"));
        assert!(!resolves("https://no-such-host.invalid"));
    }
}
