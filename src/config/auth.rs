//! `[auth]`: where the keys are (a JWKS URL, or an SSM SecureString for HS256), the accepted
//! issuer and audiences, and where `$connect` reads the token.

use super::checker::{nonempty, span_of, valid_arn, Checker};
use super::raw::RawAuth;
use super::{AuthConfig, AuthKeys, ConfigError, TokenSource};

pub(super) fn check_auth(c: &Checker<'_>, a: &RawAuth) -> Result<Option<AuthConfig>, ConfigError> {
    let keys = match (nonempty(&a.jwks_url), nonempty(&a.secret_parameter)) {
        (Some(_), Some(p)) => {
            return Err(c.invalid(
                "auth.secret_parameter",
                p.span(),
                "set either auth.jwks_url (RS256/ES256) or auth.secret_parameter (HS256), not both",
            ))
        }
        (Some(u), None) => {
            let url = u.get_ref().trim();
            // https, or plain http to this machine (a local issuer for `wsctl dev`).
            let host = url.strip_prefix("https://").or_else(|| {
                url.strip_prefix("http://").filter(|h| {
                    ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| {
                        h.strip_prefix(l)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                    })
                })
            });
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/'))
                || url.contains(char::is_whitespace)
            {
                return Err(c.invalid(
                    "auth.jwks_url",
                    u.span(),
                    format!("{url:?} is not an https:// URL (e.g. https://cognito-idp.us-east-1.amazonaws.com/<pool>/.well-known/jwks.json; http:// only for localhost)"),
                ));
            }
            AuthKeys::Jwks {
                url: url.to_owned(),
            }
        }
        (None, Some(p)) => {
            let name = p.get_ref().trim();
            let ok = name.len() <= 1011
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-/".contains(ch))
                && !name
                    .to_ascii_lowercase()
                    .trim_start_matches('/')
                    .starts_with("aws")
                && !name
                    .to_ascii_lowercase()
                    .trim_start_matches('/')
                    .starts_with("ssm");
            if !ok {
                return Err(c.invalid(
                    "auth.secret_parameter",
                    p.span(),
                    format!("{name:?} is not an SSM parameter name: letters, digits and _.-/ only, not starting with aws or ssm, e.g. \"/myapp/ws-jwt-secret\""),
                ));
            }
            let kms_key_arn = match nonempty(&a.secret_kms_key_arn) {
                None => None,
                Some(k) if valid_arn(k.get_ref().trim(), "kms") => {
                    Some(k.get_ref().trim().to_owned())
                }
                Some(k) => {
                    return Err(c.invalid(
                        "auth.secret_kms_key_arn",
                        k.span(),
                        format!(
                            "{:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
                            k.get_ref()
                        ),
                    ))
                }
            };
            AuthKeys::SsmSecret {
                parameter: name.to_owned(),
                kms_key_arn,
            }
        }
        (None, None) => {
            // Keys that only mean something with a key source.
            c.no_stray(
                [
                    ("auth.issuer", span_of(&a.issuer)),
                    ("auth.audience", span_of(&a.audience)),
                    ("auth.token_query_param", span_of(&a.token_query_param)),
                    ("auth.token_source", span_of(&a.token_source)),
                    ("auth.secret_kms_key_arn", span_of(&a.secret_kms_key_arn)),
                ],
                "has no effect without auth.jwks_url or auth.secret_parameter",
            )?;
            return Ok(None);
        }
    };
    if let (AuthKeys::Jwks { .. }, Some(k)) = (&keys, &a.secret_kms_key_arn) {
        return Err(c.invalid(
            "auth.secret_kms_key_arn",
            k.span(),
            "only applies to auth.secret_parameter",
        ));
    }
    let issuer = nonempty(&a.issuer).map(|i| i.get_ref().trim().to_owned());
    let audience = match &a.audience {
        None => Vec::new(),
        Some(list) => {
            if list
                .get_ref()
                .iter()
                .any(|x| x.trim().is_empty() || x.contains(','))
            {
                return Err(c.invalid(
                    "auth.audience",
                    list.span(),
                    "audiences are non-empty strings without commas",
                ));
            }
            list.get_ref().iter().map(|x| x.trim().to_owned()).collect()
        }
    };
    let token_query_param = match &a.token_query_param {
        None => "token".to_owned(),
        Some(p) => {
            let v = p.get_ref();
            if v.is_empty()
                || v.len() > 64
                || !v
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(c.invalid(
                    "auth.token_query_param",
                    p.span(),
                    format!(
                        "{v:?} is not a query parameter name: 1 to 64 letters, digits, '_' or '-'"
                    ),
                ));
            }
            v.clone()
        }
    };
    let token_source = match &a.token_source {
        None => TokenSource::Query,
        Some(t) => t
            .get_ref()
            .parse()
            .map_err(|e: handler::auth::UnknownTokenSource| {
                c.invalid("auth.token_source", t.span(), e.to_string())
            })?,
    };
    Ok(Some(AuthConfig {
        keys,
        issuer,
        audience,
        token_query_param,
        token_source,
    }))
}
