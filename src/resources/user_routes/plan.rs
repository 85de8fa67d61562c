//! Pure: what the config asks of each route to the team's code ([`desired`]), what differs
//! from what exists ([`diff`], field by field), why `up` must not write ([`refuse`]) and what
//! `status` says of each route ([`checks`]).

use std::collections::BTreeMap;

use super::model::{
    function_of_uri, header_parameter, Desired, FunctionTarget, Observed, RouteSpec, HEADER_CLAIMS,
    HEADER_CONNECTION_ID, HEADER_REQUEST_ID, HEADER_ROUTE_KEY, HEADER_SECRET, HEADER_USER,
};
use super::observe::in_stack_account;
use crate::config::{Config, RouteTarget};
use crate::naming::Names;
use crate::resources::permission::is_apigateway_invoke;
use crate::resources::route::{RouteObs, ROUTE_KEYS};
use crate::resources::shape::{check, Action, Change, Check, Kind, PlanItem};

/// What `[[route]]` asks for, given the API's id when known.
pub fn desired(config: &Config, names: &Names, api_id: Option<&str>) -> Desired {
    let routes = config
        .routes
        .iter()
        .map(|r| {
            let (integration_type, uri, function, local_only) = match &r.target {
                RouteTarget::Function(f) => {
                    let arn = names.lambda_arn(f);
                    let target = FunctionTarget {
                        sid: names.route_permission_sid(&r.key),
                        source_arn: api_id.map(|id| names.route_source_arn(id, &r.key)),
                        arn: arn.clone(),
                    };
                    (
                        "AWS_PROXY",
                        names.lambda_integration_uri(&arn),
                        Some(target),
                        false,
                    )
                }
                RouteTarget::Http(url) => {
                    ("HTTP_PROXY", url.clone(), None, url.starts_with("http://"))
                }
            };
            let mut request_parameters = BTreeMap::new();
            if integration_type == "HTTP_PROXY" {
                let mut map = |header: &str, source: &str| {
                    request_parameters.insert(header_parameter(header), source.to_owned());
                };
                map(HEADER_CONNECTION_ID, "context.connectionId");
                map(HEADER_REQUEST_ID, "context.requestId");
                map(HEADER_ROUTE_KEY, "context.routeKey");
                if config.auth.is_some() {
                    map(HEADER_USER, "context.authorizer.principalId");
                    map(HEADER_CLAIMS, "context.authorizer.claims");
                }
            }
            RouteSpec {
                key: r.key.clone(),
                integration_type,
                uri,
                timeout_ms: r.timeout_ms,
                request_parameters,
                sends_secret: integration_type == "HTTP_PROXY"
                    && config.api.backend_secret_parameter.is_some(),
                two_way: r.two_way,
                function,
                local_only,
            }
        })
        .collect();
    Desired {
        routes,
        account: names.account.clone(),
        region: names.region.clone(),
        sid_prefix: names.route_sid_prefix(),
    }
}

/// The request parameters a route's integration must have: its mappings, and the secret's
/// static value (`'...'`) when it sends one and the secret is readable.
pub fn parameters(spec: &RouteSpec, o: &Observed) -> BTreeMap<String, String> {
    let mut p = spec.request_parameters.clone();
    if let (true, Some(Ok(secret))) = (spec.sends_secret, &o.secret) {
        p.insert(header_parameter(HEADER_SECRET), format!("'{secret}'"));
    }
    p
}

/// The routes of the API that are not the bundled handler's.
pub fn custom_routes(o: &Observed) -> impl Iterator<Item = &RouteObs> {
    o.routes
        .iter()
        .filter(|r| !ROUTE_KEYS.contains(&r.key.as_str()))
}

/// A route's item: created, updated field by field, or unchanged.
pub fn diff_route(o: Option<&Observed>, spec: &RouteSpec) -> Action {
    let Some(o) = o else {
        return Action::Create;
    };
    let Some(route) = custom_routes(o).find(|r| r.key == spec.key) else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    match o.integration(route) {
        None => changes.push(Change::new(
            "integration",
            route.target.as_deref().unwrap_or("(none)"),
            "(a new integration)",
        )),
        Some(i) => {
            if i.integration_type != spec.integration_type {
                changes.push(Change::new(
                    "integration_type",
                    &i.integration_type,
                    spec.integration_type,
                ));
            }
            if i.uri != spec.uri {
                changes.push(Change::new("integration_uri", &i.uri, &spec.uri));
            }
            if i.method.as_deref() != Some("POST") {
                changes.push(Change::new(
                    "integration_method",
                    i.method.as_deref().unwrap_or("(none)"),
                    "POST",
                ));
            }
            if i.timeout_ms != Some(spec.timeout_ms) {
                changes.push(Change::new(
                    "timeout_ms",
                    i.timeout_ms.map_or("(default)".into(), |t| t.to_string()),
                    spec.timeout_ms,
                ));
            }
            let want = parameters(spec, o);
            let secret = header_parameter(HEADER_SECRET);
            let shown = |k: &str, v: Option<&String>| match (k == secret, v) {
                (_, None) => "(none)".to_owned(),
                (true, Some(_)) => "(a secret)".to_owned(),
                (false, Some(v)) => v.clone(),
            };
            let keys: std::collections::BTreeSet<&String> =
                want.keys().chain(i.request_parameters.keys()).collect();
            for k in keys {
                let (has, wants) = (i.request_parameters.get(k), want.get(k));
                if has != wants {
                    let to = match (k == &secret, wants) {
                        (true, Some(_)) => "(the backend secret)".to_owned(),
                        (_, w) => shown(k, w),
                    };
                    changes.push(Change::new(
                        format!("request_parameters.{k}"),
                        shown(k, has),
                        to,
                    ));
                }
            }
        }
    }
    let is_two_way = route.route_response_selection_expression.as_deref() == Some("$default")
        && o.responses
            .get(&route.id)
            .is_some_and(|r| r.iter().any(|(_, key)| key == "$default"));
    if is_two_way != spec.two_way {
        changes.push(Change::new("two_way", is_two_way, spec.two_way));
    }
    if let Some(f) = &spec.function {
        let granted = granted(o, f);
        if !granted {
            changes.push(Change::new(
                format!("permission.{}", f.sid),
                "(none)",
                f.source_arn.as_deref().unwrap_or("this route"),
            ));
        }
    }
    Action::from_changes(changes)
}

/// Whether the function's policy has the route's statement, scoped to the route.
fn granted(o: &Observed, f: &FunctionTarget) -> bool {
    o.functions.get(&f.arn).is_some_and(|fo| {
        fo.statements.iter().any(|s| {
            s.sid == f.sid
                && is_apigateway_invoke(s)
                && f.source_arn.is_some()
                && s.source_arn == f.source_arn
        })
    })
}

/// Every route's item, then the API's other routes (not in the file) to delete.
pub fn diff(o: Option<&Observed>, d: &Desired) -> Vec<PlanItem> {
    let mut items: Vec<PlanItem> = d
        .routes
        .iter()
        .map(|spec| {
            PlanItem::new(
                Kind::Route(spec.key.clone()),
                &spec.key,
                diff_route(o, spec),
            )
        })
        .collect();
    if let Some(o) = o {
        let mut stale: Vec<&RouteObs> = custom_routes(o)
            .filter(|r| !d.routes.iter().any(|s| s.key == r.key))
            .collect();
        stale.dedup_by(|a, b| a.key == b.key);
        for r in stale {
            items.push(PlanItem::new(
                Kind::Route(r.key.clone()),
                &r.key,
                Action::Delete,
            ));
        }
    }
    items
}

/// Why `up` must not write: a target it cannot route to, or a backend secret it cannot send.
pub fn refuse(o: Option<&Observed>, d: &Desired) -> Option<String> {
    let mut why = Vec::new();
    for spec in &d.routes {
        if spec.local_only {
            why.push(format!(
                "route {:?}: {} is reachable by wsctl dev only; set the deployed backend's https:// URL (per environment: [[env.NAME.route]])",
                spec.key, spec.uri
            ));
        }
        if let Some(f) = &spec.function {
            if !in_stack_account(&f.arn, d) {
                why.push(format!(
                    "route {:?}: {} is not in this stack's account and region ({} {}): wsctl gives API Gateway permission to invoke the function, so it must be",
                    spec.key, f.arn, d.account, d.region
                ));
            } else if o
                .and_then(|o| o.functions.get(&f.arn))
                .is_some_and(|fo| !fo.exists)
            {
                why.push(format!(
                    "route {:?}: function {} does not exist (deploy it first, or correct [[route]] function)",
                    spec.key, f.arn
                ));
            }
        }
        if spec.sends_secret {
            if let Some(Err(e)) = o.and_then(|o| o.secret.as_ref()) {
                why.push(format!("[api] backend_secret_parameter: {e}"));
            }
        }
    }
    why.dedup();
    (!why.is_empty()).then(|| why.join("\n"))
}

/// `route:KEY`, `route_can_invoke_target:KEY`, `route_response:KEY` (two-way routes) and
/// `route_target_exists:KEY` (function routes), for every configured route.
pub fn checks(o: Option<&Observed>, d: &Desired) -> Vec<Check> {
    let mut out = Vec::new();
    for spec in &d.routes {
        let k = &spec.key;
        let action = diff_route(o, spec);
        let fields = |wanted: &dyn Fn(&str) -> bool| -> Vec<String> {
            action
                .changes()
                .iter()
                .filter(|c| wanted(&c.field))
                .map(|c| c.to_string())
                .collect()
        };
        let wiring = fields(&|f| !f.starts_with("permission.") && f != "two_way");
        out.push(match (&action, wiring.is_empty()) {
            (Action::Create, _) => check(
                format!("route:{k}"),
                false,
                format!("route {k:?} does not exist"),
            ),
            (_, true) => check(
                format!("route:{k}"),
                true,
                format!("{k} -> {} {}", spec.integration_type, spec.uri),
            ),
            (_, false) => check(format!("route:{k}"), false, wiring.join("; ")),
        });
        let name = format!("route_can_invoke_target:{k}");
        out.push(match (&spec.function, o) {
            (Some(f), Some(o)) if granted(o, f) => check(
                name,
                true,
                format!("statement {} lets this route invoke {}", f.sid, f.arn),
            ),
            (Some(f), _) => check(
                name,
                false,
                format!("no statement of {} lets API Gateway invoke it for route {k:?} (clients get \"Internal server error\")", f.arn),
            ),
            (None, _) if !spec.sends_secret => check(name, true, "an HTTP backend (no permission needed)"),
            (None, Some(o)) => {
                let has = o
                    .routes
                    .iter()
                    .find(|r| &r.key == k)
                    .and_then(|r| o.integration(r))
                    .is_some_and(|i| i.request_parameters.get(&header_parameter(HEADER_SECRET)) == parameters(spec, o).get(&header_parameter(HEADER_SECRET)));
                check(
                    name,
                    has && matches!(o.secret, Some(Ok(_))),
                    if has {
                        format!("the backend receives {HEADER_SECRET}")
                    } else {
                        format!("the integration does not send the backend secret in {HEADER_SECRET}")
                    },
                )
            }
            (None, None) => check(name, false, "the API does not exist"),
        });
        if spec.two_way {
            let wrong = fields(&|f| f == "two_way");
            out.push(check(
                format!("route_response:{k}"),
                wrong.is_empty() && action != Action::Create,
                if wrong.is_empty() && action != Action::Create {
                    "the target's answer goes back to the sender ($default route response)"
                        .to_owned()
                } else {
                    "no $default route response: the target's answer is dropped".to_owned()
                },
            ));
        }
        if let Some(f) = &spec.function {
            let exists = o.and_then(|o| o.functions.get(&f.arn)).map(|fo| fo.exists);
            out.push(check(
                format!("route_target_exists:{k}"),
                exists == Some(true),
                match exists {
                    Some(true) => format!("{} exists", f.arn),
                    Some(false) => format!("{} does not exist", f.arn),
                    None => format!("{} is outside this stack's account and region", f.arn),
                },
            ));
        }
    }
    out
}

/// The function a deleted route's integration invokes, if any.
pub fn function_of_route<'a>(o: &'a Observed, route: &RouteObs) -> Option<&'a str> {
    o.integration(route)
        .filter(|i| i.integration_type == "AWS_PROXY")
        .and_then(|i| function_of_uri(&i.uri))
}

#[cfg(test)]
mod tests {
    use super::super::model::IntegrationObs;
    use super::*;
    use crate::resources::permission::Statement;
    use std::path::Path;

    fn config() -> Config {
        Config::parse(
            Path::new("wsctl.toml"),
            "project = \"chat\"\n[api]\nbackend_secret_parameter = \"/chat/backend\"\n[auth]\nsecret_parameter = \"/chat/jwt\"\n[[route]]\nkey = \"sendmessage\"\nfunction = \"chat-send\"\ntwo_way = true\n[[route]]\nkey = \"order.update\"\nhttp = \"https://api.example.com/ws/order\"\ntimeout_ms = 10000\n",
        )
        .unwrap()
    }

    /// What `up` leaves: exactly the desired routes.
    fn converged(d: &Desired) -> Observed {
        let mut o = Observed {
            api_id: "abc".into(),
            secret: Some(Ok("s3cret-s3cret-s3cret".into())),
            ..Observed::default()
        };
        for (n, spec) in d.routes.iter().enumerate() {
            let iid = format!("i{n}");
            o.integrations.push(IntegrationObs {
                id: iid.clone(),
                integration_type: spec.integration_type.into(),
                uri: spec.uri.clone(),
                method: Some("POST".into()),
                timeout_ms: Some(spec.timeout_ms),
                request_parameters: BTreeMap::new(),
            });
            let p = parameters(spec, &o);
            o.integrations.last_mut().unwrap().request_parameters = p;
            o.routes.push(RouteObs {
                id: format!("r{n}"),
                key: spec.key.clone(),
                target: Some(format!("integrations/{iid}")),
                route_response_selection_expression: spec.two_way.then(|| "$default".into()),
                ..RouteObs::default()
            });
            if spec.two_way {
                o.responses
                    .insert(format!("r{n}"), vec![("rr".into(), "$default".into())]);
            }
            if let Some(f) = &spec.function {
                o.functions.insert(
                    f.arn.clone(),
                    super::super::model::FunctionObs {
                        exists: true,
                        statements: vec![Statement {
                            sid: f.sid.clone(),
                            principal: "apigateway.amazonaws.com".into(),
                            action: vec!["lambda:InvokeFunction".into()],
                            source_arn: f.source_arn.clone(),
                        }],
                    },
                );
            }
        }
        o
    }

    #[test]
    fn a_converged_api_plans_nothing_and_each_drift_is_named() {
        let c = config();
        let n = Names::new(&c, "us-east-1", "123456789012");
        let d = desired(&c, &n, Some("abc"));
        let http = &d.routes[1];
        assert_eq!(
            http.request_parameters
                .get("integration.request.header.X-Wsctl-User")
                .map(String::as_str),
            Some("context.authorizer.principalId")
        );
        assert_eq!(
            d.routes[0].function.as_ref().unwrap().source_arn.as_deref(),
            Some("arn:aws:execute-api:us-east-1:123456789012:abc/prod/sendmessage")
        );
        let o = converged(&d);
        assert!(diff(Some(&o), &d)
            .iter()
            .all(|i| i.action == Action::NoChange));
        assert!(
            checks(Some(&o), &d).iter().all(|c| c.ok),
            "{:?}",
            checks(Some(&o), &d)
        );
        assert_eq!(refuse(Some(&o), &d), None);

        // A wrong mapping, a removed permission, a lost route response, a route not in the file.
        let mut drifted = o.clone();
        drifted.integrations[1].request_parameters.insert(
            "integration.request.header.X-Wsctl-Connection-Id".into(),
            "context.requestId".into(),
        );
        drifted
            .functions
            .values_mut()
            .next()
            .unwrap()
            .statements
            .clear();
        drifted.responses.clear();
        drifted.routes.push(RouteObs {
            id: "old".into(),
            key: "legacy".into(),
            target: Some("integrations/i0".into()),
            ..RouteObs::default()
        });
        let items = diff(Some(&drifted), &d);
        let fields = |i: usize| -> Vec<String> {
            items[i]
                .action
                .changes()
                .iter()
                .map(|c| c.field.clone())
                .collect()
        };
        assert_eq!(
            fields(0),
            vec![
                "two_way".to_owned(),
                format!("permission.{}", d.routes[0].function.as_ref().unwrap().sid)
            ]
        );
        assert_eq!(
            fields(1),
            ["request_parameters.integration.request.header.X-Wsctl-Connection-Id"]
        );
        assert_eq!(
            (items[2].name.as_str(), &items[2].action),
            ("legacy", &Action::Delete)
        );
        let failed: Vec<String> = checks(Some(&drifted), &d)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.into_owned())
            .collect();
        assert_eq!(
            failed,
            [
                "route_can_invoke_target:sendmessage",
                "route_response:sendmessage",
                "route:order.update"
            ]
        );

        // The secret never shows in a plan.
        let mut rotated = o.clone();
        rotated.secret = Some(Ok("another-value-entirely".into()));
        let items = diff(Some(&rotated), &d);
        let change = &items[1].action.changes()[0];
        assert_eq!(
            (change.from.as_str(), change.to.as_str()),
            ("(a secret)", "(the backend secret)")
        );
    }

    #[test]
    fn up_refuses_targets_it_cannot_route_to() {
        let c = Config::parse(
            Path::new("wsctl.toml"),
            "project = \"chat\"\n[api]\nbackend_secret_parameter = \"/chat/backend\"\n[[route]]\nkey = \"a\"\nfunction = \"arn:aws:lambda:eu-west-1:123456789012:function:far\"\n[[route]]\nkey = \"b\"\nhttp = \"http://localhost:8000/ws\"\n[[route]]\nkey = \"c\"\nfunction = \"missing\"\n",
        )
        .unwrap();
        let n = Names::new(&c, "us-east-1", "123456789012");
        let d = desired(&c, &n, Some("abc"));
        let mut o = Observed {
            secret: Some(Err("/chat/backend does not exist".into())),
            ..Observed::default()
        };
        o.functions
            .insert(n.lambda_arn("missing"), Default::default());
        let why = refuse(Some(&o), &d).unwrap();
        for part in [
            "route \"a\": arn:aws:lambda:eu-west-1:123456789012:function:far is not in this stack's account and region",
            "route \"b\": http://localhost:8000/ws is reachable by wsctl dev only",
            "route \"c\": function arn:aws:lambda:us-east-1:123456789012:function:missing does not exist",
            "[api] backend_secret_parameter: /chat/backend does not exist",
        ] {
            assert!(why.contains(part), "{why}\nmissing {part}");
        }
    }
}
