"""moto_server, plus the one API Gateway v2 call moto 5.2.5 lacks and wsctl needs.

moto answers UpdateStage with HTTP 500 (not implemented); AWS implements it, and `wsctl up`
uses it to converge a stage's auto-deploy and throttling (e.g. adopting a runbook-made stack).
This adds it to moto's API Gateway v2 responses, then runs moto's own server entry point, so
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

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
