//! The API's custom domain (`[domain]`): the API Gateway domain name (regional, TLS 1.2, with
//! the ACM certificate), its API mapping to this API and stage at the domain's root, and, when
//! a Route 53 hosted zone is given, the alias record pointing the name at the domain's regional
//! target. The certificate and the zone are the user's: wsctl reads them, never changes them.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
use aws_sdk_route53::types::{
    AliasTarget, Change as DnsChange, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    check, down_item, ready, tag_changes, tags_to_set, Action, Change, Check, Ctx, DownItem, Ids,
    Kind, Observation, Plan, PlanItem, Resource, Teardown, KNOWN_AFTER_APPLY,
};
use crate::aws::{aws_error, send_unrepeated, AwsContext, Clients};
use crate::config::DomainConfig;
use crate::error::{Error, Result};
use crate::naming::Names;

const ENDPOINT: &str = "REGIONAL";
/// The tag on a domain name recording the hosted zone of the alias record wsctl keeps, so that
/// the record can be found and removed with the domain after the config stopped naming it.
pub const ZONE_TAG: &str = "wsctl:hosted-zone";
const TLS: &str = "TLS_1_2";

#[derive(Debug, Clone, Serialize)]
pub struct Mapping {
    pub id: String,
    pub api_id: String,
    pub stage: String,
    /// The path under the domain; empty for the root.
    pub key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: Option<String>,
    pub certificate_arn: Option<String>,
    pub endpoint_type: Option<String>,
    pub security_policy: Option<String>,
    /// The regional target to point DNS at (`d-....execute-api.REGION.amazonaws.com`).
    pub target: Option<String>,
    /// The target's hosted zone (for an alias record).
    pub target_zone: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub mappings: Vec<Mapping>,
}

/// The ACM certificate, as ACM describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub arn: String,
    pub status: String,
    /// The names it covers (its domain and subject alternative names).
    pub names: Vec<String>,
}

/// The alias record of the name in the hosted zone.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub target: Option<String>,
    pub target_zone: Option<String>,
}

/// Everything about the domain wsctl reads.
#[derive(Debug, Clone, Serialize)]
pub struct DomainObs {
    pub domain: Option<Observed>,
    pub certificate: Option<Certificate>,
    /// None when no zone is configured or the record does not exist.
    pub record: Option<Record>,
}

/// The configured domain (with what the engine knows of the API), and the stack's domains the
/// config no longer names.
#[derive(Debug, Clone)]
pub struct Desired {
    pub domain: Option<DomainConfig>,
    /// The stack's tags, which also find its stray domains.
    pub stack_tags: BTreeMap<String, String>,
    pub api_id: Option<String>,
    pub stage: String,
}

/// Everything wsctl reads about the stack's domains.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DomainsObs {
    /// The configured domain (`[domain]` only).
    pub configured: Option<DomainObs>,
    /// Domain names of this stack (by their tags) that the config does not name.
    pub strays: Vec<Observed>,
}

/// `[domain]`: the custom domain name, its mapping to the stage and its alias record; and
/// the stack's domains the config stopped naming.
pub struct Domains;

impl Resource for Domains {
    type Desired = Desired;
    type Observed = DomainsObs;

    fn desired(cx: &Ctx) -> Desired {
        Desired {
            domain: cx.stack.config.domain.clone(),
            stack_tags: cx.stack.tags.clone(),
            api_id: cx.ids.api_id.clone(),
            stage: cx.stack.names.stage.clone(),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let domain = cx.stack.config.domain.as_ref();
            let (configured, strays) = tokio::try_join!(
                async {
                    match domain {
                        Some(d) => observe(c, d).await.map(Some),
                        None => Ok(None),
                    }
                },
                strays(c, &cx.stack.tags, domain.map(|d| d.name.as_str())),
            )?;
            Ok(DomainsObs { configured, strays })
        })
    }

    fn ids(observed: &Self::Observed, _desired: &Desired) -> Ids {
        Ids {
            dns_target: observed
                .configured
                .as_ref()
                .and_then(|o| o.domain.as_ref())
                .and_then(|d| d.target.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        let mut items = Vec::new();
        if let (Some(d), Some(o)) = (&desired.domain, &observed.configured) {
            items.push(PlanItem::new(
                Kind::Domain(d.name.clone()),
                &d.name,
                diff_domain(o.domain.as_ref(), d, &desired.stack_tags),
            ));
            items.push(PlanItem::new(
                Kind::ApiMapping,
                format!("{} -> {}", d.name, desired.stage),
                diff_mapping(o.domain.as_ref(), desired.api_id.as_deref(), &desired.stage),
            ));
            if let Some(zone) = &d.hosted_zone_id {
                items.push(PlanItem::new(
                    Kind::DnsRecord,
                    format!("{} A alias in {zone}", d.name),
                    diff_record(o),
                ));
            }
        }
        for o in &observed.strays {
            items.push(PlanItem::new(
                Kind::Domain(o.name.clone()),
                format!("{} (no longer in the config)", o.name),
                Action::Delete,
            ));
        }
        Ok(items)
    }

    /// A certificate that cannot serve the domain would fail CreateDomainName half-way.
    fn refuse(cx: &Ctx, observed: &Self::Observed) -> Option<String> {
        let (Some(d), Some(o)) = (&cx.stack.config.domain, &observed.configured) else {
            return None;
        };
        certificate_problem(o, d, &cx.stack.names.region)
            .map(|problem| format!("[domain] certificate_arn: {problem}. Nothing was changed."))
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let mut ids = Self::ids(observed, desired);
            if let (Some(d), Some(o)) = (&desired.domain, &observed.configured) {
                let changed = plan.action(&Kind::Domain(d.name.clone())).is_change()
                    || plan.action(&Kind::ApiMapping).is_change()
                    || plan.action(&Kind::DnsRecord).is_change();
                if changed {
                    let api_id = desired.api_id.as_deref().expect("the API exists by now");
                    ids.dns_target =
                        apply(c, o, d, api_id, &desired.stage, &desired.stack_tags).await?;
                }
            }
            for o in &observed.strays {
                if plan.action(&Kind::Domain(o.name.clone())) == &Action::Delete {
                    delete_stray(c, o).await?;
                }
            }
            Ok(ids)
        })
    }

    /// The domain names (their mappings go with them; their alias records too, when the zone
    /// is wsctl's to write); never the certificate or the zone.
    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let observed = obs.get::<Domains>();
        let mut t = Teardown::default();
        if let Some(d) = observed.configured.as_ref().and_then(|o| o.domain.as_ref()) {
            t.consider(
                down_item(Kind::Domain(d.name.clone()), &d.name, &d.name),
                &d.tags,
                adopt,
            );
        }
        for d in &observed.strays {
            t.consider(
                down_item(Kind::Domain(d.name.clone()), &d.name, &d.name),
                &d.tags,
                adopt,
            );
        }
        t
    }

    fn delete<'a>(
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let observed = obs.get::<Domains>();
            for item in items {
                match (&cx.stack.config.domain, &observed.configured) {
                    (Some(d), Some(o)) if d.name == item.id => delete(c, d, o).await?,
                    _ => {
                        if let Some(o) = observed.strays.iter().find(|o| o.name == item.id) {
                            delete_stray(c, o).await?;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// With `[domain]`: the certificate is ISSUED and covers the name, the domain's root maps
    /// to this API and stage, and (in a managed zone) the alias record targets the domain.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let (Some(d), Some(o)) = (&cx.stack.config.domain, &obs.get::<Domains>().configured) else {
            return ready(vec![]);
        };
        let api_id = cx.ids.api_id.as_deref();
        ready(checks(&cx.stack.names, d, o, api_id))
    }
}

fn checks(n: &Names, d: &DomainConfig, o: &DomainObs, api_id: Option<&str>) -> Vec<Check> {
    let mut out = vec![match certificate_problem(o, d, &n.region) {
        None => check(
            "certificate_covers_domain",
            true,
            format!("{} is ISSUED and covers {}", d.certificate_arn, d.name),
        ),
        Some(problem) => check("certificate_covers_domain", false, problem),
    }];
    out.push(match (o.domain.as_ref(), root_mapping(o.domain.as_ref())) {
        (None, _) => check(
            "domain_maps_to_stage",
            false,
            format!("the domain name {} does not exist", d.name),
        ),
        (Some(_), None) => check(
            "domain_maps_to_stage",
            false,
            format!("{} has no mapping at its root", d.name),
        ),
        (Some(_), Some(m)) if Some(m.api_id.as_str()) == api_id && m.stage == n.stage => check(
            "domain_maps_to_stage",
            true,
            format!("{} maps to {}/{}", d.name, m.api_id, m.stage),
        ),
        (Some(_), Some(m)) => check(
            "domain_maps_to_stage",
            false,
            format!(
                "{} maps to {}/{}; expected this API's stage {}",
                d.name, m.api_id, m.stage, n.stage
            ),
        ),
    });
    if let Some(zone) = &d.hosted_zone_id {
        let target = o.domain.as_ref().and_then(|x| x.target.as_deref());
        let record = o.record.as_ref().and_then(|r| r.target.as_deref());
        out.push(match (target, record) {
            (Some(t), Some(r)) if t == r => check(
                "dns_targets_domain",
                true,
                format!("{} in {zone} is an alias of {t}", d.name),
            ),
            (_, None) => check(
                "dns_targets_domain",
                false,
                format!("{zone} has no alias record for {}", d.name),
            ),
            (t, Some(r)) => check(
                "dns_targets_domain",
                false,
                format!(
                    "{} in {zone} points at {r}; expected {}",
                    d.name,
                    t.unwrap_or("the domain's target")
                ),
            ),
        });
    }
    out
}

pub async fn observe(c: &Clients, d: &DomainConfig) -> Result<DomainObs> {
    let (domain, certificate, record) = tokio::try_join!(
        observe_domain(c, &d.name),
        observe_certificate(c, &d.certificate_arn),
        async {
            match &d.hosted_zone_id {
                Some(zone) => observe_record(c, zone, &d.name).await,
                None => Ok(None),
            }
        },
    )?;
    Ok(DomainObs {
        domain,
        certificate,
        record,
    })
}

async fn observe_domain(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let out = match c.apigw.get_domain_name().domain_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error(format!("GetDomainName {name}"), &e).into()),
    };
    let config = out.domain_name_configurations().first();
    let mappings = c
        .apigw
        .get_api_mappings()
        .domain_name(name)
        .send()
        .await
        .aws(format!("GetApiMappings {name}"))?
        .items()
        .iter()
        .map(|m| Mapping {
            id: m.api_mapping_id().unwrap_or_default().to_owned(),
            api_id: m.api_id().unwrap_or_default().to_owned(),
            stage: m.stage().unwrap_or_default().to_owned(),
            key: m.api_mapping_key().unwrap_or_default().to_owned(),
        })
        .collect();
    Ok(Some(Observed {
        name: name.to_owned(),
        arn: out.domain_name_arn().map(str::to_owned),
        certificate_arn: config.and_then(|c| c.certificate_arn().map(str::to_owned)),
        endpoint_type: config.and_then(|c| c.endpoint_type().map(|e| e.as_str().to_owned())),
        security_policy: config.and_then(|c| c.security_policy().map(|s| s.as_str().to_owned())),
        target: config.and_then(|c| c.api_gateway_domain_name().map(str::to_owned)),
        target_zone: config.and_then(|c| c.hosted_zone_id().map(str::to_owned)),
        tags: out
            .tags()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        mappings,
    }))
}

async fn observe_certificate(c: &Clients, arn: &str) -> Result<Option<Certificate>> {
    match c
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out.certificate.map(|cert| {
            let mut names: Vec<String> = cert.subject_alternative_names().to_vec();
            if let Some(d) = cert.domain_name() {
                names.push(d.to_owned());
            }
            names.sort();
            names.dedup();
            Certificate {
                arn: arn.to_owned(),
                status: cert
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                names,
            }
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(format!("DescribeCertificate {arn}"), &e).into()),
    }
}

async fn observe_record(c: &Clients, zone: &str, name: &str) -> Result<Option<Record>> {
    let out = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
        .aws(format!("ListResourceRecordSets {zone} {name}"))?;
    let wanted = format!("{}.", name.trim_end_matches('.'));
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| r.name().eq_ignore_ascii_case(&wanted) && *r.r#type() == RrType::A)
        .map(|r| Record {
            target: r
                .alias_target()
                .map(|a| a.dns_name().trim_end_matches('.').to_owned()),
            target_zone: r.alias_target().map(|a| a.hosted_zone_id().to_owned()),
        }))
}

/// Whether an ACM certificate's name covers `name` (exactly, or as a one-label wildcard).
pub fn covers(cert_name: &str, name: &str) -> bool {
    let (c, n) = (cert_name.to_ascii_lowercase(), name.to_ascii_lowercase());
    match c.strip_prefix("*.") {
        Some(parent) => n.split_once('.').is_some_and(|(_, rest)| rest == parent),
        None => c == n,
    }
}

/// Why the certificate cannot serve the domain, if it cannot.
pub fn certificate_problem(obs: &DomainObs, d: &DomainConfig, region: &str) -> Option<String> {
    let arn = &d.certificate_arn;
    if arn.split(':').nth(3) != Some(region) {
        return Some(format!("certificate {arn} is not in {region}: a regional domain needs a certificate in the stack's region"));
    }
    let Some(cert) = &obs.certificate else {
        return Some(format!("certificate {arn} does not exist"));
    };
    if cert.status != "ISSUED" {
        return Some(format!("certificate {arn} is {}, not ISSUED", cert.status));
    }
    if !cert.names.iter().any(|n| covers(n, &d.name)) {
        return Some(format!(
            "certificate {arn} covers {}, not {}",
            cert.names.join(", "),
            d.name
        ));
    }
    None
}

/// The domain name's tags: the stack's, and the zone of the record wsctl keeps.
pub fn desired_tags(
    d: &DomainConfig,
    stack: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = stack.clone();
    if let Some(zone) = &d.hosted_zone_id {
        tags.insert(ZONE_TAG.into(), zone.clone());
    }
    tags
}

pub fn diff_domain(
    o: Option<&Observed>,
    d: &DomainConfig,
    tags: &BTreeMap<String, String>,
) -> Action {
    let Some(o) = o else { return Action::Create };
    let mut changes = Vec::new();
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    if o.certificate_arn.as_deref() != Some(&d.certificate_arn) {
        changes.push(Change::new(
            "certificate_arn",
            show(&o.certificate_arn),
            &d.certificate_arn,
        ));
    }
    if o.endpoint_type.as_deref() != Some(ENDPOINT) {
        changes.push(Change::new(
            "endpoint_type",
            show(&o.endpoint_type),
            ENDPOINT,
        ));
    }
    if o.security_policy.as_deref() != Some(TLS) {
        changes.push(Change::new(
            "security_policy",
            show(&o.security_policy),
            TLS,
        ));
    }
    changes.extend(tag_changes(&o.tags, &desired_tags(d, tags)));
    Action::from_changes(changes)
}

/// The mapping of the domain's root, which must name this API and stage.
pub fn root_mapping(o: Option<&Observed>) -> Option<&Mapping> {
    o.and_then(|o| o.mappings.iter().find(|m| m.key.is_empty()))
}

pub fn diff_mapping(o: Option<&Observed>, api_id: Option<&str>, stage: &str) -> Action {
    match (root_mapping(o), api_id) {
        (None, _) => Action::Create,
        (Some(m), Some(api)) if m.api_id == api && m.stage == stage => Action::NoChange,
        (Some(m), api) => Action::Update(vec![Change::new(
            "api_and_stage",
            format!("{}/{}", m.api_id, m.stage),
            format!("{}/{stage}", api.unwrap_or(KNOWN_AFTER_APPLY)),
        )]),
    }
}

pub fn diff_record(obs: &DomainObs) -> Action {
    let target = obs.domain.as_ref().and_then(|o| o.target.clone());
    match (&obs.record, target) {
        (None, _) => Action::Create,
        (Some(r), Some(t)) if r.target.as_deref() == Some(&t) => Action::NoChange,
        (Some(r), t) => Action::Update(vec![Change::new(
            "alias_target",
            r.target.clone().unwrap_or_else(|| "(not an alias)".into()),
            t.unwrap_or_else(|| KNOWN_AFTER_APPLY.into()),
        )]),
    }
}

/// Creates or converges the domain name, its root mapping and (with a zone) its alias record.
/// Returns the regional target DNS should point at.
pub async fn apply(
    c: &Clients,
    obs: &DomainObs,
    d: &DomainConfig,
    api_id: &str,
    stage: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<String>> {
    let name = &d.name;
    let tags = desired_tags(d, tags);
    let config = DomainNameConfiguration::builder()
        .certificate_arn(&d.certificate_arn)
        .endpoint_type(EndpointType::Regional)
        .security_policy(SecurityPolicy::Tls12)
        .build();
    let (target, target_zone, mappings) = match &obs.domain {
        None => {
            let out = send_unrepeated(format!("CreateDomainName {name}"), || {
                c.apigw
                    .create_domain_name()
                    .domain_name(name)
                    .domain_name_configurations(config.clone())
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
            })
            .await?;
            let cfg = out.domain_name_configurations().first();
            (
                cfg.and_then(|c| c.api_gateway_domain_name().map(str::to_owned)),
                cfg.and_then(|c| c.hosted_zone_id().map(str::to_owned)),
                Vec::new(),
            )
        }
        Some(o) => {
            let (mut target, mut zone) = (o.target.clone(), o.target_zone.clone());
            let fields = diff_domain(Some(o), d, &tags);
            if fields
                .changes()
                .iter()
                .any(|c| !c.field.starts_with("tags."))
            {
                let out = c
                    .apigw
                    .update_domain_name()
                    .domain_name(name)
                    .domain_name_configurations(config)
                    .send()
                    .await
                    .aws(format!("UpdateDomainName {name}"))?;
                if let Some(cfg) = out.domain_name_configurations().first() {
                    target = cfg.api_gateway_domain_name().map(str::to_owned).or(target);
                    zone = cfg.hosted_zone_id().map(str::to_owned).or(zone);
                }
            }
            let missing = tags_to_set(&o.tags, &tags);
            if let (false, Some(arn)) = (missing.is_empty(), &o.arn) {
                c.apigw
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(missing.into_iter().collect()))
                    .send()
                    .await
                    .aws(format!("TagResource {arn}"))?;
            }
            (target, zone, o.mappings.clone())
        }
    };
    match mappings.iter().find(|m| m.key.is_empty()) {
        None => {
            send_unrepeated(format!("CreateApiMapping {name}"), || {
                c.apigw
                    .create_api_mapping()
                    .domain_name(name)
                    .api_id(api_id)
                    .stage(stage)
                    .send()
            })
            .await?;
        }
        Some(m) if m.api_id != api_id || m.stage != stage => {
            c.apigw
                .update_api_mapping()
                .domain_name(name)
                .api_mapping_id(&m.id)
                .api_id(api_id)
                .stage(stage)
                .send()
                .await
                .aws(format!("UpdateApiMapping {name} {}", m.id))?;
        }
        Some(_) => {}
    }
    if let Some(zone) = &d.hosted_zone_id {
        let (Some(t), Some(tz)) = (&target, &target_zone) else {
            crate::fail!(
                Failed,
                "API Gateway did not report {name}'s regional target: the alias record cannot be written"
            );
        };
        if obs.record.as_ref().and_then(|r| r.target.as_deref()) != Some(t.as_str()) {
            change_record(c, zone, name, (t, tz), ChangeAction::Upsert).await?;
        }
    }
    Ok(target)
}

/// Writes (UPSERT) or removes (DELETE) the alias record `name` -> `target` in `zone`. A
/// DELETE of a record that is not there (or no longer matches) is success.
async fn change_record(
    c: &Clients,
    zone: &str,
    name: &str,
    (target, target_zone): (&str, &str),
    action: ChangeAction,
) -> Result<()> {
    let record = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id(target_zone)
                .dns_name(target)
                .evaluate_target_health(false)
                .build()
                .map_err(build_error)?,
        )
        .build()
        .map_err(build_error)?;
    let what = format!("ChangeResourceRecordSets {zone} {} {name}", action.as_str());
    let deleting = action == ChangeAction::Delete;
    let sent = c
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .comment("wsctl: the WebSocket API's custom domain")
                .changes(
                    DnsChange::builder()
                        .action(action)
                        .resource_record_set(record)
                        .build()
                        .map_err(build_error)?,
                )
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        Err(e)
            if deleting
                && e.as_service_error()
                    .is_some_and(|s| s.is_invalid_change_batch()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error(what, &e).into()),
    }
}

/// A Route 53 request the SDK's builders refused (a required field missing): a bug in wsctl.
fn build_error(e: aws_sdk_route53::error::BuildError) -> Error {
    Error::Failed(format!("internal: building a Route 53 request: {e}"))
}

/// Deletes the alias record (only when it still points at `target`), then the domain name
/// with its mappings. Already gone is success. The certificate and the zone stay.
pub async fn delete(c: &Clients, d: &DomainConfig, obs: &DomainObs) -> Result<()> {
    let zone = d.hosted_zone_id.as_deref().or_else(|| {
        obs.domain
            .as_ref()
            .and_then(|o| o.tags.get(ZONE_TAG).map(String::as_str))
    });
    let record = match (zone, &obs.record) {
        (Some(_), Some(r)) => Some(r.clone()),
        (Some(z), None) => observe_record(c, z, &d.name).await?,
        (None, _) => None,
    };
    delete_named(
        c,
        &d.name,
        zone,
        obs.domain.as_ref().and_then(|o| o.target.as_deref()),
        record.as_ref(),
    )
    .await
}

/// Deletes a domain of this stack that the config no longer names (found by its tags), with
/// the alias record its zone tag says wsctl wrote.
pub async fn delete_stray(c: &Clients, o: &Observed) -> Result<()> {
    let zone = o.tags.get(ZONE_TAG).map(String::as_str);
    let record = match zone {
        Some(z) => observe_record(c, z, &o.name).await?,
        None => None,
    };
    delete_named(c, &o.name, zone, o.target.as_deref(), record.as_ref()).await
}

async fn delete_named(
    c: &Clients,
    name: &str,
    zone: Option<&str>,
    target: Option<&str>,
    record: Option<&Record>,
) -> Result<()> {
    if let (Some(zone), Some(t), Some(r)) = (zone, target, record) {
        if let (Some(rt), Some(tz)) = (&r.target, &r.target_zone) {
            if rt == t {
                change_record(c, zone, name, (t, tz), ChangeAction::Delete).await?;
            }
        }
    }
    match c.apigw.delete_domain_name().domain_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error(format!("DeleteDomainName {name}"), &e).into()),
    }
}

/// The domain names of this stack (`ManagedBy=wsctl` and the stack's `Project`, and its
/// `Environment` or none) other than `except`: ones the config stopped naming.
pub async fn strays(
    c: &Clients,
    tags: &BTreeMap<String, String>,
    except: Option<&str>,
) -> Result<Vec<Observed>> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .apigw
            .get_domain_names()
            .set_next_token(token.clone())
            .send()
            .await
            .aws("GetDomainNames")?;
        for item in out.items() {
            let name = item.domain_name().unwrap_or_default();
            let item_tags: BTreeMap<String, String> = item
                .tags()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let ours = ["ManagedBy", "Project", "Environment"]
                .iter()
                .all(|k| item_tags.get(*k) == tags.get(*k));
            if ours && Some(name) != except {
                let config = item.domain_name_configurations().first();
                found.push(Observed {
                    name: name.to_owned(),
                    arn: item.domain_name_arn().map(str::to_owned),
                    certificate_arn: config.and_then(|c| c.certificate_arn().map(str::to_owned)),
                    endpoint_type: None,
                    security_policy: None,
                    target: config.and_then(|c| c.api_gateway_domain_name().map(str::to_owned)),
                    target_zone: config.and_then(|c| c.hosted_zone_id().map(str::to_owned)),
                    tags: item_tags,
                    mappings: Vec::new(),
                });
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("ws.example.com", "WS.example.com"));
        assert!(covers("*.example.com", "ws.example.com"));
        assert!(!covers("*.example.com", "a.ws.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("api.example.com", "ws.example.com"));
    }
}
