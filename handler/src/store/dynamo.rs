//! The DynamoDB [`ConnectionStore`] (the `aws` feature).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::{Connection, ConnectionStore, Filter, IdPage, Page, StoreError};

/// The connections table in DynamoDB: hash key `connection_id` (S), `connected_at` (S),
/// `ttl` (N), `topics` (SS), `source_ip` (S), `user` (S); with a message rate limit also
/// `rl_window` (N) and `rl_count` (N).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<i32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            page_size: None,
        }
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
        Ok(Connection {
            connected_at: string("connected_at").unwrap_or_default(),
            source_ip: string("source_ip"),
            user: string("user"),
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
        req.send().await.map_err(|e| self.fail("PutItem", e))?;
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id)))
            .send()
            .await
            .map_err(|e| self.fail("DeleteItem", e))?;
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
        self.update_topics(connection_id, topic, "ADD").await
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        self.update_topics(connection_id, topic, "DELETE").await
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
        self.scan_page(filter, cursor, None, Self::parse).await
    }

    async fn scan_ids(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
    ) -> Result<IdPage, StoreError> {
        self.scan_page(filter, cursor, Some("connection_id"), Self::connection_id)
            .await
    }
}

impl DynamoStore {
    /// One Scan call: the page of rows `filter` selects after `cursor` (with only the
    /// `projection` attributes when given), each item read by `read`.
    async fn scan_page<T>(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
        projection: Option<&str>,
        read: fn(&Self, &HashMap<String, AttributeValue>) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut req = self
            .client
            .scan()
            .table_name(&self.table)
            .set_limit(self.page_size)
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

    async fn update_topics(
        &self,
        connection_id: &str,
        topic: &str,
        verb: &str,
    ) -> Result<bool, StoreError> {
        self.conditional_update(
            connection_id,
            &format!("{verb} topics :topic"),
            "attribute_exists(connection_id)",
            HashMap::from([(
                ":topic".to_owned(),
                AttributeValue::Ss(vec![topic.to_owned()]),
            )]),
        )
        .await
    }
}
