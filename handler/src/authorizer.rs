//! API Gateway's Lambda REQUEST authorizer on `$connect`, served by this function: the token is
//! verified once, at the handshake, and API Gateway hands the answer's `context` to every
//! later event of the connection (`requestContext.authorizer`), to the bundled handler and to
//! a team's own route targets alike (its Lambda functions read it from the event; its HTTP
//! backends get it as request headers, mapped from `context.authorizer.*`). This is API
//! Gateway's own way of carrying an identity past `$connect`: nothing reads wsctl's table.
//!
//! The context has string values only (API Gateway accepts strings, numbers and booleans, no
//! objects): `sub`, the token's subject (also the `principalId`), and `claims`, a JSON object
//! of the claims `[auth] claims` and the topic rules name (strings, and numbers as text).
//!
//! A refused token is answered with the error `Unauthorized`, which API Gateway turns into
//! 401 on the handshake; keys that cannot be fetched are a function error (500).
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html>)

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Verified;
use crate::topics::keep_claims;

/// The context key of the subject.
pub const CONTEXT_SUB: &str = "sub";
/// The context key of the claims, a JSON object in a string.
pub const CONTEXT_CLAIMS: &str = "claims";

/// An authorizer event: `{"type":"REQUEST","methodArn":...,"headers":...,...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/$connect`.
    pub method_arn: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// First value of each query parameter.
    pub query: BTreeMap<String, String>,
}

impl AuthorizeRequest {
    /// The request, when `payload` is an authorizer event.
    pub fn from_payload(payload: &Value) -> Option<AuthorizeRequest> {
        if payload.get("type").and_then(Value::as_str) != Some("REQUEST") {
            return None;
        }
        let method_arn = payload.get("methodArn")?.as_str()?.to_owned();
        let strings = |key: &str, lower: bool| -> BTreeMap<String, String> {
            payload
                .get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            let k = if lower {
                                k.to_ascii_lowercase()
                            } else {
                                k.clone()
                            };
                            Some((k, v.as_str()?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(AuthorizeRequest {
            method_arn,
            headers: strings("headers", true),
            query: strings("queryStringParameters", false),
        })
    }
}

/// The authorizer's answer: allow `$connect` for the subject, with the context every later
/// event carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerAnswer {
    pub principal_id: String,
    pub policy_document: Value,
    pub context: BTreeMap<String, String>,
}

impl AuthorizerAnswer {
    /// Allows `method_arn` to the verified token's subject, passing on the claims `names`.
    pub fn allow(method_arn: &str, verified: &Verified, names: &BTreeSet<String>) -> Self {
        let claims = keep_claims(&verified.claims, names);
        AuthorizerAnswer {
            principal_id: verified.sub.clone(),
            policy_document: json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": method_arn,
                }],
            }),
            context: BTreeMap::from([
                (CONTEXT_SUB.to_owned(), verified.sub.clone()),
                (
                    CONTEXT_CLAIMS.to_owned(),
                    serde_json::to_string(&claims).unwrap_or_else(|_| "{}".into()),
                ),
            ]),
        }
    }
}

/// Who is talking, as the authorizer said at `$connect`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub sub: String,
    pub claims: BTreeMap<String, String>,
}

impl Caller {
    /// The caller of an event whose `requestContext.authorizer` is `fields` (None without an
    /// authorizer's subject).
    pub fn from_context(fields: &HashMap<String, Value>) -> Option<Caller> {
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let sub = text(CONTEXT_SUB)
            .or_else(|| text("principalId"))?
            .to_owned();
        let claims = text(CONTEXT_CLAIMS)
            .and_then(|c| serde_json::from_str::<BTreeMap<String, Value>>(c).ok())
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Caller { sub, claims })
    }

    /// The context an event carries for this caller (what `wsctl dev` puts in
    /// `requestContext.authorizer`).
    pub fn context(&self) -> Value {
        json!({
            "principalId": self.sub,
            CONTEXT_SUB: self.sub,
            CONTEXT_CLAIMS: serde_json::to_string(&self.claims).unwrap_or_else(|_| "{}".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_allows_the_method_and_carries_only_the_named_claims() {
        let verified = Verified {
            sub: "alice".into(),
            claims: json!({"sub": "alice", "org_id": "acme", "level": 3, "email": "a@x", "roles": ["x"]})
                .as_object()
                .unwrap()
                .clone(),
        };
        let names = BTreeSet::from(["org_id".to_owned(), "level".to_owned(), "roles".to_owned()]);
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/$connect";
        let answer = AuthorizerAnswer::allow(arn, &verified, &names);
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({
                "principalId": "alice",
                "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}
                ]},
                "context": {"sub": "alice", "claims": r#"{"level":"3","org_id":"acme"}"#},
            })
        );
        // What API Gateway then puts in every event's requestContext.authorizer.
        let mut fields: HashMap<String, Value> = answer
            .context
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        fields.insert("principalId".into(), json!("alice"));
        let caller = Caller::from_context(&fields).unwrap();
        assert_eq!(caller.sub, "alice");
        assert_eq!(caller.claims["org_id"], "acme");
        assert_eq!(Caller::from_context(&HashMap::new()), None);
    }

    #[test]
    fn only_authorizer_events_are_authorize_requests() {
        let event = json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:1:abc/prod/$connect",
            "headers": {"Sec-WebSocket-Protocol": "wsctl, t"},
            "queryStringParameters": {"token": "t"},
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT"},
        });
        let req = AuthorizeRequest::from_payload(&event).unwrap();
        assert_eq!(req.headers["sec-websocket-protocol"], "wsctl, t");
        assert_eq!(req.query["token"], "t");
        assert_eq!(
            AuthorizeRequest::from_payload(&json!({"requestContext": {"eventType": "CONNECT"}})),
            None
        );
    }
}
