//! `[domain]`: the API's custom domain name, its certificate and hosted zone.

use super::checker::Checker;
use super::ConfigError;

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
