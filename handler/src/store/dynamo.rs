//! The DynamoDB [`ConnectionStore`] (the `aws` feature).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::{
    segment_of, Connection, ConnectionStore, Filter, IdPage, Page, Segment, StoreError,
    TOPIC_SHARDS,
};

/// The connections table in DynamoDB: hash key `connection_id` (S), `connected_at` (S),
/// `ttl` (N), `topics` (SS), `source_ip` (S), `user` (S), `claims` (M of S: only those the
/// topic rules name); with a message rate limit also
/// `rl_window` (N) and `rl_count` (N).
///
/// With a subscriptions table (hash key `topic_shard` (S) = `{topic}#{shard}`, range key
/// `connection_id` (S), `topic` (S), `ttl` (N)) every subscription is also an item there, so
/// a topic's broadcast reads its subscribers only. A topic is spread over [`TOPIC_SHARDS`]
/// partition keys (the shard is a hash of the connection id), so one topic takes
/// subscriptions at 8 times a partition's write rate. The connection row's `topics` stays the
/// record of what to remove on `$disconnect`.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    subscriptions: Option<String>,
    page_size: Option<i32>,
}

/// The subscriptions table's keys.
pub const TOPIC_SHARD_KEY: &str = "topic_shard";

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            subscriptions: None,
            page_size: None,
        }
    }

    /// Keeps subscriptions in `table` too, and reads topics from it.
    pub fn with_subscriptions(mut self, table: Option<String>) -> Self {
        self.subscriptions = table.filter(|t| !t.trim().is_empty());
        self
    }

    /// Caps the rows a scan page examines (DynamoDB's `Limit`). Without it a page ends at
    /// DynamoDB's 1 MB limit.
    pub fn with_page_size(mut self, page_size: Option<i32>) -> Self {
        self.page_size = page_size;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn fail<E>(&self, operation: &'static str, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend {
            operation,
            table: self.table.clone(),
            source: Box::new(source),
        }
    }

    fn fail_on<E>(table: &str, operation: &'static str, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend {
            operation,
            table: table.to_owned(),
            source: Box::new(source),
        }
    }

    fn subscription_key(topic: &str, connection_id: &str) -> HashMap<String, AttributeValue> {
        let shard = segment_of(connection_id, TOPIC_SHARDS);
        HashMap::from([
            (
                TOPIC_SHARD_KEY.to_owned(),
                AttributeValue::S(format!("{topic}#{shard}")),
            ),
            (
                "connection_id".to_owned(),
                AttributeValue::S(connection_id.to_owned()),
            ),
        ])
    }

    fn key(connection_id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(
            "connection_id".to_owned(),
            AttributeValue::S(connection_id.to_owned()),
        )])
    }

    fn connection_id(&self, item: &HashMap<String, AttributeValue>) -> Result<String, StoreError> {
        match item.get("connection_id") {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            other => Err(StoreError::Malformed {
                table: self.table.clone(),
                reason: format!("connection_id is {other:?}, expected a string"),
            }),
        }
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<Connection, StoreError> {
        let malformed = |reason: String| StoreError::Malformed {
            table: self.table.clone(),
            reason,
        };
        let connection_id = self.connection_id(item)?;
        let string = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let ttl = match item.get("ttl") {
            Some(AttributeValue::N(n)) => n.parse::<i64>().map_err(|_| {
                malformed(format!(
                    "ttl of {connection_id} is {n:?}, expected epoch seconds"
                ))
            })?,
            _ => 0,
        };
        let topics = match item.get("topics") {
            Some(AttributeValue::Ss(set)) => set.iter().cloned().collect(),
            _ => Default::default(),
        };
        let claims = match item.get("claims") {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                .collect(),
            _ => Default::default(),
        };
        Ok(Connection {
            connected_at: string("connected_at").unwrap_or_default(),
            source_ip: string("source_ip"),
            user: string("user"),
            claims,
            connection_id,
            ttl,
            topics,
        })
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put(&self, c: Connection) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("connection_id", AttributeValue::S(c.connection_id))
            .item("connected_at", AttributeValue::S(c.connected_at))
            .item("ttl", AttributeValue::N(c.ttl.to_string()));
        if !c.topics.is_empty() {
            req = req.item("topics", AttributeValue::Ss(c.topics.into_iter().collect()));
        }
        if let Some(ip) = c.source_ip {
            req = req.item("source_ip", AttributeValue::S(ip));
        }
        if let Some(user) = c.user {
            req = req.item("user", AttributeValue::S(user));
        }
        if !c.claims.is_empty() {
            let claims = c
                .claims
                .into_iter()
                .map(|(k, v)| (k, AttributeValue::S(v)))
                .collect();
            req = req.item("claims", AttributeValue::M(claims));
        }
        req.send().await.map_err(|e| self.fail("PutItem", e))?;
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id)))
            .set_return_values(self.subscriptions.as_ref().map(|_| ReturnValue::AllOld))
            .send()
            .await
            .map_err(|e| self.fail("DeleteItem", e))?;
        // The row said which subscriptions it had: they go with it.
        if let (Some(table), Some(AttributeValue::Ss(topics))) = (
            &self.subscriptions,
            out.attributes().and_then(|a| a.get("topics")),
        ) {
            let deletes = topics
                .iter()
                .map(|topic| self.delete_subscription(table, topic, connection_id));
            futures::future::try_join_all(deletes).await?;
        }
        Ok(())
    }

    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", e))?;
        out.item().map(|i| self.parse(i)).transpose()
    }

    async fn subscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        let Some(table) = &self.subscriptions else {
            return Ok(self
                .update_topics(connection_id, topic, "ADD")
                .await?
                .is_some());
        };
        let Some(row) = self.update_topics(connection_id, topic, "ADD").await? else {
            return Ok(false);
        };
        // The subscription expires with its connection.
        let ttl = match row.get("ttl") {
            Some(AttributeValue::N(n)) => n.clone(),
            _ => "0".to_owned(),
        };
        let mut item = Self::subscription_key(topic, connection_id);
        item.insert("topic".to_owned(), AttributeValue::S(topic.to_owned()));
        item.insert("ttl".to_owned(), AttributeValue::N(ttl));
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Self::fail_on(table, "PutItem", e))?;
        Ok(true)
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        if let Some(table) = &self.subscriptions {
            self.delete_subscription(table, topic, connection_id)
                .await?;
        }
        Ok(self
            .update_topics(connection_id, topic, "DELETE")
            .await?
            .is_some())
    }

    async fn scan_segment_ids(
        &self,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        let limit = limit.map(|l| l.clamp(1, i32::MAX as u32) as i32);
        self.scan_page(
            Filter::All,
            Some(segment),
            limit.or(self.page_size),
            cursor,
            Some("connection_id"),
            Self::connection_id,
        )
        .await
    }

    /// Every shard of the topic still to read is queried at once; the cursor lists where each
    /// stopped (see [`topic_cursor`]).
    async fn topic_ids(
        &self,
        topic: &str,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        let Some(table) = &self.subscriptions else {
            let page = self.scan_ids(Filter::Topic(topic), cursor).await?;
            return Ok(super::topic_segment_of(page, segment));
        };
        let pending: Vec<(u32, Option<String>)> = match cursor {
            None => (0..TOPIC_SHARDS)
                .filter(|s| s % segment.total.max(1) == segment.index)
                .map(|s| (s, None))
                .collect(),
            Some(c) => parse_topic_cursor(&c).ok_or_else(|| StoreError::Malformed {
                table: table.clone(),
                reason: format!("topic cursor {c:?} is not one this store wrote"),
            })?,
        };
        let per_shard = limit
            .map(|l| (l / pending.len().max(1) as u32).max(1))
            .map(|l| l.min(i32::MAX as u32) as i32);
        let queries = pending.into_iter().map(|(shard, after)| {
            let table = table.clone();
            async move {
                let mut req = self
                    .client
                    .query()
                    .table_name(&table)
                    .key_condition_expression("#k = :k")
                    .expression_attribute_names("#k", TOPIC_SHARD_KEY)
                    .expression_attribute_values(
                        ":k",
                        AttributeValue::S(format!("{topic}#{shard}")),
                    )
                    .projection_expression("connection_id")
                    .set_limit(per_shard);
                if let Some(after) = &after {
                    req = req.set_exclusive_start_key(Some(Self::subscription_key(topic, after)));
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| Self::fail_on(&table, "Query", e))?;
                let ids = out
                    .items()
                    .iter()
                    .map(|i| self.connection_id(i))
                    .collect::<Result<Vec<_>, _>>()?;
                let next = match out
                    .last_evaluated_key()
                    .and_then(|k| k.get("connection_id"))
                {
                    Some(AttributeValue::S(s)) => Some(s.clone()),
                    _ => None,
                };
                Ok::<_, StoreError>((shard, ids, next))
            }
        });
        let pages = futures::future::try_join_all(queries).await?;
        let mut items = Vec::new();
        let mut rest = Vec::new();
        for (shard, ids, next) in pages {
            items.extend(ids);
            if let Some(next) = next {
                rest.push((shard, Some(next)));
            }
        }
        Ok(Page {
            items,
            next: (!rest.is_empty()).then(|| topic_cursor(&rest)),
        })
    }

    async fn approximate_count(&self) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.fail("DescribeTable", e))?;
        Ok(out
            .table()
            .and_then(|t| t.item_count())
            .map(|n| n.max(0) as u64))
    }

    /// Two conditional writes at most, no read: count within the current window while it
    /// is under the limit; otherwise open the window if it is newer than the stored one.
    /// Both failing means the limit is reached (or the row is gone).
    async fn count_message(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        if self
            .conditional_update(
                connection_id,
                "SET rl_count = rl_count + :one",
                "attribute_exists(connection_id) AND rl_window = :w AND rl_count < :limit",
                HashMap::from([
                    (":one".to_owned(), n(1)),
                    (":w".to_owned(), n(window)),
                    (":limit".to_owned(), n(limit.into())),
                ]),
            )
            .await?
        {
            return Ok(true);
        }
        if limit == 0 {
            return Ok(false);
        }
        self.conditional_update(
            connection_id,
            "SET rl_window = :w, rl_count = :one",
            "attribute_exists(connection_id) AND (attribute_not_exists(rl_window) OR rl_window < :w)",
            HashMap::from([(":one".to_owned(), n(1)), (":w".to_owned(), n(window))]),
        )
        .await
    }

    async fn scan(&self, filter: Filter<'_>, cursor: Option<String>) -> Result<Page, StoreError> {
        self.scan_page(filter, None, self.page_size, cursor, None, Self::parse)
            .await
    }

    async fn scan_ids(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
    ) -> Result<IdPage, StoreError> {
        self.scan_page(
            filter,
            None,
            self.page_size,
            cursor,
            Some("connection_id"),
            Self::connection_id,
        )
        .await
    }
}

impl DynamoStore {
    /// One Scan call: the page of rows `filter` selects after `cursor` (in `segment` when
    /// given, with only the `projection` attributes when given), each item read by `read`.
    async fn scan_page<T>(
        &self,
        filter: Filter<'_>,
        segment: Option<Segment>,
        limit: Option<i32>,
        cursor: Option<String>,
        projection: Option<&str>,
        read: fn(&Self, &HashMap<String, AttributeValue>) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut req = self
            .client
            .scan()
            .table_name(&self.table)
            .set_limit(limit)
            .set_segment(segment.map(|s| s.index as i32))
            .set_total_segments(segment.map(|s| s.total as i32))
            .set_exclusive_start_key(cursor.as_deref().map(Self::key))
            .set_projection_expression(projection.map(str::to_owned));
        match filter {
            Filter::All => {}
            Filter::Topic(topic) => {
                req = req
                    .filter_expression("contains(topics, :topic)")
                    .expression_attribute_values(":topic", AttributeValue::S(topic.to_owned()));
            }
            // `user` is a DynamoDB reserved word: name it through an attribute name.
            Filter::User(user) => {
                req = req
                    .filter_expression("#user = :user")
                    .expression_attribute_names("#user", "user")
                    .expression_attribute_values(":user", AttributeValue::S(user.to_owned()));
            }
        }
        let out = req.send().await.map_err(|e| self.fail("Scan", e))?;
        let items = out
            .items()
            .iter()
            .map(|i| read(self, i))
            .collect::<Result<Vec<_>, _>>()?;
        // Where the next page starts: the connection id of the page's LastEvaluatedKey.
        let next = match out.last_evaluated_key() {
            Some(key) => match key.get("connection_id") {
                Some(AttributeValue::S(s)) => Some(s.clone()),
                other => {
                    return Err(StoreError::Malformed {
                        table: self.table.clone(),
                        reason: format!("scan returned a LastEvaluatedKey without a string connection_id: {other:?}"),
                    })
                }
            },
            None => None,
        };
        Ok(Page { items, next })
    }

    /// One conditional update; `Ok(false)` when the condition failed.
    async fn conditional_update(
        &self,
        connection_id: &str,
        update: &str,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    /// Adds or deletes `topic` in the row's `topics`; the row as it is after, or `None` when
    /// there is no row.
    async fn update_topics(
        &self,
        connection_id: &str,
        topic: &str,
        verb: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id)))
            .update_expression(format!("{verb} topics :topic"))
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_values(":topic", AttributeValue::Ss(vec![topic.to_owned()]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    async fn delete_subscription(
        &self,
        table: &str,
        topic: &str,
        connection_id: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(table)
            .set_key(Some(Self::subscription_key(topic, connection_id)))
            .send()
            .await
            .map_err(|e| Self::fail_on(table, "DeleteItem", e))?;
        Ok(())
    }
}

/// `{shard}:{after}` joined by `,`: where each shard of a topic's read stopped. Connection
/// ids are base64, which has neither `:` nor `,`.
fn topic_cursor(rest: &[(u32, Option<String>)]) -> String {
    rest.iter()
        .map(|(shard, after)| format!("{shard}:{}", after.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_topic_cursor(cursor: &str) -> Option<Vec<(u32, Option<String>)>> {
    cursor
        .split(',')
        .map(|part| {
            let (shard, after) = part.split_once(':')?;
            let shard: u32 = shard.parse().ok().filter(|s| *s < TOPIC_SHARDS)?;
            Some((shard, (!after.is_empty()).then(|| after.to_owned())))
        })
        .collect()
}
