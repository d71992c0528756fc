//! What a store backend provides: point reads, prefix listings, and an
//! atomic, validated commit.

use std::fmt;

use crate::StateError;

/// One entry as a backend holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value, as canonical JSON text.
    pub value: String,
    /// The commit that wrote it. Versions only grow, across keys and
    /// deletions, so a key deleted and written again never shows an old
    /// version.
    pub version: u64,
}

/// A key a transaction read, and what it saw there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSeen {
    /// The store.
    pub store: String,
    /// The key.
    pub key: String,
    /// The version seen, or `None` if the key was absent.
    pub version: Option<u64>,
}

/// A prefix listing a transaction made, and the entries it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSeen {
    /// The store.
    pub store: String,
    /// The prefix listed.
    pub prefix: String,
    /// How many entries were asked for.
    pub limit: usize,
    /// The keys returned, in order, with their versions.
    pub seen: Vec<(String, u64)>,
}

/// One buffered write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The store.
    pub store: String,
    /// The key.
    pub key: String,
    /// The new value as JSON text, or `None` to delete the key.
    pub value: Option<String>,
}

/// What a transaction asks a backend to make durable: its writes, if
/// everything it read is still as it saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Every key read, with what was seen.
    pub reads: Vec<ReadSeen>,
    /// Every prefix listed, with what was seen.
    pub lists: Vec<ListSeen>,
    /// The writes, applied together or not at all.
    pub writes: Vec<Write>,
}

/// A place stores live. Implementations are shared by every call thread.
pub trait Backend: Send + Sync + fmt::Debug {
    /// The entry at `key` in `store`, if any.
    fn read(&self, store: &str, key: &str) -> Result<Option<Entry>, StateError>;

    /// The first `limit` entries of `store` whose keys start with
    /// `prefix`, in key order.
    fn list(
        &self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StateError>;

    /// Atomically: checks that every read and listing of `commit` would
    /// see the same thing now, then applies its writes, durably, under one
    /// new version. [`StateError::Conflict`] (nothing written) when a
    /// check fails. A commit without writes only checks.
    fn commit(&self, commit: &Commit) -> Result<(), StateError>;

    /// A short name for logs and metrics: `memory`, `sqlite`.
    fn kind(&self) -> &'static str;
}

/// Whether the listing of `seen` still gives what it gave: the same keys at
/// the same versions. `now` is the listing made again, with the same limit.
pub(crate) fn listing_unchanged(seen: &ListSeen, now: &[(String, Entry)]) -> bool {
    seen.seen.len() == now.len()
        && seen
            .seen
            .iter()
            .zip(now)
            .all(|((key, version), (now_key, entry))| key == now_key && *version == entry.version)
}

/// Checks a commit's reads and listings against a backend's current state,
/// with `read` and `list` answering from inside the backend's atomic
/// section.
pub(crate) fn validate(
    commit: &Commit,
    mut read: impl FnMut(&str, &str) -> Result<Option<u64>, StateError>,
    mut list: impl FnMut(&str, &str, usize) -> Result<Vec<(String, Entry)>, StateError>,
) -> Result<(), StateError> {
    for seen in &commit.reads {
        if read(&seen.store, &seen.key)? != seen.version {
            return Err(StateError::Conflict);
        }
    }
    for seen in &commit.lists {
        if !listing_unchanged(seen, &list(&seen.store, &seen.prefix, seen.limit)?) {
            return Err(StateError::Conflict);
        }
    }
    Ok(())
}
