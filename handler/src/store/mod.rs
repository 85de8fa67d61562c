//! Where connections live: the [`ConnectionStore`] port and its types. Two implementations:
//! [`memory`] (an in-memory map, for `wsctl dev` and tests) and, with the `aws` feature,
//! [`dynamo`] (the DynamoDB tables).

use std::collections::BTreeSet;
use std::error::Error as StdError;

use async_trait::async_trait;
use serde::Serialize;

/// One row of the connections table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub connection_id: String,
    /// ISO-8601 UTC, e.g. `2026-11-27T13:21:17.123Z`.
    pub connected_at: String,
    /// Epoch seconds after which DynamoDB's TTL may delete the row.
    pub ttl: i64,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub topics: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The authenticated subject (`sub` claim), when `$connect` verified a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Which rows a scan returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter<'a> {
    All,
    /// Connections subscribed to a topic.
    Topic(&'a str),
    /// Connections authenticated as a subject (`sub`).
    User(&'a str),
}

impl Filter<'_> {
    pub fn matches(&self, row: &Connection) -> bool {
        match self {
            Filter::All => true,
            Filter::Topic(t) => row.topics.contains(*t),
            Filter::User(u) => row.user.as_deref() == Some(*u),
        }
    }
}

/// One page of a scan: rows, or whatever was read of each. `next` is the cursor to pass to the
/// following call; `None` means the scan is complete.
#[derive(Debug, Default)]
pub struct Page<T = Connection> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// One page of connection ids: what a broadcast needs from a scan.
pub type IdPage = Page<String>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (DynamoDB) rejected or failed the call.
    #[error("{operation} on connections table {table} failed")]
    Backend {
        operation: &'static str,
        table: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A stored item could not be read as a connection.
    #[error("connections table {table} holds a malformed item: {reason}")]
    Malformed { table: String, reason: String },
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Inserts or replaces the row of `connection.connection_id`.
    async fn put(&self, connection: Connection) -> Result<(), StoreError>;
    /// Deletes a row; deleting a row that does not exist succeeds.
    async fn delete(&self, connection_id: &str) -> Result<(), StoreError>;
    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError>;
    /// Adds `topic` to the connection's topics. Returns false when there is no such row (the
    /// row is not created).
    async fn subscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError>;
    /// Removes `topic` from the connection's topics. Returns false when there is no such row.
    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError>;
    /// One page of the connections `filter` selects, starting after the cursor a previous
    /// page returned.
    async fn scan(&self, filter: Filter<'_>, cursor: Option<String>) -> Result<Page, StoreError>;
    /// The ids on one page of the connections `filter` selects, paged as [`Self::scan`] pages:
    /// what a broadcast reads, without the rest of each row.
    async fn scan_ids(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
    ) -> Result<IdPage, StoreError> {
        let page = self.scan(filter, cursor).await?;
        Ok(Page {
            items: page.items.into_iter().map(|c| c.connection_id).collect(),
            next: page.next,
        })
    }
    /// Counts one message of `connection_id` in the fixed window `window` (e.g. the current
    /// epoch second) and answers whether it is within `limit` messages for that window. A
    /// connection without a row is never within its limit.
    async fn count_message(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<bool, StoreError>;
}

mod memory;
pub use memory::MemoryStore;

#[cfg(feature = "aws")]
mod dynamo;
#[cfg(feature = "aws")]
pub use dynamo::DynamoStore;
