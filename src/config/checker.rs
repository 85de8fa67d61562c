//! The toolkit every section's checks use: a [`Checker`] that turns a refused value into a
//! [`ConfigError::Invalid`] naming the file, the line and the key, and the shared value checks
//! (ranges, ARNs, regions).

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::ConfigError;

pub(super) struct Checker<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Checker<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(span),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The first of `keys` that is set (with its span), refused with `why`.
    pub(super) fn no_stray<const N: usize>(
        &self,
        keys: [(&str, Option<Range<usize>>); N],
        why: &str,
    ) -> Result<(), ConfigError> {
        match keys.into_iter().find_map(|(k, span)| Some((k, span?))) {
            Some((key, span)) => Err(self.invalid(key, span, why)),
            None => Ok(()),
        }
    }

    pub(super) fn int_in(
        &self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
        unit: &str,
    ) -> Result<i64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.invalid(
                key,
                v.span(),
                format!(
                    "{} is out of range: expected {} to {} {unit}",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

pub(super) fn valid_region(region: &str) -> bool {
    // e.g. us-east-1, eu-central-2, ap-southeast-3, us-gov-west-1, cn-north-1
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Where an optional key was written, if it was.
pub(super) fn span_of<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

/// An `https://` URL with a host, or an `http://` one to this machine (`localhost`,
/// `127.0.0.1`, `[::1]`: a local issuer or backend for `wsctl dev`); no whitespace.
pub(super) fn web_url(url: &str) -> bool {
    let host = url.strip_prefix("https://").or_else(|| {
        url.strip_prefix("http://").filter(|h| {
            ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| {
                h.strip_prefix(l)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            })
        })
    });
    !host.is_none_or(|h| h.is_empty() || h.starts_with('/')) && !url.contains(char::is_whitespace)
}

/// An SSM parameter name: letters, digits and `_.-/`, at most 1011 characters, not under
/// `aws` or `ssm` (reserved).
pub(super) fn ssm_parameter_name(name: &str) -> bool {
    let reserved = |prefix: &str| {
        name.to_ascii_lowercase()
            .trim_start_matches('/')
            .starts_with(prefix)
    };
    !name.is_empty()
        && name.len() <= 1011
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_.-/".contains(ch))
        && !reserved("aws")
        && !reserved("ssm")
}

pub(super) fn nonempty(v: &Option<Spanned<String>>) -> Option<&Spanned<String>> {
    v.as_ref().filter(|s| !s.get_ref().trim().is_empty())
}

/// An ARN of `service` (`arn:{partition}:{service}:{region}:{account}:{resource}`).
pub(super) fn valid_arn(arn: &str, service: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && valid_region(parts[3])
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
        && !parts[5].contains(|c: char| c.is_whitespace() || c == '*')
}
