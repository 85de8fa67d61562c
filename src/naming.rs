//! Every AWS name, ARN and tag of a stack, derived from the config in one place.

use std::collections::BTreeMap;

use crate::config::Config;

/// The tag that marks what wsctl manages (and so what `down` may delete).
pub const MANAGED_BY_KEY: &str = "ManagedBy";
pub const MANAGED_BY_VALUE: &str = "wsctl";
/// The Lambda tag recording which handler source the deployed code was built from.
pub const SOURCE_TAG: &str = "wsctl:handler-source";
/// The Lambda permission statement wsctl owns.
pub const PERMISSION_SID: &str = "wsctl-apigateway-invoke";
/// The statement letting API Gateway invoke the function as the `$connect` authorizer.
pub const AUTHORIZER_SID: &str = "wsctl-apigateway-authorizer";
/// AWS's managed logging policy, the one managed policy the role keeps.
pub const BASIC_EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
/// The role API Gateway uses to write logs, when wsctl makes it: one per account (API
/// Gateway's CloudWatch role is an account-and-region setting shared by every API), so its
/// name carries no project and `down` never deletes it.
pub const ACCOUNT_LOG_ROLE: &str = "wsctl-apigateway-cloudwatch-logs";
/// AWS's managed policy that lets API Gateway create log groups and write to them.
pub const PUSH_TO_CLOUDWATCH_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub project: String,
    /// What every name derives from: the project, or `{project}-{env}` in an environment.
    pub stack: String,
    pub region: String,
    pub account: String,
    pub partition: String,
    pub table: String,
    pub role: String,
    pub policy: String,
    pub function: String,
    pub api: String,
    /// The `$connect` authorizer (with `[auth]`).
    pub authorizer: String,
    pub stage: String,
    /// The custom domain (`[domain] name`), when there is one: the URLs use it.
    pub domain: Option<String>,
    pub log_group: String,
    /// API Gateway's access log group of the stage (`[api] access_log`).
    pub access_log_group: String,
    /// The CloudWatch dashboard (`[dashboard]`).
    pub dashboard: String,
    /// The CloudWatch alarm on the function's errors (`[alarm]`).
    pub alarm: String,
    /// The DynamoDB table of the stack's lock (src/lock/remote.rs).
    pub lock_table: String,
    /// Topic subscriptions keyed by topic (`SUBSCRIPTIONS_TABLE`).
    pub subscriptions_table: String,
    /// Broadcasts' status records (`BROADCASTS_TABLE`).
    pub broadcasts_table: String,
    /// Streams' history (`HISTORY_TABLE`, with `[history]`).
    pub history_table: String,
}

impl Names {
    pub fn new(config: &Config, region: &str, account: &str) -> Names {
        // In an environment (`--env`), every name carries it: `{project}-{env}-...` and the
        // tables `{project}_{env}_...`; without one the names are the runbook's.
        let (p, t) = match &config.env {
            Some(env) => (
                format!("{}-{env}", config.project),
                format!("{}_{env}", config.project),
            ),
            None => (config.project.clone(), config.project.clone()),
        };
        let p = &p;
        let function = format!("{p}-websocket-handler");
        Names {
            project: config.project.clone(),
            stack: p.clone(),
            region: region.to_owned(),
            account: account.to_owned(),
            partition: partition(region).to_owned(),
            table: format!("{t}_ws_connections"),
            role: format!("{p}-websocket-lambda-role"),
            policy: format!("{p}-websocket-least-privilege"),
            log_group: format!("/aws/lambda/{function}"),
            function,
            api: format!("{p}-websocket"),
            authorizer: format!("{p}-websocket-authorizer"),
            access_log_group: format!("/aws/apigateway/{p}-websocket"),
            dashboard: format!("{p}-websocket"),
            alarm: format!("{p}-websocket-errors"),
            lock_table: format!("{t}_wsctl_lock"),
            subscriptions_table: format!("{t}_ws_subscriptions"),
            broadcasts_table: format!("{t}_ws_broadcasts"),
            history_table: format!("{t}_ws_history"),
            stage: config.api.stage.clone(),
            domain: config.domain.as_ref().map(|d| d.name.clone()),
        }
    }

    /// An SSM parameter's ARN; `name` as in the config (with or without its leading `/`).
    pub fn ssm_parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:parameter/{}",
            self.partition,
            self.region,
            self.account,
            name.trim_start_matches('/')
        )
    }

    pub fn table_arn(&self) -> String {
        self.dynamodb_table_arn(&self.table)
    }

    /// The ARN of the stack's DynamoDB table `name`.
    pub fn dynamodb_table_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{name}",
            self.partition, self.region, self.account
        )
    }

    /// A log group's ARN as API Gateway's access log destination wants it (no `:*`).
    pub fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{name}",
            self.partition, self.region, self.account
        )
    }

    /// The ARN of wsctl's account-wide role for API Gateway's logs.
    pub fn account_log_role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{ACCOUNT_LOG_ROLE}",
            self.partition, self.account
        )
    }

    /// The dashboard in the CloudWatch console.
    pub fn dashboard_url(&self) -> String {
        let host = match self.partition.as_str() {
            "aws-cn" => format!("{}.console.amazonaws.cn", self.region),
            "aws-us-gov" => "console.amazonaws-us-gov.com".to_owned(),
            _ => format!("{}.console.aws.amazon.com", self.region),
        };
        format!(
            "https://{host}/cloudwatch/home?region={}#dashboards/dashboard/{}",
            self.region, self.dashboard
        )
    }

    pub fn role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, self.account, self.role
        )
    }

    pub fn function_arn(&self) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.function
        )
    }

    /// The URI an AWS_PROXY integration uses to invoke the function.
    pub fn integration_uri(&self) -> String {
        self.lambda_integration_uri(&self.function_arn())
    }

    /// The URI an AWS_PROXY integration (or an authorizer) uses to invoke `function_arn`.
    pub fn lambda_integration_uri(&self, function_arn: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
            self.partition, self.region
        )
    }

    /// A Lambda function's ARN: `function` as given when it is one, else the function of that
    /// name (and qualifier) in the stack's account and region.
    pub fn lambda_arn(&self, function: &str) -> String {
        if function.starts_with("arn:") {
            return function.to_owned();
        }
        format!(
            "arn:{}:lambda:{}:{}:function:{function}",
            self.partition, self.region, self.account
        )
    }

    /// Source ARN of the authorizer's invoke permission.
    pub fn authorizer_source_arn(&self, api_id: &str, authorizer_id: &str) -> String {
        format!(
            "{}/authorizers/{authorizer_id}",
            self.execute_api_arn(api_id)
        )
    }

    /// Source ARN of a route's invoke permission on the team's function: that route of this
    /// API's stage only.
    pub fn route_source_arn(&self, api_id: &str, key: &str) -> String {
        format!("{}/{}/{key}", self.execute_api_arn(api_id), self.stage)
    }

    /// The Sid of the statement letting API Gateway invoke a team's function for route `key`:
    /// [`Names::route_sid_prefix`] then the key with its other characters as `-`, and a hash
    /// of the exact key (`a.b` and `a-b` differ), within Lambda's 100 characters.
    pub fn route_permission_sid(&self, key: &str) -> String {
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let prefix = self.route_sid_prefix();
        let mut readable = sid_safe(key);
        readable.truncate(100usize.saturating_sub(prefix.len() + 9));
        let mut sid = format!("{prefix}{readable}-{:08x}", hash as u32);
        sid.truncate(100);
        sid
    }

    /// What this stack's route statements' Sids start with: `wsctl-{stack}-route-`.
    pub fn route_sid_prefix(&self) -> String {
        format!("wsctl-{}-route-", sid_safe(&self.stack))
    }

    /// Source ARN of the Lambda permission: any route of this API's stage.
    pub fn permission_source_arn(&self, api_id: &str) -> String {
        format!("{}/{}/*", self.execute_api_arn(api_id), self.stage)
    }

    /// `arn:aws:execute-api:{region}:{account}:{api_id}`
    pub fn execute_api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{}",
            self.partition, self.region, self.account, api_id
        )
    }

    /// What `execute-api:ManageConnections` is granted on: posting to this stage's connections
    /// and disconnecting them (`DELETE`), nothing else of the management API.
    pub fn manage_connections_arns(&self, api_id: &str) -> [String; 2] {
        ["POST", "DELETE"].map(|method| {
            format!(
                "{}/{}/{method}/@connections/*",
                self.execute_api_arn(api_id),
                self.stage
            )
        })
    }

    /// The resource ARN API Gateway v2 uses for tagging an API.
    pub fn api_tag_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{}",
            self.partition, self.region, api_id
        )
    }

    /// The URL clients connect to: the custom domain's (mapped at its root), else the API's.
    pub fn websocket_url(&self, api_id: &str) -> String {
        match &self.domain {
            Some(d) => format!("wss://{d}"),
            None => format!(
                "wss://{api_id}.execute-api.{}.{}/{}",
                self.region,
                dns_suffix(&self.partition),
                self.stage
            ),
        }
    }

    /// The management API's URL for backends: through the custom domain when there is one.
    pub fn callback_url(&self, api_id: &str) -> String {
        match &self.domain {
            Some(d) => format!("https://{d}/@connections"),
            None => self.api_callback_url(api_id),
        }
    }

    /// The management API through the API's own host, which works with or without a domain
    /// (what wsctl itself calls).
    pub fn api_callback_url(&self, api_id: &str) -> String {
        format!(
            "https://{api_id}.execute-api.{}.{}/{}/@connections",
            self.region,
            dns_suffix(&self.partition),
            self.stage
        )
    }
}

/// `s` with every character a statement id does not allow replaced by `-`.
fn sid_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Project, Component and ManagedBy, plus the config's own tags.
pub fn tags(config: &Config) -> BTreeMap<String, String> {
    let mut tags = config.tags.clone();
    tags.insert("Project".into(), config.project.clone());
    if let Some(env) = &config.env {
        tags.entry("Environment".into())
            .or_insert_with(|| env.clone());
    }
    tags.insert("Component".into(), "WebSocket".into());
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    tags
}

/// A project as reports name it: `demo`, or `demo (environment staging)`.
pub fn label(project: &str, env: Option<&str>) -> String {
    match env {
        Some(e) => format!("{project} (environment {e})"),
        None => project.to_owned(),
    }
}

pub fn is_managed(tags: &BTreeMap<String, String>) -> bool {
    tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_follow_the_runbook() {
        let config = Config::parse(Path::new("wsctl.toml"), "project = \"petinsure360\"").unwrap();
        let n = Names::new(&config, "us-east-1", "123456789012");
        assert_eq!(n.table, "petinsure360_ws_connections");
        assert_eq!(n.role, "petinsure360-websocket-lambda-role");
        assert_eq!(n.function, "petinsure360-websocket-handler");
        assert_eq!(n.api, "petinsure360-websocket");
        assert_eq!(n.log_group, "/aws/lambda/petinsure360-websocket-handler");
        assert_eq!(n.access_log_group, "/aws/apigateway/petinsure360-websocket");
        assert_eq!(n.lock_table, "petinsure360_wsctl_lock");
        assert_eq!(
            n.log_group_arn(&n.access_log_group),
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/petinsure360-websocket"
        );
        assert_eq!(
            n.dashboard_url(),
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/petinsure360-websocket"
        );
    }

    #[test]
    fn an_environment_is_in_every_name() {
        let text = "project = \"shop\"\n[env.staging]\n";
        let config = Config::parse_for(Path::new("wsctl.toml"), text, Some("staging")).unwrap();
        let n = Names::new(&config, "us-east-1", "123456789012");
        assert_eq!(n.stack, "shop-staging");
        assert_eq!(n.table, "shop_staging_ws_connections");
        assert_eq!(n.subscriptions_table, "shop_staging_ws_subscriptions");
        assert_eq!(n.broadcasts_table, "shop_staging_ws_broadcasts");
        assert_eq!(n.lock_table, "shop_staging_wsctl_lock");
        assert_eq!(n.role, "shop-staging-websocket-lambda-role");
        assert_eq!(n.policy, "shop-staging-websocket-least-privilege");
        assert_eq!(n.function, "shop-staging-websocket-handler");
        assert_eq!(n.log_group, "/aws/lambda/shop-staging-websocket-handler");
        assert_eq!(n.api, "shop-staging-websocket");
        assert_eq!(n.alarm, "shop-staging-websocket-errors");
        assert_eq!(n.dashboard, "shop-staging-websocket");
        assert_eq!(n.access_log_group, "/aws/apigateway/shop-staging-websocket");
        let t = tags(&config);
        assert_eq!(
            (t["Project"].as_str(), t["Environment"].as_str()),
            ("shop", "staging")
        );
        assert_eq!(
            n.websocket_url("abc"),
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(
            n.manage_connections_arns("abc"),
            [
                "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/@connections/*",
                "arn:aws:execute-api:us-east-1:123456789012:abc/prod/DELETE/@connections/*"
            ]
        );
        assert_eq!(
            n.permission_source_arn("abc"),
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/*"
        );
    }
}
