//! Stores held in memory: for verification, where each case starts from
//! contents of its own, and for tests.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use mote_contract::MemoryStores;

use crate::StateError;
use crate::backend::{Backend, Commit, Entry, validate};

/// Stores in memory, lost when dropped. Commits are serialised by one
/// lock, which also makes them atomic.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<String, BTreeMap<String, Entry>>,
    version: u64,
}

impl State {
    fn list(&self, store: &str, prefix: &str, limit: usize) -> Vec<(String, Entry)> {
        let Some(entries) = self.entries.get(store) else {
            return Vec::new();
        };
        entries
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect()
    }
}

impl MemoryBackend {
    /// Empty stores.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// Stores holding `contents` (values as JSON), all at version 1.
    pub fn with_contents(contents: &MemoryStores) -> Self {
        let entries = contents
            .stores
            .iter()
            .map(|(store, entries)| {
                let entries = entries
                    .iter()
                    .map(|(key, value)| {
                        let entry = Entry {
                            value: value.to_string(),
                            version: 1,
                        };
                        (key.clone(), entry)
                    })
                    .collect();
                (store.clone(), entries)
            })
            .collect();
        MemoryBackend {
            state: Mutex::new(State {
                entries,
                version: 1,
            }),
        }
    }

    /// Everything the stores hold now, values parsed; stores left empty are
    /// left out.
    pub fn contents(&self) -> MemoryStores {
        let state = self.lock();
        let stores = state
            .entries
            .iter()
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(store, entries)| {
                let entries = entries
                    .iter()
                    .map(|(key, entry)| {
                        let value =
                            serde_json::from_str(&entry.value).unwrap_or(serde_json::Value::Null);
                        (key.clone(), value)
                    })
                    .collect();
                (store.clone(), entries)
            })
            .collect();
        MemoryStores { stores }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied
        // commit: writes are applied after every check, without failing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for MemoryBackend {
    fn read(&self, store: &str, key: &str) -> Result<Option<Entry>, StateError> {
        Ok(self
            .lock()
            .entries
            .get(store)
            .and_then(|entries| entries.get(key))
            .cloned())
    }

    fn list(
        &self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StateError> {
        Ok(self.lock().list(store, prefix, limit))
    }

    fn commit(&self, commit: &Commit) -> Result<(), StateError> {
        let mut state = self.lock();
        validate(
            commit,
            |store, key| {
                Ok(state
                    .entries
                    .get(store)
                    .and_then(|entries| entries.get(key))
                    .map(|entry| entry.version))
            },
            |store, prefix, limit| Ok(state.list(store, prefix, limit)),
        )?;
        if commit.writes.is_empty() {
            return Ok(());
        }
        state.version += 1;
        let version = state.version;
        for write in &commit.writes {
            let entries = state.entries.entry(write.store.clone()).or_default();
            match &write.value {
                Some(value) => {
                    let entry = Entry {
                        value: value.clone(),
                        version,
                    };
                    entries.insert(write.key.clone(), entry);
                }
                None => {
                    entries.remove(&write.key);
                }
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
