//! `[[route]]`: route keys sent to the team's own code, a Lambda function (`AWS_PROXY`) or an
//! HTTP backend (`HTTP_PROXY`, POST), one way or two way; and `[api]
//! backend_secret_parameter`, the secret HTTP backends receive to tell API Gateway's requests
//! from the internet's.

use serde::Serialize;
use toml::Spanned;

use super::checker::{nonempty, ssm_parameter_name, web_url, Checker};
use super::raw::{RawApi, RawRoute};
use super::ConfigError;

/// The actions the bundled handler answers itself: a route may not take them.
pub const BUILT_IN_ACTIONS: &[&str] = &["ping", "subscribe", "unsubscribe", "broadcast", "resume"];

/// API Gateway allows 300 routes per API; `$connect`, `$disconnect` and `$default` are three.
pub const MAX_ROUTES: usize = 297;

/// API Gateway's integration timeout for WebSocket APIs, in milliseconds.
pub const TIMEOUT_MS: std::ops::RangeInclusive<i64> = 50..=29_000;

/// Where a route's messages go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    /// A Lambda function of the team's: a name (in the stack's account and region) or an ARN.
    Function(String),
    /// An HTTP backend, called with POST.
    Http(String),
}

/// One `[[route]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfig {
    /// The value of the route selection expression (`action` by default).
    pub key: String,
    pub target: RouteTarget,
    /// The target's answer goes back to the sender.
    pub two_way: bool,
    pub timeout_ms: i64,
}

/// A Lambda function's name (with an optional `:qualifier`), or its ARN.
fn function_ref(f: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let qualifier_ok = |q: &str| {
        !q.is_empty()
            && q.len() <= 128
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$')
    };
    let name_and_qualifier = |s: &str| match s.split_once(':') {
        None => name_ok(s),
        Some((n, q)) => name_ok(n) && qualifier_ok(q),
    };
    match f.strip_prefix("arn:") {
        None => name_and_qualifier(f),
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(6, ':').collect();
            parts.len() == 6
                && parts[0].starts_with("aws")
                && parts[1] == "lambda"
                && !parts[2].is_empty()
                && parts[3].len() == 12
                && parts[3].chars().all(|c| c.is_ascii_digit())
                && parts[4] == "function"
                && name_and_qualifier(parts[5])
        }
    }
}

pub(super) fn check_routes(
    c: &Checker<'_>,
    raw: &[Spanned<RawRoute>],
) -> Result<Vec<RouteConfig>, ConfigError> {
    if raw.len() > MAX_ROUTES {
        return Err(c.invalid(
            "route",
            raw[MAX_ROUTES].span(),
            format!(
                "{} routes: API Gateway allows 300 per API, three of which are $connect, $disconnect and $default",
                raw.len()
            ),
        ));
    }
    let mut out: Vec<RouteConfig> = Vec::new();
    for r in raw {
        let r = r.get_ref();
        let key = r.key.get_ref();
        let bad_key = if key.is_empty() || key.chars().count() > 128 {
            Some("a route key is 1 to 128 characters".to_owned())
        } else if key.starts_with('$') {
            Some("keys starting with $ are API Gateway's ($connect, $disconnect, $default): the bundled handler keeps them".into())
        } else if key.chars().any(|ch| ch.is_control() || ch.is_whitespace()) {
            Some("a route key has no spaces or control characters".into())
        } else if BUILT_IN_ACTIONS.contains(&key.as_str()) {
            Some(format!(
                "{key:?} is an action of the bundled handler ({}): choose another key",
                BUILT_IN_ACTIONS.join(", ")
            ))
        } else if out.iter().any(|o| &o.key == key) {
            Some(format!("{key:?} has two [[route]] entries"))
        } else {
            None
        };
        if let Some(why) = bad_key {
            return Err(c.invalid("route.key", r.key.span(), why));
        }
        let target = match (&r.function, &r.http) {
            (Some(f), None) => {
                let f = f.get_ref().trim();
                if !function_ref(f) {
                    return Err(c.invalid(
                        "route.function",
                        r.function.as_ref().map(Spanned::span).unwrap_or_default(),
                        format!("{f:?} is not a Lambda function's name (letters, digits, - and _, an optional :alias) or ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"),
                    ));
                }
                RouteTarget::Function(f.to_owned())
            }
            (None, Some(u)) => {
                let url = u.get_ref().trim();
                if !web_url(url) {
                    return Err(c.invalid(
                        "route.http",
                        u.span(),
                        format!("{url:?} is not an https:// URL (http:// only for localhost, which only wsctl dev can reach)"),
                    ));
                }
                RouteTarget::Http(url.to_owned())
            }
            (Some(_), Some(h)) => {
                return Err(c.invalid(
                    "route.http",
                    h.span(),
                    format!("route {key:?}: set either function or http, not both"),
                ))
            }
            (None, None) => {
                return Err(c.invalid(
                    "route.key",
                    r.key.span(),
                    format!(
                    "route {key:?} needs a target: function = \"NAME\" or http = \"https://...\""
                ),
                ))
            }
        };
        let timeout_ms = c.int_in(
            "route.timeout_ms",
            &r.timeout_ms,
            *TIMEOUT_MS.end(),
            TIMEOUT_MS,
            "milliseconds (API Gateway's integration timeout)",
        )?;
        out.push(RouteConfig {
            key: key.clone(),
            target,
            two_way: r.two_way.unwrap_or(false),
            timeout_ms,
        });
    }
    Ok(out)
}

/// `[api] backend_secret_parameter`: required by an HTTP route.
pub(super) fn check_backend_secret(
    c: &Checker<'_>,
    a: &RawApi,
    routes: &[RouteConfig],
    raw: &[Spanned<RawRoute>],
) -> Result<Option<String>, ConfigError> {
    let name = match nonempty(&a.backend_secret_parameter) {
        None => None,
        Some(p) => {
            let name = p.get_ref().trim();
            if !ssm_parameter_name(name) {
                return Err(c.invalid(
                    "api.backend_secret_parameter",
                    p.span(),
                    format!("{name:?} is not an SSM parameter name: letters, digits and _.-/ only, not starting with aws or ssm, e.g. \"/myapp/ws-backend-secret\""),
                ));
            }
            Some(name.to_owned())
        }
    };
    let http = routes
        .iter()
        .zip(raw)
        .find(|(r, _)| matches!(r.target, RouteTarget::Http(_)));
    if let (None, Some((route, raw))) = (&name, http) {
        return Err(c.invalid(
            "route.http",
            raw.get_ref().http.as_ref().map(Spanned::span).unwrap_or_default(),
            format!(
                "route {:?} calls an HTTP backend, which must be able to tell API Gateway's requests from anyone's: set [api] backend_secret_parameter to an SSM SecureString (its value is sent in X-Wsctl-Secret)",
                route.key
            ),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, RouteTarget};

    fn load(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("wsctl.toml"), text).map_err(|e| e.to_string())
    }

    const SECRET: &str = "[api]\nbackend_secret_parameter = \"/demo/backend\"\n";

    #[test]
    fn routes_parse_with_their_defaults() {
        let c = load(&format!(
            "project = \"demo\"\n{SECRET}\n[[route]]\nkey = \"sendmessage\"\nfunction = \"chat-send\"\ntwo_way = true\n\n[[route]]\nkey = \"order.update\"\nhttp = \"https://api.example.com/ws/order\"\ntimeout_ms = 10000\n"
        ))
        .unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(
            c.routes[0].target,
            RouteTarget::Function("chat-send".into())
        );
        assert!(c.routes[0].two_way);
        assert_eq!(c.routes[0].timeout_ms, 29_000);
        assert_eq!(c.routes[1].timeout_ms, 10_000);
        assert!(!c.routes[1].two_way);
        assert_eq!(
            c.api.backend_secret_parameter.as_deref(),
            Some("/demo/backend")
        );
        for f in [
            "chat-send:live",
            "arn:aws:lambda:us-east-1:123456789012:function:chat-send",
            "arn:aws:lambda:us-east-1:123456789012:function:chat-send:3",
        ] {
            let c = load(&format!(
                "project = \"demo\"\n[[route]]\nkey = \"k\"\nfunction = \"{f}\"\n"
            ))
            .unwrap();
            assert_eq!(c.routes[0].target, RouteTarget::Function(f.into()), "{f}");
        }
    }

    #[test]
    fn bad_routes_are_refused_with_the_line_and_the_reason() {
        let route = |body: &str| format!("project = \"demo\"\n{SECRET}[[route]]\n{body}\n");
        let cases = [
            (
                "key = \"ping\"\nfunction = \"f\"",
                "wsctl.toml:5: route.key: \"ping\" is an action of the bundled handler",
            ),
            (
                "key = \"$default\"\nfunction = \"f\"",
                "route.key: keys starting with $",
            ),
            ("key = \"a b\"\nfunction = \"f\"", "no spaces"),
            ("key = \"k\"", "needs a target"),
            (
                "key = \"k\"\nfunction = \"f\"\nhttp = \"https://x\"",
                "wsctl.toml:7: route.http: route \"k\": set either function or http",
            ),
            (
                "key = \"k\"\nhttp = \"http://api.example.com/x\"",
                "route.http: \"http://api.example.com/x\" is not an https:// URL",
            ),
            (
                "key = \"k\"\nhttp = \"https://x/y\"\ntimeout_ms = 30000",
                "route.timeout_ms: 30000 is out of range: expected 50 to 29000",
            ),
            ("key = \"k\"\nfunction = \"my function\"", "route.function"),
            (
                "key = \"k\"\nfunction = \"f\"\nmethod = \"GET\"",
                "unknown field `method`",
            ),
        ];
        for (body, want) in cases {
            let e = load(&route(body)).unwrap_err();
            assert!(e.contains(want), "{body}:\n{e}\nwanted {want}");
        }
        let twice = load("project = \"demo\"\n[[route]]\nkey = \"k\"\nfunction = \"f\"\n[[route]]\nkey = \"k\"\nfunction = \"g\"\n").unwrap_err();
        assert!(
            twice.contains("wsctl.toml:6: route.key: \"k\" has two [[route]] entries"),
            "{twice}"
        );
        let no_secret = load(
            "project = \"demo\"\n[[route]]\nkey = \"k\"\nhttp = \"https://api.example.com/x\"\n",
        )
        .unwrap_err();
        assert!(
            no_secret.contains("wsctl.toml:4: route.http: route \"k\" calls an HTTP backend"),
            "{no_secret}"
        );
        let many: String = (0..298)
            .map(|i| format!("[[route]]\nkey = \"k{i}\"\nfunction = \"f\"\n"))
            .collect();
        let e = load(&format!("project = \"demo\"\n{many}")).unwrap_err();
        assert!(
            e.contains("298 routes: API Gateway allows 300 per API"),
            "{e}"
        );
        // A local backend is accepted for wsctl dev.
        assert!(load(&route("key = \"k\"\nhttp = \"http://localhost:8000/ws\"")).is_ok());
    }
}
