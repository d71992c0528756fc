//! One call's view of the stores: reads recorded with what they saw,
//! writes buffered until the call has passed its checks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use mote_contract::StoreRead;

use crate::StateError;
use crate::backend::{Backend, Commit, Entry, ListSeen, ReadSeen, Write};

/// The most entries one listing may return.
pub const MAX_LIST: usize = 1000;

/// One call's transaction. Every key is read from the backend once; later
/// reads of it see the same value (or the call's own write), so a call
/// never sees a key change under it. Nothing reaches the backend before
/// [`Transaction::commit`].
#[derive(Debug)]
pub struct Transaction {
    backend: Arc<dyn Backend>,
    /// The first read of each key: the call's snapshot of it.
    seen: BTreeMap<(String, String), Option<Entry>>,
    lists: Vec<ListSeen>,
    /// The call's writes; `None` deletes.
    writes: BTreeMap<(String, String), Option<String>>,
    /// Backend reads (a key's first read, a listing) by store.
    reads: BTreeMap<String, u64>,
    /// The bytes of the keys and values held in `seen` and `writes`.
    held_bytes: usize,
}

/// What a transaction did to each store it touched, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Per store: backend reads (a key's first read, a listing) and keys
    /// written or deleted.
    pub stores: BTreeMap<String, (u64, u64)>,
}

impl Transaction {
    /// A transaction over `backend`, having read and written nothing.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Transaction {
            backend,
            seen: BTreeMap::new(),
            lists: Vec::new(),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            held_bytes: 0,
        }
    }

    /// Buffers `value` (`None`: a deletion) at `key`, keeping
    /// [`Transaction::footprint`] current.
    fn buffer(&mut self, store: &str, key: &str, value: Option<String>) {
        let added = value.as_ref().map_or(0, String::len);
        match self
            .writes
            .insert((store.to_string(), key.to_string()), value)
        {
            Some(old) => {
                self.held_bytes = self.held_bytes + added - old.as_ref().map_or(0, String::len);
            }
            None => self.held_bytes += store.len() + key.len() + added,
        }
    }

    /// Keeps `entry` as the call's snapshot of `key`, unless it has one.
    fn remember(&mut self, store: &str, key: String, entry: Option<Entry>) {
        let slot = (store.to_string(), key);
        if !self.seen.contains_key(&slot) {
            self.held_bytes +=
                store.len() + slot.1.len() + entry.as_ref().map_or(0, |e| e.value.len());
            self.seen.insert(slot, entry);
        }
    }

    /// The stores this transaction has read or written so far, with its
    /// reads and writes of each.
    pub fn touched(&self) -> Committed {
        let mut stores: BTreeMap<String, (u64, u64)> = self
            .reads
            .iter()
            .map(|(store, reads)| (store.clone(), (*reads, 0)))
            .collect();
        for (store, _) in self.writes.keys() {
            stores.entry(store.clone()).or_default().1 += 1;
        }
        Committed { stores }
    }

    fn snapshot(&mut self, store: &str, key: &str) -> Result<Option<&Entry>, StateError> {
        let slot = (store.to_string(), key.to_string());
        if !self.seen.contains_key(&slot) {
            let entry = self.backend.read(store, key)?;
            *self.reads.entry(store.to_string()).or_default() += 1;
            self.remember(store, key.to_string(), entry);
        }
        Ok(self.seen.get(&slot).and_then(Option::as_ref))
    }

    /// The value at `key` as the call found it, ignoring its own writes:
    /// what `before.STORE[key]` reads.
    pub fn before(&mut self, store: &str, key: &str) -> Result<Option<String>, StateError> {
        Ok(self.snapshot(store, key)?.map(|e| e.value.clone()))
    }

    /// The value at `key` as the call sees it now: its own last write, or
    /// what it found. What the guest's `get` and `after.STORE[key]` read.
    pub fn get(&mut self, store: &str, key: &str) -> Result<Option<String>, StateError> {
        if let Some(written) = self.writes.get(&(store.to_string(), key.to_string())) {
            return Ok(written.clone());
        }
        self.before(store, key)
    }

    /// Buffers a write of `value` (JSON text) at `key`.
    pub fn put(&mut self, store: &str, key: &str, value: String) {
        self.buffer(store, key, Some(value));
    }

    /// Buffers the deletion of `key`.
    pub fn delete(&mut self, store: &str, key: &str) {
        self.buffer(store, key, None);
    }

    /// Forgets the call's writes, keeping what it read: for a call that
    /// failed, whose answer must still have seen one consistent state.
    pub fn discard_writes(&mut self) {
        for ((store, key), value) in std::mem::take(&mut self.writes) {
            self.held_bytes -= store.len() + key.len() + value.map_or(0, |v| v.len());
        }
    }

    /// How much the transaction holds in memory: distinct keys read or
    /// written, and the bytes of those keys and of the buffered values.
    /// The host bounds both per call.
    pub fn footprint(&self) -> (usize, usize) {
        (self.seen.len() + self.writes.len(), self.held_bytes)
    }

    /// Whether the call has written anything.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The entries of `store` whose keys start with `prefix`, as the call
    /// sees them (its own writes included), in key order, at most `limit`
    /// (and at most [`MAX_LIST`]).
    pub fn list(
        &mut self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StateError> {
        let limit = limit.min(MAX_LIST);
        // The call's own deletions may hide entries the backend lists, so
        // ask for that many more.
        let own: Vec<(&String, &Option<String>)> = self
            .writes
            .iter()
            .filter(|((s, k), _)| s == store && k.starts_with(prefix))
            .map(|((_, k), v)| (k, v))
            .collect();
        let asked = limit + own.iter().filter(|(_, v)| v.is_none()).count();
        let listed = self.backend.list(store, prefix, asked)?;
        *self.reads.entry(store.to_string()).or_default() += 1;
        let mut merged: BTreeMap<String, String> = listed
            .iter()
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect();
        let last = listed.last().map(|(key, _)| key.clone());
        let complete = listed.len() < asked;
        for (key, value) in own {
            // A key of its own past the last listed one is only known to
            // belong when the backend had no more.
            let within = complete || last.as_ref().is_some_and(|last| key <= last);
            match value {
                Some(value) if within => {
                    merged.insert(key.clone(), value.clone());
                }
                None => {
                    merged.remove(key);
                }
                Some(_) => {}
            }
        }
        self.lists.push(ListSeen {
            store: store.to_string(),
            prefix: prefix.to_string(),
            limit: asked,
            seen: listed
                .iter()
                .map(|(key, entry)| (key.clone(), entry.version))
                .collect(),
        });
        for (key, entry) in listed {
            self.remember(store, key, Some(entry));
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Makes the call's writes durable if nothing it read has changed;
    /// with no writes, only checks that. [`StateError::Conflict`] when
    /// something changed: nothing is written, and the call may run again.
    pub fn commit(self) -> Result<Committed, StateError> {
        let committed = self.touched();
        if self.seen.is_empty() && self.lists.is_empty() && self.writes.is_empty() {
            return Ok(committed);
        }
        let commit = Commit {
            reads: self
                .seen
                .into_iter()
                .map(|((store, key), entry)| ReadSeen {
                    store,
                    key,
                    version: entry.map(|e| e.version),
                })
                .collect(),
            lists: self.lists,
            writes: self
                .writes
                .into_iter()
                .map(|((store, key), value)| Write { store, key, value })
                .collect(),
        };
        self.backend.commit(&commit)?;
        Ok(committed)
    }
}

/// A transaction several holders share: the guest's host functions during
/// the call, then the checks' [`Before`] and [`After`] views.
pub type Shared = Arc<Mutex<Transaction>>;

fn with<T>(
    transaction: &Shared,
    read: impl FnOnce(&mut Transaction) -> Result<T, StateError>,
) -> Result<T, String> {
    let mut transaction = transaction.lock().unwrap_or_else(PoisonError::into_inner);
    read(&mut transaction).map_err(|e| e.to_string())
}

fn parse(text: Option<String>) -> Result<Option<serde_json::Value>, String> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| format!("a stored value is not JSON: {e}")))
        .transpose()
}

/// The stores as the call found them, for `before.STORE[key]`.
#[derive(Debug, Clone)]
pub struct Before(pub Shared);

/// The stores as the call leaves them, for `after.STORE[key]`.
#[derive(Debug, Clone)]
pub struct After(pub Shared);

impl StoreRead for Before {
    fn read(&self, store: &str, key: &str) -> Result<Option<serde_json::Value>, String> {
        parse(with(&self.0, |t| t.before(store, key))?)
    }
}

impl StoreRead for After {
    fn read(&self, store: &str, key: &str) -> Result<Option<serde_json::Value>, String> {
        parse(with(&self.0, |t| t.get(store, key))?)
    }
}
