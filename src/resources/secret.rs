//! The SSM parameter holding the HS256 JWT secret (`[auth] secret_parameter`). wsctl never
//! creates, reads the value of, or deletes it: the user owns the secret. `observe` reads its
//! metadata (DescribeParameters returns no value), and `problem` says why the function could
//! not use it.

use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    check, ready, Check, Ctx, DownItem, Ids, Observation, Plan, PlanItem, Resource, Teardown,
};
use crate::aws::{AwsContext, Clients};
use crate::config::{AuthConfig, AuthKeys};
use crate::error::{Error, Result};

/// The HS256 secret's parameter: read, never written (the user owns it). `up` refuses to
/// write anything when the function could not read it; `status` checks it.
pub struct JwtSecret;

impl Resource for JwtSecret {
    /// The parameter `[auth]` names, and its customer-managed key if any.
    type Desired = Option<(String, Option<String>)>;
    /// Its name, and why the function could not use it (None when it can).
    type Observed = Option<(String, Option<String>)>;

    fn desired(cx: &Ctx) -> Self::Desired {
        configured(cx.stack.config.auth.as_ref())
            .map(|(name, key)| (name.to_owned(), key.map(str::to_owned)))
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(check_parameter(
            &cx.stack.clients,
            cx.stack.config.auth.as_ref(),
        ))
    }

    /// wsctl does not manage the parameter: no plan item.
    fn diff(_observed: &Self::Observed, _desired: &Self::Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![])
    }

    /// A secret the function could not read would fail every `$connect`.
    fn refuse(_cx: &Ctx, observed: &Self::Observed) -> Option<String> {
        let (_, problem) = observed.as_ref()?;
        problem
            .as_ref()
            .map(|p| format!("[auth] secret_parameter: {p}"))
    }

    fn apply<'a>(
        _cx: &'a Ctx,
        _observed: &'a Self::Observed,
        _desired: &'a Self::Desired,
        _plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async { Ok(Ids::default()) })
    }

    /// The secret is the user's: `down` never deletes it.
    fn teardown(_cx: &Ctx, _obs: &Observation, _adopt: bool) -> Teardown {
        Teardown::default()
    }

    fn delete<'a>(
        _cx: &'a Ctx,
        _obs: &'a Observation,
        _items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// `jwt_secret_usable`.
    fn checks<'a>(_cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        ready(
            obs.get::<JwtSecret>()
                .iter()
                .map(|(name, problem)| {
                    check(
                        "jwt_secret_usable",
                        problem.is_none(),
                        problem.clone().unwrap_or_else(|| {
                            format!("SSM parameter {name} is a SecureString the function may read")
                        }),
                    )
                })
                .collect(),
        )
    }
}

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
        .build()
        .map_err(|e| Error::Failed(format!("internal: building an SSM request: {e}")))?;
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
pub async fn check_parameter(
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
