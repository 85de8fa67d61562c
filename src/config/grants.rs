//! `[[grant]]`: the IAM roles outside the stack that may broadcast or manage connections.

use super::checker::Checker;
use super::ConfigError;

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
