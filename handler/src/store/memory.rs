//! The in-memory [`ConnectionStore`]: `wsctl dev`'s and the tests'.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    in_topic_segment, segment_of, Connection, ConnectionStore, Filter, IdPage, Page, Segment,
    StoreError,
};

/// An in-memory store, ordered by connection id so that scans page deterministically.
#[derive(Debug)]
pub struct MemoryStore {
    rows: Mutex<BTreeMap<String, Connection>>,
    /// Per-connection message counters: (window, count), dropped with the row.
    rates: Mutex<std::collections::HashMap<String, (i64, u32)>>,
    /// The subscriptions index: topic to subscriber ids, kept in step with the rows' topics.
    subscribers: Mutex<BTreeMap<String, BTreeSet<String>>>,
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
            subscribers: Mutex::new(BTreeMap::new()),
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

    fn subscribers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops `connection_id` from the index entries of `topics`.
    fn unindex<'t>(&self, connection_id: &str, topics: impl IntoIterator<Item = &'t String>) {
        let mut index = self.subscribers();
        for topic in topics {
            if let Some(ids) = index.get_mut(topic) {
                ids.remove(connection_id);
                if ids.is_empty() {
                    index.remove(topic);
                }
            }
        }
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
        // Lock order: rows, then subscribers (as everywhere here).
        let mut rows = self.lock();
        let id = connection.connection_id.clone();
        let topics = connection.topics.clone();
        if let Some(old) = rows.insert(id.clone(), connection) {
            self.unindex(&id, &old.topics);
        }
        let mut index = self.subscribers();
        for topic in topics {
            index.entry(topic).or_default().insert(id.clone());
        }
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        let mut rows = self.lock();
        if let Some(old) = rows.remove(connection_id) {
            self.unindex(connection_id, &old.topics);
        }
        drop(rows);
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
                self.subscribers()
                    .entry(topic.to_owned())
                    .or_default()
                    .insert(connection_id.to_owned());
                true
            }
            None => false,
        })
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(connection_id) {
            Some(row) => {
                row.topics.remove(topic);
                self.unindex(connection_id, [&topic.to_owned()]);
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

    async fn scan_segment_ids(
        &self,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        use std::ops::Bound;
        let limit = limit.map_or(self.page_size, |l| l.max(1) as usize);
        let rows = self.lock();
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids = rows
            .range((start, Bound::Unbounded))
            .map(|(id, _)| id)
            .filter(|id| segment_of(id, segment.total) == segment.index);
        let items: Vec<String> = ids.by_ref().take(limit).cloned().collect();
        let next = match ids.next() {
            Some(_) => items.last().cloned(),
            None => None,
        };
        Ok(Page { items, next })
    }

    async fn topic_ids(
        &self,
        topic: &str,
        segment: Segment,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<IdPage, StoreError> {
        use std::ops::Bound;
        let limit = limit.map_or(self.page_size, |l| l.max(1) as usize);
        let index = self.subscribers();
        let Some(subscribers) = index.get(topic) else {
            return Ok(Page::default());
        };
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids = subscribers
            .range::<String, _>((start, Bound::Unbounded))
            .filter(|id| in_topic_segment(id, segment));
        let items: Vec<String> = ids.by_ref().take(limit).cloned().collect();
        let next = match ids.next() {
            Some(_) => items.last().cloned(),
            None => None,
        };
        Ok(Page { items, next })
    }

    async fn approximate_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.lock().len() as u64))
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
