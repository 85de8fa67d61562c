"""moto_server, plus what moto 5.2.5 lacks of API Gateway v2 and wsctl needs, as AWS does it.

- UpdateStage: moto answers HTTP 500 (not implemented); `wsctl up` uses it to converge a
  stage's auto-deploy, throttling and logs (e.g. adopting a runbook-made stack).
- UpdateDomainName and UpdateApiMapping: not implemented either (a custom domain's certificate
  changed, a mapping moved to another API or stage).
- GetAuthorizers and GetRouteResponses: the lists (moto answers a single authorizer or route
  response by id only); `wsctl up` reads the `$connect` authorizer and two-way routes'
  route responses with them.
- A domain name's configuration as AWS completes it: its regional target
  (`apiGatewayDomainName`, `d-<id>.execute-api.<region>.amazonaws.com`), the target's hosted
  zone (`hostedZoneId`) and `domainNameStatus`; moto returns only what it was given.

This adds them to moto's responses, then runs moto's own server entry point, so
`python moto_server.py -H 127.0.0.1 -p PORT` behaves like `moto_server` otherwise.
"""
import json
import sys
from datetime import datetime
from urllib.parse import unquote

from moto.apigatewayv2.responses import ApiGatewayV2Response


def update_stage(self):
    api_id = self.path.split("/")[-3]
    stage_name = unquote(self.path.split("/")[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    body = json.loads(self.body or "{}")
    if "defaultRouteSettings" in body:
        stage.default_route_settings = {**(stage.default_route_settings or {}), **body["defaultRouteSettings"]}
    fields = {
        "autoDeploy": "auto_deploy",
        "description": "description",
        "routeSettings": "route_settings",
        "stageVariables": "stage_variables",
        "accessLogSettings": "access_log_settings",
        "clientCertificateId": "client_certificate_id",
    }
    for key, attr in fields.items():
        if key in body:
            setattr(stage, attr, body[key])
    stage.updated = datetime.now()
    return 200, {}, json.dumps(stage.to_json())


if not hasattr(ApiGatewayV2Response, "update_stage"):
    ApiGatewayV2Response.update_stage = update_stage


# API Gateway's hosted zones of regional endpoints (the alias target's zone), by region.
REGIONAL_ZONES = {"us-east-1": "Z1UJRXOUMOOFQ8", "us-east-2": "ZOJJZC49E0EPZ", "us-west-2": "Z2OJLYMUO9EFXC", "eu-west-1": "ZLY8HYME6SFDD"}


def complete(domain, region):
    import hashlib
    target = "d-" + hashlib.sha256(domain.domain_name.encode()).hexdigest()[:10]
    for config in domain.domain_name_configurations:
        config.setdefault("apiGatewayDomainName", f"{target}.execute-api.{region}.amazonaws.com")
        config.setdefault("hostedZoneId", REGIONAL_ZONES.get(region, "Z1UJRXOUMOOFQ8"))
        config.setdefault("domainNameStatus", "AVAILABLE")
        config.setdefault("endpointType", "REGIONAL")
    return domain


from moto.apigatewayv2.models import ApiGatewayV2Backend  # noqa: E402

_create_domain_name = ApiGatewayV2Backend.create_domain_name


def create_domain_name(self, *args, **kwargs):
    return complete(_create_domain_name(self, *args, **kwargs), self.region_name)


ApiGatewayV2Backend.create_domain_name = create_domain_name


def update_domain_name(self):
    name = unquote(self.path.split("/")[-1])
    domain = self.apigatewayv2_backend.get_domain_name(domain_name=name)
    body = json.loads(self.body or "{}")
    if "domainNameConfigurations" in body:
        domain.domain_name_configurations = body["domainNameConfigurations"]
        complete(domain, self.apigatewayv2_backend.region_name)
    return 200, {}, json.dumps(domain.to_json())


def update_api_mapping(self):
    parts = self.path.split("/")
    name, mapping_id = unquote(parts[-3]), parts[-1]
    mapping = self.apigatewayv2_backend.get_api_mapping(api_mapping_id=mapping_id, domain_name=name)
    body = json.loads(self.body or "{}")
    mapping.api_id = body.get("apiId", mapping.api_id)
    mapping.stage = body.get("stage", mapping.stage)
    mapping.api_mapping_key = body.get("apiMappingKey", mapping.api_mapping_key)
    return 200, {}, json.dumps(mapping.to_json())


if not hasattr(ApiGatewayV2Response, "update_domain_name"):
    ApiGatewayV2Response.update_domain_name = update_domain_name
if not hasattr(ApiGatewayV2Response, "update_api_mapping"):
    ApiGatewayV2Response.update_api_mapping = update_api_mapping

def get_authorizers(self):
    api_id = self.path.split("/")[-2]
    api = self.apigatewayv2_backend.get_api(api_id)
    return 200, {}, json.dumps({"items": [a.to_json() for a in api.authorizers.values()]})


def get_route_responses(self):
    parts = self.path.split("/")
    api_id, route_id = parts[-4], parts[-2]
    route = self.apigatewayv2_backend.get_route(api_id, route_id)
    return 200, {}, json.dumps({"items": [r.to_json() for r in route.route_responses.values()]})


if not hasattr(ApiGatewayV2Response, "get_authorizers"):
    ApiGatewayV2Response.get_authorizers = get_authorizers
if not hasattr(ApiGatewayV2Response, "get_route_responses"):
    ApiGatewayV2Response.get_route_responses = get_route_responses

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
