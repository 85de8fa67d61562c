//! What a route to the team's own code is made of, as desired and as observed: an integration
//! (`AWS_PROXY` to a Lambda function, or `HTTP_PROXY` POST to a backend, with its timeout and
//! request parameter mapping), the route (and its `$default` route response when two way),
//! and, for a function, the statement letting API Gateway invoke it for that route only.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::resources::permission::Statement;
use crate::resources::route::RouteObs;

/// The headers an HTTP backend receives, mapped by API Gateway from the request's context
/// (`integration.request.header.NAME = context...`): who is talking, on which connection.
pub const HEADER_CONNECTION_ID: &str = "X-Wsctl-Connection-Id";
pub const HEADER_REQUEST_ID: &str = "X-Wsctl-Request-Id";
pub const HEADER_ROUTE_KEY: &str = "X-Wsctl-Route-Key";
/// The `$connect` authorizer's subject and claims (with `[auth]`).
pub const HEADER_USER: &str = "X-Wsctl-User";
pub const HEADER_CLAIMS: &str = "X-Wsctl-Claims";
/// The backend secret's value (`[api] backend_secret_parameter`).
pub const HEADER_SECRET: &str = "X-Wsctl-Secret";

/// The request parameter that sets header `name`.
pub fn header_parameter(name: &str) -> String {
    format!("integration.request.header.{name}")
}

/// One integration of the API, as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntegrationObs {
    pub id: String,
    pub integration_type: String,
    pub uri: String,
    pub method: Option<String>,
    pub timeout_ms: Option<i64>,
    pub request_parameters: BTreeMap<String, String>,
}

/// A routed function, as read: whether it exists, and its resource policy's statements.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionObs {
    pub exists: bool,
    pub statements: Vec<Statement>,
}

/// The API's routes, integrations and route responses; the functions routes target (those
/// the config names and those the API's routes use); the backend secret's value.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Empty when read before the API existed.
    pub api_id: String,
    pub integrations: Vec<IntegrationObs>,
    pub routes: Vec<RouteObs>,
    /// Route id to its route responses' keys.
    pub responses: BTreeMap<String, Vec<(String, String)>>,
    /// Function ARN to what was read of it; functions of other accounts are not read.
    pub functions: BTreeMap<String, FunctionObs>,
    /// `[api] backend_secret_parameter`'s value, or why it cannot be used.
    pub secret: Option<Result<String, String>>,
}

impl Observed {
    /// What holds on API `api_id` of what was read elsewhere: the functions and the secret.
    pub fn without_api(&self, api_id: &str) -> Observed {
        Observed {
            api_id: api_id.to_owned(),
            functions: self.functions.clone(),
            secret: self.secret.clone(),
            ..Observed::default()
        }
    }

    pub fn integration(&self, route: &RouteObs) -> Option<&IntegrationObs> {
        let id = route.target.as_deref()?.strip_prefix("integrations/")?;
        self.integrations.iter().find(|i| i.id == id)
    }
}

/// What one `[[route]]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub key: String,
    /// `AWS_PROXY` or `HTTP_PROXY`.
    pub integration_type: &'static str,
    pub uri: String,
    pub timeout_ms: i64,
    /// Header mappings; the secret's is added from the observed secret.
    pub request_parameters: BTreeMap<String, String>,
    /// Whether the backend secret is sent (HTTP routes).
    pub sends_secret: bool,
    pub two_way: bool,
    /// A function target: its ARN, the statement's Sid, and its source ARN (once the API's
    /// id is known).
    pub function: Option<FunctionTarget>,
    /// An `http://` URL (only `wsctl dev` reaches it): `up` refuses it.
    pub local_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTarget {
    pub arn: String,
    pub sid: String,
    pub source_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub routes: Vec<RouteSpec>,
    /// The stack's account and region: a function elsewhere cannot be given a permission.
    pub account: String,
    pub region: String,
    /// The Sids this stack's route statements start with.
    pub sid_prefix: String,
}

/// The Lambda function an integration URI invokes
/// (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`).
pub fn function_of_uri(uri: &str) -> Option<&str> {
    uri.split_once("/functions/")?
        .1
        .strip_suffix("/invocations")
}
