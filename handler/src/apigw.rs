//! API Gateway WebSocket events (`ApiGatewayWebsocketProxyRequest`, as Lambda receives them)
//! into the library's [`Event`]s. Shared by the Lambda binary and `wsctl dev`, which builds the
//! same JSON API Gateway sends and feeds it through here.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use base64::Engine as _;
use serde_json::Value;

use crate::authorizer::{AuthorizeRequest, Caller};
use crate::inbound::{Event, RequestContext};

/// A payload with a `requestContext` that is not an API Gateway WebSocket event.
#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway WebSocket event: {0}")]
pub struct BadEvent(#[from] serde_json::Error);

/// API Gateway events carry a `requestContext` (an authorizer's has `"type":"REQUEST"` too);
/// anything else is a direct invocation.
pub fn to_event(payload: Value) -> Result<Event, BadEvent> {
    if let Some(request) = AuthorizeRequest::from_payload(&payload) {
        return Ok(Event::Authorize(request));
    }
    if !payload.get("requestContext").is_some_and(Value::is_object) {
        return Ok(Event::Invoke(payload));
    }
    let request: ApiGatewayWebsocketProxyRequest = serde_json::from_value(payload)?;
    let rc = request.request_context;
    let ctx = RequestContext {
        connection_id: rc.connection_id.unwrap_or_default(),
        domain_name: rc.domain_name,
        stage: rc.stage,
        source_ip: rc.identity.source_ip,
        request_time_epoch_ms: rc.request_time_epoch,
        caller: Caller::from_context(&rc.authorizer.fields),
    };
    let kind = rc
        .event_type
        .as_deref()
        .or(rc.route_key.as_deref())
        .unwrap_or("MESSAGE");
    Ok(match kind {
        "CONNECT" | "$connect" => Event::Connect {
            ctx,
            query: request
                .query_string_parameters
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .fold(BTreeMap::new(), |mut m, (k, v)| {
                    m.entry(k).or_insert(v);
                    m
                }),
            headers: request
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
                })
                .collect(),
        },
        "DISCONNECT" | "$disconnect" => Event::Disconnect { ctx },
        _ => {
            let body = match request.body {
                Some(b) if request.is_base64_encoded => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b.as_bytes())
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        // Undecodable binary frames reach the parser as-is and get bad_request.
                        .unwrap_or(b),
                ),
                other => other,
            };
            Event::Message { ctx, body }
        }
    })
}
