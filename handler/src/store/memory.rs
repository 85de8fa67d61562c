//! The in-memory [`ConnectionStore`]: `wsctl dev`'s and the tests'.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Connection, ConnectionStore, Filter, IdPage, Page, StoreError};

/// An in-memory store, ordered by connection id so that scans page deterministically.
#[derive(Debug)]
pub struct MemoryStore {
    rows: Mutex<BTreeMap<String, Connection>>,
    /// Per-connection message counters: (window, count), dropped with the row.
    rates: Mutex<std::collections::HashMap<String, (i64, u32)>>,
    page_size: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_page_size(1000)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose scans return at most `page_size` rows per page (at least 1).
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryStore {
            rows: Mutex::new(BTreeMap::new()),
            rates: Mutex::new(Default::default()),
            page_size: page_size.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every row, in id order.
    pub fn all(&self) -> Vec<Connection> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Connection>> {
        // A panic while holding this lock cannot leave a half-written map (every critical
        // section is a single map operation), so a poisoned lock is still consistent.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One page of a scan: `take` of each row `filter` selects among the next `page_size`
    /// rows after `cursor`, and the cursor for the page after it.
    fn page<T>(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
        take: impl Fn(&Connection) -> T,
    ) -> Page<T> {
        use std::ops::Bound;
        let rows = self.lock();
        let start = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        // Like DynamoDB, the page size counts rows examined, not rows that pass the filter.
        let mut last = None;
        let mut items = Vec::new();
        for (id, row) in rows.range((start, Bound::Unbounded)).take(self.page_size) {
            last = Some(id);
            if filter.matches(row) {
                items.push(take(row));
            }
        }
        let next = last
            .filter(|l| {
                rows.range::<String, _>((Bound::Excluded(*l), Bound::Unbounded))
                    .next()
                    .is_some()
            })
            .cloned();
        Page { items, next }
    }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put(&self, connection: Connection) -> Result<(), StoreError> {
        self.lock()
            .insert(connection.connection_id.clone(), connection);
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        self.lock().remove(connection_id);
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(connection_id);
        Ok(())
    }

    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(self.lock().get(connection_id).cloned())
    }

    async fn subscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(connection_id) {
            Some(row) => {
                row.topics.insert(topic.to_owned());
                true
            }
            None => false,
        })
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(connection_id) {
            Some(row) => {
                row.topics.remove(topic);
                true
            }
            None => false,
        })
    }

    async fn scan(&self, filter: Filter<'_>, cursor: Option<String>) -> Result<Page, StoreError> {
        Ok(self.page(filter, cursor, Connection::clone))
    }

    async fn scan_ids(
        &self,
        filter: Filter<'_>,
        cursor: Option<String>,
    ) -> Result<IdPage, StoreError> {
        Ok(self.page(filter, cursor, |row| row.connection_id.clone()))
    }

    async fn count_message(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        // Lock order: rows, then rates (delete takes them one after the other, never nested).
        let rows = self.lock();
        if !rows.contains_key(connection_id) {
            return Ok(false);
        }
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let entry = rates.entry(connection_id.to_owned()).or_insert((window, 0));
        if entry.0 < window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return Ok(false);
        }
        entry.1 += 1;
        Ok(true)
    }
}
