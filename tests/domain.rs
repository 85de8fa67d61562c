//! `[domain]`: a custom domain name for the API, against moto (API Gateway v2 domain names and
//! mappings, ACM, Route 53) through the recording proxy. The URLs use the domain; the alias
//! record targets the domain's regional name; `status` checks the certificate, the mapping and
//! the record; `down` removes what `up` made and leaves the certificate and the zone.

use support::project;

use std::process::Command;

use project::Project;
use serde_json::Value;

/// A certificate for `name` imported into moto's ACM; its ARN.
async fn certificate(p: &Project, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            &format!("/CN={name}"),
        ])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .current_dir(dir.path())
        .output()
        .expect("openssl (Debian: apt-get install openssl) makes the test's certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    aws_sdk_acm::Client::new(&p.sdk().await)
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(read("cert.pem")))
        .private_key(aws_sdk_acm::primitives::Blob::new(read("key.pem")))
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap()
}

async fn zone(p: &Project, name: &str) -> String {
    let out = aws_sdk_route53::Client::new(&p.sdk().await)
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("wsctl-test-{name}"))
        .send()
        .await
        .unwrap();
    out.hosted_zone
        .unwrap()
        .id
        .trim_start_matches("/hostedzone/")
        .to_owned()
}

/// The A record of `name` in `zone`: its alias target, when it is one.
async fn alias(p: &Project, zone: &str, name: &str) -> Option<String> {
    let out = aws_sdk_route53::Client::new(&p.sdk().await)
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .find(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == "A")
        .and_then(|r| {
            r.alias_target()
                .map(|a| a.dns_name().trim_end_matches('.').to_owned())
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_domain_is_created_mapped_and_aliased_then_removed() {
    let p = Project::new("dom");
    let cert = certificate(&p, "ws.example.com").await;
    let zone_id = zone(&p, "example.com").await;
    p.write_config(&format!(
        "project = \"dom\"\n[domain]\nname = \"ws.example.com\"\ncertificate_arn = \"{cert}\"\nhosted_zone_id = \"{zone_id}\"\n"
    ));

    let out = p.up(&["-o", "json"]);
    let report = out.json();
    let api_id = report["ids"]["api_id"].as_str().unwrap().to_owned();
    assert_eq!(report["urls"]["websocket"], "wss://ws.example.com");
    assert_eq!(
        report["urls"]["callback"],
        "https://ws.example.com/@connections"
    );
    assert!(
        report["urls"].get("dns_target").is_none(),
        "the zone is managed: {report}"
    );

    // As API Gateway stores it: regional, TLS 1.2, this certificate; mapped at its root.
    let sdk = p.sdk().await;
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let domain = apigw
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap();
    let config = &domain.domain_name_configurations()[0];
    assert_eq!(config.certificate_arn(), Some(cert.as_str()));
    assert_eq!(config.endpoint_type().map(|e| e.as_str()), Some("REGIONAL"));
    assert_eq!(
        config.security_policy().map(|e| e.as_str()),
        Some("TLS_1_2")
    );
    let target = config.api_gateway_domain_name().unwrap().to_owned();
    let mappings = apigw
        .get_api_mappings()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(mappings.items().len(), 1);
    let m = &mappings.items()[0];
    assert_eq!(
        (m.api_id(), m.stage(), m.api_mapping_key().unwrap_or("")),
        (Some(api_id.as_str()), Some("prod"), "")
    );
    assert_eq!(
        alias(&p, &zone_id, "ws.example.com").await.as_deref(),
        Some(target.as_str())
    );

    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    for line in [
        format!("ok   certificate_covers_domain    {cert} is ISSUED and covers ws.example.com"),
        format!("ok   domain_maps_to_stage         ws.example.com maps to {api_id}/prod"),
        format!(
            "ok   dns_targets_domain           ws.example.com in {zone_id} is an alias of {target}"
        ),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{out:?}");
    }
    assert!(
        out.stdout.contains("WebSocket URL: wss://ws.example.com"),
        "{out:?}"
    );

    // A second up writes nothing.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(
        p.proxy.writes().iter().all(|c| c.on_lock_table()),
        "{:#?}",
        p.proxy.writes()
    );

    // The mapping moved behind wsctl's back: status says so, up puts it back.
    apigw
        .update_api_mapping()
        .domain_name("ws.example.com")
        .api_mapping_id(m.api_mapping_id().unwrap())
        .api_id(&api_id)
        .stage("other")
        .send()
        .await
        .unwrap();
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "FAIL domain_maps_to_stage         ws.example.com maps to {api_id}/other"
        )),
        "{out:?}"
    );
    p.up(&[]);
    assert_eq!(p.wsctl(&["status"]).code, 0);

    // down: the domain (with its mapping) and the record go; the certificate and zone stay.
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(apigw
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .is_err());
    assert_eq!(alias(&p, &zone_id, "ws.example.com").await, None);
    let acm = aws_sdk_acm::Client::new(&sdk);
    assert!(acm
        .describe_certificate()
        .certificate_arn(&cert)
        .send()
        .await
        .is_ok());
    let r53 = aws_sdk_route53::Client::new(&sdk);
    assert!(r53.get_hosted_zone().id(&zone_id).send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_zone_the_target_is_printed_and_a_wrong_certificate_is_refused_first() {
    let p = Project::new("dom2");
    let wrong = certificate(&p, "api.other.com").await;
    p.write_config(&format!(
        "project = \"dom2\"\n[domain]\nname = \"ws.example.com\"\ncertificate_arn = \"{wrong}\"\n"
    ));
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("covers api.other.com, not ws.example.com"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Nothing was changed"), "{out:?}");
    let writes: Vec<String> = p
        .proxy
        .writes()
        .iter()
        .filter(|c| !c.on_lock_table())
        .map(|c| c.to_string())
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    let cert = certificate(&p, "*.example.com").await;
    p.write_config(&format!(
        "project = \"dom2\"\n[domain]\nname = \"ws.example.com\"\ncertificate_arn = \"{cert}\"\n"
    ));
    let out = p.up(&[]);
    let target = aws_sdk_apigatewayv2::Client::new(&p.sdk().await)
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap()
        .domain_name_configurations()[0]
        .api_gateway_domain_name()
        .unwrap()
        .to_owned();
    assert!(
        out.stdout.contains(&format!(
            "DNS:           point a CNAME for the domain at {target}"
        )),
        "{out:?}"
    );
    let json: Value = p.up(&["-o", "json"]).json();
    assert_eq!(json["urls"]["dns_target"], target.as_str());

    // [domain] removed from the file: the next up finds the stack's domain by its tags and
    // deletes it, as it does an alarm turned off.
    p.write_config("project = \"dom2\"\n");
    let json: Value = p.up(&["-o", "json"]).json();
    let gone: Vec<&Value> = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["resource"] == "domain")
        .collect();
    assert_eq!(gone.len(), 1, "{json}");
    assert_eq!(gone[0]["action"], "delete");
    assert_eq!(gone[0]["name"], "ws.example.com (no longer in the config)");
    let apigw = aws_sdk_apigatewayv2::Client::new(&p.sdk().await);
    assert!(apigw
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .is_err());
    assert_eq!(p.wsctl(&["down", "--yes"]).code, 0);
}

#[test]
fn bad_domain_keys_are_refused() {
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
    let cases = [
        (format!("name = \"*.example.com\"\ncertificate_arn = \"{arn}\"\n"), "domain.name"),
        (format!("name = \"localhost\"\ncertificate_arn = \"{arn}\"\n"), "domain.name"),
        ("name = \"ws.example.com\"\ncertificate_arn = \"arn:aws:iam::123456789012:role/x\"\n".to_owned(), "domain.certificate_arn"),
        (format!("name = \"ws.example.com\"\ncertificate_arn = \"{arn}\"\nhosted_zone_id = \"not a zone\"\n"), "domain.hosted_zone_id"),
        ("name = \"ws.example.com\"\n".to_owned(), "certificate_arn"),
    ];
    for (domain, key) in cases {
        let stderr = project::refused_config(&format!("project = \"x\"\n[domain]\n{domain}"));
        assert!(stderr.contains(key), "{domain}: {stderr}");
    }
}
