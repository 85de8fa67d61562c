//! `wsctl outputs`: what a backend needs to reach the deployed stack (the function to invoke,
//! the management API's callback URL, the wss:// URL, the table, the region), as text, JSON
//! (`--output json`) or dotenv lines (`--format env`) named like the handler's own variables.

use std::fmt;

use crate::error::Result;
use serde::Serialize;

use crate::aws::Clients;
use crate::naming::Names;

#[derive(Debug, Serialize)]
pub struct Outputs {
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub region: String,
    pub function_name: String,
    pub function_arn: String,
    pub api_id: String,
    pub stage: String,
    pub websocket_url: String,
    pub callback_url: String,
    pub connections_table: String,
}

/// Reads the deployed API's id (the only output not derived from the config) and fills in
/// the rest from the stack's names.
pub async fn outputs(c: &Clients, names: &Names, env: Option<&str>) -> Result<Outputs> {
    let api_id = super::api_id(c, names).await?;
    Ok(Outputs {
        project: names.project.clone(),
        env: env.map(str::to_owned),
        region: names.region.clone(),
        function_name: names.function.clone(),
        function_arn: names.function_arn(),
        stage: names.stage.clone(),
        websocket_url: names.websocket_url(&api_id),
        callback_url: names.callback_url(&api_id),
        connections_table: names.table.clone(),
        api_id,
    })
}

impl Outputs {
    /// `KEY=value` lines: the runbook handler's variable names where it has one.
    pub fn dotenv(&self) -> String {
        [
            ("REGION_NAME", &self.region),
            ("CONNECTIONS_TABLE", &self.connections_table),
            ("WEBSOCKET_API_ID", &self.api_id),
            ("WEBSOCKET_STAGE", &self.stage),
            ("WEBSOCKET_FUNCTION_NAME", &self.function_name),
            ("WEBSOCKET_FUNCTION_ARN", &self.function_arn),
            ("WEBSOCKET_URL", &self.websocket_url),
            ("WEBSOCKET_CALLBACK_URL", &self.callback_url),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
    }
}

impl fmt::Display for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("region", &self.region),
            ("function", &self.function_name),
            ("function ARN", &self.function_arn),
            ("API id", &self.api_id),
            ("stage", &self.stage),
            ("WebSocket URL", &self.websocket_url),
            ("callback URL", &self.callback_url),
            ("table", &self.connections_table),
        ];
        for (k, v) in rows {
            writeln!(f, "{k:<14} {v}")?;
        }
        Ok(())
    }
}
