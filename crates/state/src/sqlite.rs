//! Stores in one SQLite file: `mote up`'s default, `DIR/.mote/state.sqlite`.
//!
//! One table holds every store's entries. A commit is one SQLite
//! transaction taken with the write lock (`BEGIN IMMEDIATE`), so commits are
//! atomic and serialised even between processes sharing the file; the
//! journal is a write-ahead log synced on every commit (`synchronous =
//! FULL`), so an answered call's writes survive the host being killed, or
//! the machine losing power, right after.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::StateError;
use crate::backend::{Backend, Commit, Entry, validate};

/// Stores in a SQLite file.
#[derive(Debug)]
pub struct SqliteBackend {
    connection: Mutex<Connection>,
    location: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mote_entries (
    store   TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    value   TEXT    NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (store, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mote_version (
    only    INTEGER PRIMARY KEY CHECK (only = 0),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO mote_version (only, version) VALUES (0, 0);
";

fn failed(error: rusqlite::Error) -> StateError {
    StateError::Backend(error.to_string())
}

impl SqliteBackend {
    /// Opens (creating if needed) the stores in the file at `path`; its
    /// folder must exist.
    pub fn open(path: &Path) -> Result<SqliteBackend, StateError> {
        let location = path.display().to_string();
        let open_failed = |error: rusqlite::Error| StateError::Open {
            location: location.clone(),
            why: error.to_string(),
        };
        let connection = Connection::open(path).map_err(open_failed)?;
        Self::prepare(connection, location.clone()).map_err(|e| match e {
            StateError::Backend(why) => StateError::Open { location, why },
            other => other,
        })
    }

    /// Stores in a SQLite database in memory, for tests of this backend's
    /// statements without a file.
    pub fn in_memory() -> Result<SqliteBackend, StateError> {
        let connection = Connection::open_in_memory().map_err(failed)?;
        Self::prepare(connection, ":memory:".to_string())
    }

    fn prepare(connection: Connection, location: String) -> Result<SqliteBackend, StateError> {
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(failed)?;
        // `journal_mode` answers with the mode it set, so it is a query.
        let _: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(failed)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        Ok(SqliteBackend {
            connection: Mutex::new(connection),
            location,
        })
    }

    /// Where the stores are.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back a transaction left open by a panic when the
        // next one begins; the connection itself stays usable.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// SQLite integers are signed; versions count up from 1.
fn version_of(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

fn read_in(connection: &Connection, store: &str, key: &str) -> Result<Option<Entry>, StateError> {
    connection
        .prepare_cached("SELECT value, version FROM mote_entries WHERE store = ?1 AND key = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![store, key], |row| {
                    Ok(Entry {
                        value: row.get(0)?,
                        version: version_of(row.get(1)?),
                    })
                })
                .optional()
        })
        .map_err(failed)
}

fn list_in(
    connection: &Connection,
    store: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, Entry)>, StateError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT key, value, version FROM mote_entries \
             WHERE store = ?1 AND key >= ?2 ORDER BY key",
        )
        .map_err(failed)?;
    let mut rows = statement.query(params![store, prefix]).map_err(failed)?;
    let mut found = Vec::new();
    // Keys compare as UTF-8 bytes, as Rust's strings do: the keys with the
    // prefix come first from `prefix` on, and the first key without it
    // ends them.
    while found.len() < limit {
        let Some(row) = rows.next().map_err(failed)? else {
            break;
        };
        let key: String = row.get(0).map_err(failed)?;
        if !key.starts_with(prefix) {
            break;
        }
        let entry = Entry {
            value: row.get(1).map_err(failed)?,
            version: version_of(row.get(2).map_err(failed)?),
        };
        found.push((key, entry));
    }
    Ok(found)
}

impl Backend for SqliteBackend {
    fn read(&self, store: &str, key: &str) -> Result<Option<Entry>, StateError> {
        read_in(&self.lock(), store, key)
    }

    fn list(
        &self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StateError> {
        list_in(&self.lock(), store, prefix, limit)
    }

    fn commit(&self, commit: &Commit) -> Result<(), StateError> {
        let mut connection = self.lock();
        let behavior = if commit.writes.is_empty() {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        };
        let transaction = connection
            .transaction_with_behavior(behavior)
            .map_err(failed)?;
        validate(
            commit,
            |store, key| Ok(read_in(&transaction, store, key)?.map(|e| e.version)),
            |store, prefix, limit| list_in(&transaction, store, prefix, limit),
        )?;
        if !commit.writes.is_empty() {
            let version: i64 = transaction
                .query_row(
                    "UPDATE mote_version SET version = version + 1 RETURNING version",
                    [],
                    |row| row.get(0),
                )
                .map_err(failed)?;
            let mut upsert = transaction
                .prepare_cached(
                    "INSERT INTO mote_entries (store, key, value, version) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, version = excluded.version",
                )
                .map_err(failed)?;
            for write in &commit.writes {
                match &write.value {
                    Some(value) => upsert.execute(params![write.store, write.key, value, version]),
                    None => transaction
                        .prepare_cached("DELETE FROM mote_entries WHERE store = ?1 AND key = ?2")
                        .and_then(|mut delete| delete.execute(params![write.store, write.key])),
                }
                .map_err(failed)?;
            }
        }
        transaction.commit().map_err(failed)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
