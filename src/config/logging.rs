//! Validation of the observability and access keys: API Gateway's logs of the stage (`[api]
//! access_log`, `access_log_format`, `execution_log_level`, `log_retention_days`,
//! `manage_account_log_role`), the `[dashboard]` section, `[[grant]]` entries and `[domain]`.

use super::check::Checker;
use super::raw::{RawApi, RawDashboard};
use super::{ApiLogging, ConfigError, DashboardConfig, LogLevel, RETENTION_DAYS};

/// The variable API Gateway requires in every access log format.
const REQUEST_ID: &str = "$context.requestId";
/// CloudWatch Logs' largest event is 256 KB; API Gateway caps a format far below (3 KB).
const MAX_FORMAT_BYTES: usize = 3 * 1024;

pub(super) fn check_logging(c: &Checker<'_>, a: &RawApi) -> Result<ApiLogging, ConfigError> {
    let d = ApiLogging::default();
    let access_log = a.access_log.as_ref().map_or(d.access_log, |v| *v.get_ref());
    let access_log_format = match &a.access_log_format {
        None => d.access_log_format,
        Some(f) => {
            let text = f.get_ref();
            let problem = if text.trim().is_empty() {
                Some("is empty".to_owned())
            } else if text.contains('\n') || text.contains('\r') {
                Some("must be one line: API Gateway writes one log event per request".to_owned())
            } else if !text.contains(REQUEST_ID) {
                Some(format!(
                    "must contain {REQUEST_ID} (API Gateway requires it)"
                ))
            } else if text.len() > MAX_FORMAT_BYTES {
                Some(format!(
                    "is {} bytes; API Gateway accepts at most {MAX_FORMAT_BYTES}",
                    text.len()
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(c.invalid("api.access_log_format", f.span(), p));
            }
            if !access_log {
                return Err(c.invalid(
                    "api.access_log_format",
                    f.span(),
                    "has no effect without api.access_log = true",
                ));
            }
            text.clone()
        }
    };
    let execution_log_level = match &a.execution_log_level {
        None => d.execution_log_level,
        Some(l) => match l.get_ref().to_ascii_uppercase().as_str() {
            "OFF" => LogLevel::Off,
            "ERROR" => LogLevel::Error,
            "INFO" => LogLevel::Info,
            _ => {
                return Err(c.invalid(
                    "api.execution_log_level",
                    l.span(),
                    format!(
                        "{:?} is not a level: expected \"ERROR\", \"INFO\" or \"OFF\"",
                        l.get_ref()
                    ),
                ))
            }
        },
    };
    let log_retention_days = match &a.log_retention_days {
        None => d.log_retention_days,
        Some(v) if RETENTION_DAYS.contains(v.get_ref()) => *v.get_ref() as i32,
        Some(v) => {
            return Err(c.invalid(
                "api.log_retention_days",
                v.span(),
                format!(
                "{} is not a CloudWatch Logs retention period: expected one of {RETENTION_DAYS:?}",
                v.get_ref()
            ),
            ))
        }
    };
    if let Some(v) = &a.log_retention_days {
        if !access_log {
            return Err(c.invalid(
                "api.log_retention_days",
                v.span(),
                "has no effect without api.access_log = true (it is the access log group's retention)",
            ));
        }
    }
    let manage_account_log_role = a
        .manage_account_log_role
        .as_ref()
        .is_some_and(|v| *v.get_ref());
    let logging = ApiLogging {
        access_log,
        access_log_format,
        execution_log_level,
        log_retention_days,
        manage_account_log_role,
    };
    if let Some(v) = &a.manage_account_log_role {
        if *v.get_ref() && !logging.any() {
            return Err(c.invalid(
                "api.manage_account_log_role",
                v.span(),
                "has no effect without api.access_log = true or an api.execution_log_level other than \"OFF\"",
            ));
        }
    }
    Ok(logging)
}

/// `[[grant]]` entries: an IAM role's ARN each (once), and a non-empty `allow` list.
pub(super) fn check_grants(
    c: &Checker<'_>,
    raw: &[toml::Spanned<super::raw::RawGrant>],
) -> Result<Vec<super::Grant>, ConfigError> {
    use super::Allow;
    let mut out: Vec<super::Grant> = Vec::new();
    for g in raw {
        let g = g.get_ref();
        let p = g.principal.get_ref();
        let parts: Vec<&str> = p.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].chars().all(|ch| ch.is_ascii_digit())
            && parts[5]
                .strip_prefix("role/")
                .is_some_and(|r| !r.is_empty() && !r.ends_with('/') && !r.contains('*'));
        if !ok {
            return Err(c.invalid(
                "grant.principal",
                g.principal.span(),
                format!("{p:?} is not an IAM role's ARN (arn:aws:iam::123456789012:role/NAME)"),
            ));
        }
        if out.iter().any(|o| o.principal == *p) {
            return Err(c.invalid(
                "grant.principal",
                g.principal.span(),
                format!("{p} has two [[grant]] entries: list everything it may do in one"),
            ));
        }
        let mut allow = Vec::new();
        for a in g.allow.get_ref() {
            let v = match a.as_str() {
                "broadcast" => Allow::Broadcast,
                "manage_connections" => Allow::ManageConnections,
                other => {
                    return Err(c.invalid(
                        "grant.allow",
                        g.allow.span(),
                        format!("{other:?} is not a grant: expected \"broadcast\" or \"manage_connections\""),
                    ))
                }
            };
            if !allow.contains(&v) {
                allow.push(v);
            }
        }
        if allow.is_empty() {
            return Err(c.invalid(
                "grant.allow",
                g.allow.span(),
                "is empty: grant \"broadcast\", \"manage_connections\" or both",
            ));
        }
        allow.sort();
        out.push(super::Grant {
            principal: p.clone(),
            allow,
        });
    }
    Ok(out)
}

/// `[domain]`: a DNS name (no wildcard), an ACM certificate's ARN, a Route 53 zone id.
pub(super) fn check_domain(
    c: &Checker<'_>,
    raw: &Option<toml::Spanned<super::raw::RawDomain>>,
) -> Result<Option<super::DomainConfig>, ConfigError> {
    let Some(d) = raw else { return Ok(None) };
    let d = d.get_ref();
    let name = d.name.get_ref().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let ok = name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        });
    if !ok {
        return Err(c.invalid(
            "domain.name",
            d.name.span(),
            format!(
                "{:?} is not a DNS name such as ws.example.com (no wildcard)",
                d.name.get_ref()
            ),
        ));
    }
    let arn = d.certificate_arn.get_ref();
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if !(parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "acm"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[5].starts_with("certificate/"))
    {
        return Err(c.invalid(
            "domain.certificate_arn",
            d.certificate_arn.span(),
            format!("{arn:?} is not an ACM certificate's ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"),
        ));
    }
    let hosted_zone_id = match &d.hosted_zone_id {
        None => None,
        Some(z) => {
            let id = z.get_ref().trim_start_matches("/hostedzone/");
            if id.is_empty() || id.len() > 32 || !id.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                return Err(c.invalid(
                    "domain.hosted_zone_id",
                    z.span(),
                    format!(
                        "{:?} is not a Route 53 hosted zone id (e.g. Z0123456789ABCDEFGHIJ)",
                        z.get_ref()
                    ),
                ));
            }
            Some(id.to_owned())
        }
    };
    Ok(Some(super::DomainConfig {
        name,
        certificate_arn: arn.clone(),
        hosted_zone_id,
    }))
}

pub(super) fn check_dashboard(d: &RawDashboard) -> DashboardConfig {
    DashboardConfig {
        enabled: d.enabled.unwrap_or(DashboardConfig::default().enabled),
    }
}
