//! Validation of the observability keys: API Gateway's logs of the stage (`[api] access_log`,
//! `access_log_format`, `execution_log_level`, `log_retention_days`,
//! `manage_account_log_role`) and the `[dashboard]` section.

use super::checker::Checker;
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

pub(super) fn check_dashboard(d: &RawDashboard) -> DashboardConfig {
    DashboardConfig {
        enabled: d.enabled.unwrap_or(DashboardConfig::default().enabled),
    }
}
