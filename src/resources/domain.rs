//! The API's custom domain (`[domain]`): the API Gateway domain name (regional, TLS 1.2, with
//! the ACM certificate), its API mapping to this API and stage at the domain's root, and, when
//! a Route 53 hosted zone is given, the alias record pointing the name at the domain's regional
//! target. The certificate and the zone are the user's: wsctl reads them, never changes them.

use std::collections::BTreeMap;

use anyhow::Result;
use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
use aws_sdk_route53::types::{
    AliasTarget, Change as DnsChange, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use serde::Serialize;

use super::{send_unrepeated, Action, AwsContext, Change, KNOWN_AFTER_APPLY};
use crate::aws::Clients;
use crate::config::DomainConfig;

const ENDPOINT: &str = "REGIONAL";
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
        Err(e) => return Err(e).aws(format!("GetDomainName {name}")),
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
        Err(e) => Err(e).aws(format!("DescribeCertificate {arn}")),
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

pub fn diff_domain(o: Option<&Observed>, d: &DomainConfig) -> Action {
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
            if diff_domain(Some(o), d).is_change() {
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
            anyhow::bail!("API Gateway did not report {name}'s regional target: the alias record cannot be written");
        };
        if obs.record.as_ref().and_then(|r| r.target.as_deref()) != Some(t.as_str()) {
            upsert_record(c, zone, name, t, tz).await?;
        }
    }
    Ok(target)
}

async fn upsert_record(
    c: &Clients,
    zone: &str,
    name: &str,
    target: &str,
    target_zone: &str,
) -> Result<()> {
    let record = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id(target_zone)
                .dns_name(target)
                .evaluate_target_health(false)
                .build()?,
        )
        .build()?;
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .comment("wsctl: the WebSocket API's custom domain")
                .changes(
                    DnsChange::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(record)
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await
        .aws(format!("ChangeResourceRecordSets {zone} UPSERT {name}"))?;
    Ok(())
}

/// Deletes the alias record (only when it still points at `target`), then the domain name
/// with its mappings. Already gone is success. The certificate and the zone stay.
pub async fn delete(c: &Clients, d: &DomainConfig, obs: &DomainObs) -> Result<()> {
    if let (Some(zone), Some(o), Some(r)) = (&d.hosted_zone_id, &obs.domain, &obs.record) {
        if let (Some(t), Some(tz)) = (&o.target, &r.target_zone) {
            if r.target.as_deref() == Some(t.as_str()) {
                let record = ResourceRecordSet::builder()
                    .name(&d.name)
                    .r#type(RrType::A)
                    .alias_target(
                        AliasTarget::builder()
                            .hosted_zone_id(tz)
                            .dns_name(t)
                            .evaluate_target_health(false)
                            .build()?,
                    )
                    .build()?;
                let sent = c
                    .route53
                    .change_resource_record_sets()
                    .hosted_zone_id(zone)
                    .change_batch(
                        ChangeBatch::builder()
                            .changes(
                                DnsChange::builder()
                                    .action(ChangeAction::Delete)
                                    .resource_record_set(record)
                                    .build()?,
                            )
                            .build()?,
                    )
                    .send()
                    .await;
                match sent {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_invalid_change_batch()) => {}
                    Err(e) => {
                        return Err(e)
                            .aws(format!("ChangeResourceRecordSets {zone} DELETE {}", d.name))
                    }
                }
            }
        }
    }
    match c
        .apigw
        .delete_domain_name()
        .domain_name(&d.name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).aws(format!("DeleteDomainName {}", d.name)),
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
