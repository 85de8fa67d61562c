//! `[[route]]` targets in `wsctl dev`, called as API Gateway calls them: an HTTP backend with
//! `POST`, the message as the body and the headers the stack's integration maps
//! (`X-Wsctl-Connection-Id`, `-Request-Id`, `-Route-Key`, the caller's `-User` and `-Claims`,
//! `-Secret` when given); a Lambda function through a Lambda Invoke API endpoint (what `sam
//! local start-lambda` and `cargo lambda watch` serve) with the event API Gateway sends. What
//! the client then gets is API Gateway's:
//! - a two-way route's answer (the HTTP body, or the Lambda proxy result's `body`) goes back on
//!   the socket; a one-way route's does not;
//! - a target that cannot be reached or fails (a function error) gives the client
//!   `{"message": "Internal server error", "connectionId": ..., "requestId": ...}`, and one that
//!   does not answer within the route's timeout `{"message": "Endpoint request timed out", ...}`,
//!   whether the route is two way or not; the connection stays open. (What deployed stacks
//!   answer, as reported in aws-samples/simple-websockets-chat-app#46 and nearst/laconia#41;
//!   the timeout text is API Gateway's integration timeout message.)

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use handler::authorizer::Caller;

// The headers an HTTP backend receives: the names `up` maps on AWS.
use crate::resources::user_routes::{
    HEADER_CLAIMS, HEADER_CONNECTION_ID, HEADER_REQUEST_ID, HEADER_ROUTE_KEY, HEADER_SECRET,
    HEADER_USER,
};

/// Where one route's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Http(String),
    /// A function's name or ARN, invoked at the Lambda endpoint.
    Function(String),
}

/// One `[[route]]` as `wsctl dev` runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevRoute {
    pub key: String,
    pub target: Target,
    pub two_way: bool,
    pub timeout: Duration,
}

/// What a target's call came to.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The target answered: the body a two-way route sends back (None: nothing to send).
    Answered {
        status: u16,
        body: Option<String>,
    },
    Failed(String),
    TimedOut,
}

use handler::signed::Https;

/// The targets' client: HTTP/1.1 over TLS or plain HTTP (local backends).
pub struct Targets {
    pub routes: Vec<DevRoute>,
    /// The Lambda Invoke API endpoint function routes are invoked at.
    pub lambda_endpoint: Option<String>,
    /// The value of `X-Wsctl-Secret`, when given.
    pub backend_secret: Option<String>,
    client: Client<Https, Full<Bytes>>,
}

/// Who sent a message, and on which connection and request.
pub struct Sender<'a> {
    pub connection_id: &'a str,
    pub request_id: &'a str,
    pub caller: Option<&'a Caller>,
}

impl Targets {
    pub fn new(
        routes: Vec<DevRoute>,
        lambda_endpoint: Option<String>,
        backend_secret: Option<String>,
    ) -> Result<Targets, String> {
        let https = handler::signed::https_connector().map_err(|e| e.to_string())?;
        Ok(Targets {
            routes,
            lambda_endpoint,
            backend_secret,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub fn route(&self, key: &str) -> Option<&DevRoute> {
        self.routes.iter().find(|r| r.key == key)
    }

    /// Calls `route`'s target with a message (`event`: what API Gateway sends a Lambda
    /// function), within the route's timeout.
    pub async fn call(
        &self,
        route: &DevRoute,
        from: &Sender<'_>,
        body: &str,
        event: &Value,
    ) -> Outcome {
        let call = async {
            match &route.target {
                Target::Http(url) => self.http(url, route, from, body).await,
                Target::Function(name) => self.invoke(name, event).await,
            }
        };
        match tokio::time::timeout(route.timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::TimedOut,
        }
    }

    async fn http(&self, url: &str, route: &DevRoute, from: &Sender<'_>, body: &str) -> Outcome {
        let mut request = hyper::Request::post(url)
            .header(HEADER_CONNECTION_ID, from.connection_id)
            .header(HEADER_REQUEST_ID, from.request_id)
            .header(HEADER_ROUTE_KEY, &route.key);
        if let Some(caller) = from.caller {
            request = request.header(HEADER_USER, &caller.sub).header(
                HEADER_CLAIMS,
                serde_json::to_string(&caller.claims).unwrap_or_else(|_| "{}".into()),
            );
        }
        if let Some(secret) = &self.backend_secret {
            request = request.header(HEADER_SECRET, secret);
        }
        let request = match request.body(Full::new(Bytes::from(body.to_owned()))) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("{url}: {e}")),
        };
        match self.client.request(request).await {
            Err(e) => Outcome::Failed(format!("POST {url}: {e}")),
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(b) => {
                        let text = String::from_utf8_lossy(&b.to_bytes()).into_owned();
                        Outcome::Answered {
                            status,
                            body: (!text.is_empty()).then_some(text),
                        }
                    }
                    Err(e) => Outcome::Failed(format!("POST {url}: {e}")),
                }
            }
        }
    }

    /// Lambda's Invoke (RequestResponse) at the local endpoint; the answer is a Lambda proxy
    /// result (`{"statusCode":...,"body":...}`).
    async fn invoke(&self, name: &str, event: &Value) -> Outcome {
        let Some(endpoint) = &self.lambda_endpoint else {
            return Outcome::Failed(format!(
                "no Lambda endpoint to invoke {name} at (--lambda-endpoint or AWS_ENDPOINT_URL_LAMBDA)"
            ));
        };
        let url = format!(
            "{}/2015-03-31/functions/{}/invocations",
            endpoint.trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        );
        let request = match hyper::Request::post(&url)
            .header("X-Amz-Invocation-Type", "RequestResponse")
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("{url}: {e}")),
        };
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("POST {url}: {e}")),
        };
        let status = response.status().as_u16();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let bytes = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Failed(format!("POST {url}: {e}")),
        };
        let text = String::from_utf8_lossy(&bytes);
        if function_error || !(200..300).contains(&status) {
            return Outcome::Failed(format!("{name} failed ({status}): {text}"));
        }
        let result: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Outcome::Answered {
            status: result
                .get("statusCode")
                .and_then(Value::as_u64)
                .map_or(200, |s| s as u16),
            body: proxy_body(&result),
        }
    }
}

/// The body a Lambda proxy result carries to a two-way route's client: `body` (a string as
/// is, anything else as JSON); a result that is not such an object is sent as JSON.
fn proxy_body(result: &Value) -> Option<String> {
    match result {
        Value::Null => None,
        Value::Object(o) if o.contains_key("statusCode") || o.contains_key("body") => {
            match o.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            }
        }
        other => Some(other.to_string()),
    }
}

/// What API Gateway sends the client when a route's integration fails or times out.
pub fn gateway_error(message: &str, connection_id: &str, request_id: &str) -> String {
    json!({"message": message, "connectionId": connection_id, "requestId": request_id}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_proxy_result_gives_its_body() {
        assert_eq!(
            proxy_body(&json!({"statusCode": 200, "body": "{\"ok\":true}"})),
            Some("{\"ok\":true}".into())
        );
        assert_eq!(proxy_body(&json!({"statusCode": 204})), None);
        assert_eq!(
            proxy_body(&json!({"body": {"a": 1}})),
            Some("{\"a\":1}".into())
        );
        assert_eq!(proxy_body(&json!("hi")), Some("\"hi\"".into()));
        assert_eq!(proxy_body(&Value::Null), None);
        assert_eq!(
            gateway_error("Internal server error", "A=", "r="),
            r#"{"connectionId":"A=","message":"Internal server error","requestId":"r="}"#
        );
    }
}
