//! The SSM parameter holding the HS256 JWT secret (`[auth] secret_parameter`). wsctl never
//! creates, reads the value of, or deletes it: the user owns the secret. `observe` reads its
//! metadata (DescribeParameters returns no value), and `problem` says why the function could
//! not use it.

use anyhow::Result;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use serde::Serialize;

use super::AwsContext;
use crate::aws::Clients;
use crate::config::{AuthConfig, AuthKeys};

/// The KMS key SSM uses for SecureStrings when none is named.
pub const DEFAULT_KEY: &str = "alias/aws/ssm";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Observed {
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    pub key_id: Option<String>,
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(name)
        .build()?;
    let out = c
        .ssm
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .aws(format!("DescribeParameters {name}"))?;
    Ok(out
        .parameters()
        .iter()
        .find(|p| p.name() == Some(name))
        .map(|p| Observed {
            name: name.to_owned(),
            kind: p
                .r#type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            key_id: p.key_id().map(str::to_owned),
        }))
}

/// For the parameter `[auth]` names, if it names one: its name, and why the function could
/// not use it (None when it can). Reads metadata only.
pub async fn check(
    c: &Clients,
    auth: Option<&AuthConfig>,
) -> Result<Option<(String, Option<String>)>> {
    let Some((name, key)) = configured(auth) else {
        return Ok(None);
    };
    let found = observe(c, name).await?;
    Ok(Some((name.to_owned(), problem(name, found.as_ref(), key))))
}

/// The parameter `[auth]` names, if it names one.
fn configured(auth: Option<&AuthConfig>) -> Option<(&str, Option<&str>)> {
    match auth {
        Some(AuthConfig {
            keys:
                AuthKeys::SsmSecret {
                    parameter,
                    kms_key_arn,
                },
            ..
        }) => Some((parameter.as_str(), kms_key_arn.as_deref())),
        _ => None,
    }
}

/// Why the function could not read the secret, or None when it can.
pub fn problem(
    name: &str,
    observed: Option<&Observed>,
    kms_key_arn: Option<&str>,
) -> Option<String> {
    let Some(p) = observed else {
        return Some(format!(
            "SSM parameter {name} does not exist; create it with \
             `aws ssm put-parameter --name {name} --type SecureString --value <secret>`"
        ));
    };
    if p.kind != ParameterType::SecureString.as_str() {
        return Some(format!(
            "SSM parameter {name} is a {}, not a SecureString: the JWT secret must be stored encrypted",
            p.kind
        ));
    }
    let key = p.key_id.as_deref().unwrap_or(DEFAULT_KEY);
    if key != DEFAULT_KEY && kms_key_arn.is_none() {
        return Some(format!(
            "SSM parameter {name} is encrypted with KMS key {key}, not {DEFAULT_KEY}: set \
             [auth] secret_kms_key_arn to that key's ARN so the function may decrypt it"
        ));
    }
    None
}
