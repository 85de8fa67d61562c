//! `[auth]`: where the keys are (a JWKS URL, or an SSM SecureString for HS256), the accepted
//! issuer and audiences, and where `$connect` reads the token.

use super::checker::{nonempty, span_of, ssm_parameter_name, valid_arn, web_url, Checker};
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
            if !web_url(url) {
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
            if !ssm_parameter_name(name) {
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
                    ("auth.claims", span_of(&a.claims)),
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
    let mut claims: Vec<String> = Vec::new();
    for claim in a.claims.iter().flat_map(|l| l.get_ref()) {
        let name = claim.get_ref();
        let why = if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            Some("a claim name is 1 to 256 characters without control characters")
        } else if name == "sub" {
            Some("\"sub\" is always passed on (as the caller's subject); list only other claims")
        } else if claims.contains(name) {
            Some("listed twice")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(c.invalid("auth.claims", claim.span(), format!("{name:?}: {why}")));
        }
        claims.push(name.clone());
    }
    Ok(Some(AuthConfig {
        keys,
        issuer,
        audience,
        token_query_param,
        token_source,
        claims,
    }))
}
