//! Where connections live: the [`ConnectionStore`] port and its types. Two implementations:
//! [`memory`] (an in-memory map, for `wsctl dev` and tests) and, with the `aws` feature,
//! [`dynamo`] (the DynamoDB tables).

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as StdError;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// The token's claims the topic rules name (strings, and numbers as text): nothing else
    /// of the token is kept.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
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

/// One part of a parallel scan of every row: segment `index` of `total` (DynamoDB's `Segment`
/// and `TotalSegments`). Every row is in exactly one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub index: u32,
    pub total: u32,
}

/// The partition keys one topic's subscriptions are spread over (by [`segment_of`] the
/// connection id): a topic then takes subscriptions at this many times one DynamoDB
/// partition's write rate. Fixed: changing it would lose every stored subscription.
pub const TOPIC_SHARDS: u32 = 8;

/// The segment of `total` an id falls in, for stores that split a scan themselves (DynamoDB
/// uses its own hash): FNV-1a of the id's bytes.
pub fn segment_of(connection_id: &str, total: u32) -> u32 {
    let hash = connection_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % u64::from(total.max(1))) as u32
}

/// Which ids a delivery reads, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows<'a> {
    /// A scan of the connections `filter` selects.
    Scan(Filter<'a>),
    /// One segment of a parallel scan of every connection.
    Segment(Segment),
    /// A topic's subscribers, read from the subscriptions index (not a scan of the table); of
    /// its [`TOPIC_SHARDS`] shards those in the segment ([`in_topic_segment`]), so that a large
    /// topic's broadcast splits over workers too. `Segment { index: 0, total: 1 }` is all.
    Topic(&'a str, Segment),
}

/// The whole of a table or topic, as one segment.
pub const WHOLE: Segment = Segment { index: 0, total: 1 };

/// The ids of a page of a topic's subscribers that are in `segment` (for stores that read a
/// topic by scanning the table).
pub fn topic_segment_of(page: IdPage, segment: Segment) -> IdPage {
    Page {
        items: page
            .items
            .into_iter()
            .filter(|id| in_topic_segment(id, segment))
            .collect(),
        next: page.next,
    }
}

/// Whether subscriber `connection_id` is in `segment` of its topic: its shard (of
/// [`TOPIC_SHARDS`]) modulo the segments.
pub fn in_topic_segment(connection_id: &str, segment: Segment) -> bool {
    segment_of(connection_id, TOPIC_SHARDS) % segment.total.max(1) == segment.index
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
    /// The ids on one page of a parallel-scan segment, at most `limit` rows examined (the
    /// store's page size when `None`). Stores that cannot split a scan filter a full one.
    async fn scan_segment_ids(
        &self,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        let _ = limit;
        let page = self.scan_ids(Filter::All, cursor).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter(|id| segment_of(id, segment.total) == segment.index)
                .collect(),
            next: page.next,
        })
    }
    /// The ids of one page of `topic`'s subscribers in `segment`, at most about `limit` of
    /// them. Stores without a subscriptions index scan the table with [`Filter::Topic`].
    async fn topic_ids(
        &self,
        topic: &str,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        let _ = limit;
        let page = self.scan_ids(Filter::Topic(topic), cursor).await?;
        Ok(topic_segment_of(page, segment))
    }
    /// One page of the ids `rows` names.
    async fn ids(
        &self,
        rows: Rows<'_>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        match rows {
            Rows::Scan(filter) => self.scan_ids(filter, cursor).await,
            Rows::Segment(segment) => self.scan_segment_ids(segment, cursor, limit).await,
            Rows::Topic(topic, segment) => self.topic_ids(topic, segment, cursor, limit).await,
        }
    }
    /// About how many connections there are (DynamoDB's ItemCount, refreshed about every
    /// six hours): what a broadcast sizes its fan-out by. `None` when the store cannot say.
    async fn approximate_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
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
