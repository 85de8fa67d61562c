//! `wsctl connections` (every row of the table, every page) and `wsctl connections prune`
//! (rows whose connection answers 410 Gone are deleted).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use handler::store::DynamoStore;
use handler::{Connection, ConnectionStore};
use serde::Serialize;

use crate::aws::{aws_error, Clients};
use crate::error::{Error, Result};
use crate::naming::Names;

#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    pub connection_id: String,
    pub connected_at: String,
    pub age_seconds: Option<i64>,
    pub topics: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionList {
    pub table: String,
    pub count: usize,
    pub pages: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<ConnectionRow>>,
}

impl fmt::Display for ConnectionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.connections {
            None => writeln!(f, "{}", self.count),
            Some(rows) => {
                writeln!(
                    f,
                    "{:<18} {:<26} {:>8}  TOPICS",
                    "CONNECTION", "CONNECTED AT", "AGE"
                )?;
                for r in rows {
                    let age = r.age_seconds.map_or("?".into(), human_age);
                    let topics = r.topics.iter().cloned().collect::<Vec<_>>().join(",");
                    writeln!(
                        f,
                        "{:<18} {:<26} {:>8}  {topics}",
                        r.connection_id, r.connected_at, age
                    )?;
                }
                writeln!(
                    f,
                    "{} connection(s) in {} ({} page(s) read)",
                    self.count, self.table, self.pages
                )
            }
        }
    }
}

fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Every row of the table, reading every page.
pub async fn all_rows(store: &DynamoStore) -> Result<(Vec<Connection>, usize)> {
    let mut rows = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .scan(handler::Filter::All, cursor)
            .await
            .map_err(|e| Error::Failed(handler::error_chain(&e)))?;
        pages += 1;
        rows.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            return Ok((rows, pages));
        }
    }
}

pub async fn connections(
    c: &Clients,
    names: &Names,
    count_only: bool,
    page_size: Option<i32>,
) -> Result<ConnectionList> {
    let store = DynamoStore::new(c.dynamodb.clone(), &names.table).with_page_size(page_size);
    let (rows, pages) = all_rows(&store).await?;
    let now = time::OffsetDateTime::now_utc();
    let mut list: Vec<ConnectionRow> = rows
        .into_iter()
        .map(|r| ConnectionRow {
            age_seconds: time::OffsetDateTime::parse(
                &r.connected_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(|t| (now - t).whole_seconds()),
            connection_id: r.connection_id,
            connected_at: r.connected_at,
            topics: r.topics,
            user: r.user,
        })
        .collect();
    list.sort_by(|a, b| a.connected_at.cmp(&b.connected_at));
    Ok(ConnectionList {
        table: names.table.clone(),
        count: list.len(),
        pages,
        connections: (!count_only).then_some(list),
    })
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub checked: usize,
    pub removed: usize,
    pub alive: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} connection(s): removed {} gone, {} alive, {} failed",
            self.checked, self.removed, self.alive, self.failed
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Asks the management API about every row and deletes the rows of connections that answer
/// 410 Gone.
pub async fn prune(
    c: &Clients,
    names: &Names,
    endpoint: &str,
    page_size: Option<i32>,
) -> Result<PruneReport> {
    let store =
        Arc::new(DynamoStore::new(c.dynamodb.clone(), &names.table).with_page_size(page_size));
    let (rows, _) = all_rows(&store).await?;
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&c.sdk)
        .endpoint_url(endpoint)
        .build();
    let mgmt = aws_sdk_apigatewaymanagement::Client::from_conf(conf);
    let results: Vec<Result<bool, String>> = futures::stream::iter(rows)
        .map(|row| {
            let mgmt = mgmt.clone();
            let store = store.clone();
            async move {
                match mgmt
                    .get_connection()
                    .connection_id(&row.connection_id)
                    .send()
                    .await
                {
                    Ok(_) => Ok(false),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                        store.delete(&row.connection_id).await.map_err(|e| {
                            format!("{}: {}", row.connection_id, handler::error_chain(&e))
                        })?;
                        Ok(true)
                    }
                    Err(e) => Err(format!(
                        "{}",
                        aws_error(format!("GetConnection {}", row.connection_id), &e)
                    )),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut report = PruneReport {
        checked: results.len(),
        removed: 0,
        alive: 0,
        failed: 0,
        errors: vec![],
    };
    for r in results {
        match r {
            Ok(true) => report.removed += 1,
            Ok(false) => report.alive += 1,
            Err(e) => {
                report.failed += 1;
                if report.errors.len() < 10 {
                    report.errors.push(e);
                }
            }
        }
    }
    Ok(report)
}
