#!/usr/bin/env bash
# The runbook's Steps 1, 3 and 4 (docs/runbook.md), command for command with
# the aws CLI, minus its `sleep 10`. Used by the adoption test (a runbook-made stack that
# `wsctl up` must converge) and by benches/up.sh (the baseline wsctl is timed against).
#
#   PROJECT_NAME=demo AWS_ACCOUNT_ID=123456789012 benches/runbook-steps.sh
#
# Needs the aws CLI (AWS_CLI overrides its path), AWS_ENDPOINT_URL for an emulator, and jq-free
# shell only (the runbook's `jq -r` calls are done with the CLI's own --query).
set -euo pipefail
: "${PROJECT_NAME:?set PROJECT_NAME}"
: "${AWS_ACCOUNT_ID:?set AWS_ACCOUNT_ID}"
AWS=${AWS_CLI:-aws}
REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$REGION}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Step 1: DynamoDB table with TTL
$AWS dynamodb create-table \
    --table-name ${PROJECT_NAME}_ws_connections \
    --attribute-definitions AttributeName=connection_id,AttributeType=S \
    --key-schema AttributeName=connection_id,KeyType=HASH \
    --billing-mode PAY_PER_REQUEST \
    --region $REGION \
    --tags Key=Project,Value=${PROJECT_NAME} Key=Component,Value=WebSocket >/dev/null
$AWS dynamodb update-time-to-live \
    --table-name ${PROJECT_NAME}_ws_connections \
    --time-to-live-specification "Enabled=true,AttributeName=ttl" \
    --region $REGION >/dev/null

# Step 3: package, role, policies, function
printf 'def lambda_handler(event, context):\n    return {"statusCode": 200}\n' > "$work/lambda_function.py"
echo 'boto3>=1.34.0' > "$work/requirements.txt"
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w'); [z.write(f, f.rsplit('/',1)[-1]) for f in sys.argv[2:]]" \
    "$work/lambda.zip" "$work/lambda_function.py" "$work/requirements.txt"
cat > "$work/lambda-trust-policy.json" << 'JSON'
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"
  }]
}
JSON
$AWS iam create-role \
    --role-name ${PROJECT_NAME}-websocket-lambda-role \
    --assume-role-policy-document file://$work/lambda-trust-policy.json >/dev/null
$AWS iam attach-role-policy \
    --role-name ${PROJECT_NAME}-websocket-lambda-role \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
$AWS iam attach-role-policy \
    --role-name ${PROJECT_NAME}-websocket-lambda-role \
    --policy-arn arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess
cat > "$work/apigw-policy.json" << 'JSON'
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": ["execute-api:ManageConnections", "execute-api:Invoke"],
    "Resource": "arn:aws:execute-api:*:*:*/*"
  }]
}
JSON
$AWS iam put-role-policy \
    --role-name ${PROJECT_NAME}-websocket-lambda-role \
    --policy-name ApiGatewayManagement \
    --policy-document file://$work/apigw-policy.json
# (the runbook's `sleep 10` for IAM propagation is left out)
$AWS lambda create-function \
    --function-name ${PROJECT_NAME}-websocket-handler \
    --runtime python3.11 \
    --role arn:aws:iam::${AWS_ACCOUNT_ID}:role/${PROJECT_NAME}-websocket-lambda-role \
    --handler lambda_function.lambda_handler \
    --zip-file fileb://$work/lambda.zip \
    --timeout 30 \
    --memory-size 256 \
    --region $REGION \
    --environment "Variables={REGION_NAME=$REGION,CONNECTIONS_TABLE=${PROJECT_NAME}_ws_connections,WEBSOCKET_STAGE=prod}" >/dev/null

# Step 4: WebSocket API, integration, routes, stage, permission
API_ID=$($AWS apigatewayv2 create-api \
    --name ${PROJECT_NAME}-websocket \
    --protocol-type WEBSOCKET \
    --route-selection-expression '$request.body.action' \
    --region $REGION \
    --query ApiId --output text)
INTEGRATION_ID=$($AWS apigatewayv2 create-integration \
    --api-id $API_ID \
    --integration-type AWS_PROXY \
    --integration-uri arn:aws:lambda:$REGION:${AWS_ACCOUNT_ID}:function:${PROJECT_NAME}-websocket-handler \
    --region $REGION \
    --query IntegrationId --output text)
for key in '$connect' '$disconnect' '$default'; do
    $AWS apigatewayv2 create-route \
        --api-id $API_ID \
        --route-key "$key" \
        --target "integrations/$INTEGRATION_ID" \
        --region $REGION >/dev/null
done
$AWS apigatewayv2 create-stage \
    --api-id $API_ID \
    --stage-name prod \
    --auto-deploy \
    --region $REGION >/dev/null
$AWS lambda add-permission \
    --function-name ${PROJECT_NAME}-websocket-handler \
    --statement-id apigateway-websocket-invoke \
    --action lambda:InvokeFunction \
    --principal apigateway.amazonaws.com \
    --source-arn "arn:aws:execute-api:$REGION:${AWS_ACCOUNT_ID}:${API_ID}/*" \
    --region $REGION >/dev/null
$AWS lambda update-function-configuration \
    --function-name ${PROJECT_NAME}-websocket-handler \
    --environment "Variables={REGION_NAME=$REGION,CONNECTIONS_TABLE=${PROJECT_NAME}_ws_connections,WEBSOCKET_API_ID=${API_ID},WEBSOCKET_STAGE=prod}" \
    --region $REGION >/dev/null
echo "$API_ID"
