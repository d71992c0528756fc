//! Stores in PostgreSQL, for several hosts (or processes) sharing state:
//! `mote up --store postgres://USER:PASSWORD@HOST/DATABASE`.
//!
//! One table holds every store's entries, keys in byte order (`COLLATE
//! "C"`, as Rust and SQLite order them). A commit is one `SERIALIZABLE`
//! transaction that checks what the call read and applies its writes, so
//! commits from any number of hosts are serialisable; PostgreSQL's own
//! serialisation failures, deadlocks and a key two commits create at once
//! all come back as [`StateError::Conflict`], and the call runs again.
//! Connections are kept in a pool, one per concurrent use, opened as
//! needed.

use std::sync::{Mutex, PoisonError};

use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, NoTls};

use crate::StateError;
use crate::backend::{Backend, Commit, Entry, validate};

/// Stores in a PostgreSQL database.
pub struct PostgresBackend {
    url: String,
    /// The schema the tables live in, when not the connection's default.
    schema: Option<String>,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mote_entries (
    store   TEXT   NOT NULL,
    key     TEXT   COLLATE \"C\" NOT NULL,
    value   TEXT   NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (store, key)
);
CREATE SEQUENCE IF NOT EXISTS mote_version;
";

/// The longest a connection attempt or one statement may take.
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An arbitrary key for the advisory lock that serialises creating the
/// tables, so that hosts starting together do not race `CREATE TABLE`.
const SETUP_LOCK: i64 = 0x6d6f_7465;

fn failed(error: postgres::Error) -> StateError {
    let conflict = error.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
    });
    if conflict {
        StateError::Conflict
    } else {
        StateError::Backend(error.to_string())
    }
}

/// The first string after every string that starts with `prefix`, in byte
/// order; `None` when there is none (an empty prefix).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            code => char::from_u32(code + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl PostgresBackend {
    /// Connects to the database at `url` (`postgres://...`) and creates the
    /// tables if they are missing.
    pub fn open(url: &str) -> Result<PostgresBackend, StateError> {
        Self::open_in(url, None)
    }

    /// [`PostgresBackend::open`], with the tables in `schema` (created if
    /// missing): tests give each backend a schema of its own. A schema
    /// name is lowercase letters, digits and `_`.
    pub fn open_in_schema(url: &str, schema: &str) -> Result<PostgresBackend, StateError> {
        let valid = !schema.is_empty()
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StateError::Open {
                location: schema.to_string(),
                why: "a schema name is lowercase letters, digits and `_`".into(),
            });
        }
        Self::open_in(url, Some(schema.to_string()))
    }

    fn open_in(url: &str, schema: Option<String>) -> Result<PostgresBackend, StateError> {
        let backend = PostgresBackend {
            url: url.to_string(),
            schema,
            idle: Mutex::new(Vec::new()),
        };
        let open_failed = |e: StateError| StateError::Open {
            location: backend.location(),
            why: e.to_string(),
        };
        let mut client = backend.connect().map_err(open_failed)?;
        let mut setup = || -> Result<(), postgres::Error> {
            let mut transaction = client.transaction()?;
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])?;
            if let Some(schema) = &backend.schema {
                transaction.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
            }
            transaction.batch_execute(SCHEMA)?;
            transaction.commit()
        };
        setup().map_err(|e| open_failed(failed(e)))?;
        backend.give_back(client);
        Ok(backend)
    }

    /// Where the stores are, without the password.
    pub fn location(&self) -> String {
        let shown = match self.url.split_once('@') {
            Some((credentials, rest)) => match credentials.rsplit_once(':') {
                Some((user, _)) if user.contains("//") => format!("{user}:***@{rest}"),
                _ => self.url.clone(),
            },
            None => self.url.clone(),
        };
        match &self.schema {
            Some(schema) => format!("{shown} (schema {schema})"),
            None => shown,
        }
    }

    /// A new connection. A database that stops answering holds a call
    /// thread for at most [`WAIT_LIMIT`] per statement, not for ever.
    fn connect(&self) -> Result<Client, StateError> {
        let mut config: postgres::Config = self.url.parse().map_err(failed)?;
        let mut client = config
            .connect_timeout(WAIT_LIMIT)
            .connect(NoTls)
            .map_err(failed)?;
        let mut settings = format!("SET statement_timeout = {}", WAIT_LIMIT.as_millis());
        if let Some(schema) = &self.schema {
            settings.push_str(&format!("; SET search_path TO {schema}"));
        }
        client.batch_execute(&settings).map_err(failed)?;
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        if !client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(client);
        }
    }

    /// Runs `work` on a pooled connection (a new one if none is idle); a
    /// connection that broke is dropped rather than pooled again.
    fn with_client<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut client = match idle {
            Some(client) => client,
            None => self.connect()?,
        };
        let result = work(&mut client);
        self.give_back(client);
        result
    }
}

fn read_in(
    client: &mut impl postgres::GenericClient,
    store: &str,
    key: &str,
) -> Result<Option<Entry>, StateError> {
    let row = client
        .query_opt(
            "SELECT value, version FROM mote_entries WHERE store = $1 AND key = $2",
            &[&store, &key],
        )
        .map_err(failed)?;
    Ok(row.map(|row| Entry {
        value: row.get(0),
        version: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
    }))
}

fn list_in(
    client: &mut impl postgres::GenericClient,
    store: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, Entry)>, StateError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match prefix_end(prefix) {
        Some(end) => client.query(
            "SELECT key, value, version FROM mote_entries \
             WHERE store = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4",
            &[&store, &prefix, &end, &limit],
        ),
        None => client.query(
            "SELECT key, value, version FROM mote_entries \
             WHERE store = $1 ORDER BY key LIMIT $2",
            &[&store, &limit],
        ),
    }
    .map_err(failed)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let entry = Entry {
                value: row.get(1),
                version: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            };
            (row.get(0), entry)
        })
        .collect())
}

impl Backend for PostgresBackend {
    fn read(&self, store: &str, key: &str) -> Result<Option<Entry>, StateError> {
        self.with_client(|client| read_in(client, store, key))
    }

    fn list(
        &self,
        store: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StateError> {
        self.with_client(|client| list_in(client, store, prefix, limit))
    }

    fn commit(&self, commit: &Commit) -> Result<(), StateError> {
        self.with_client(|client| {
            let mut transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()
                .map_err(failed)?;
            {
                let cell = std::cell::RefCell::new(&mut transaction);
                validate(
                    commit,
                    |store, key| {
                        Ok(read_in(&mut **cell.borrow_mut(), store, key)?.map(|e| e.version))
                    },
                    |store, prefix, limit| list_in(&mut **cell.borrow_mut(), store, prefix, limit),
                )?;
            }
            if !commit.writes.is_empty() {
                let version: i64 = transaction
                    .query_one("SELECT nextval('mote_version')", &[])
                    .map_err(failed)?
                    .get(0);
                for write in &commit.writes {
                    match &write.value {
                        Some(value) => transaction.execute(
                            "INSERT INTO mote_entries (store, key, value, version) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (store, key) \
                             DO UPDATE SET value = excluded.value, version = excluded.version",
                            &[&write.store, &write.key, value, &version],
                        ),
                        None => transaction.execute(
                            "DELETE FROM mote_entries WHERE store = $1 AND key = $2",
                            &[&write.store, &write.key],
                        ),
                    }
                    .map_err(failed)?;
                }
            }
            transaction.commit().map_err(failed)
        })
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_where_no_key_can_start_with_it() {
        assert_eq!(prefix_end("a-"), Some("a.".to_string()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("z\u{D7FF}"), Some("z\u{E000}".to_string()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }
}
