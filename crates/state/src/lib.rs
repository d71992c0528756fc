//! The stores of mote services.
//!
//! A service that declares `[store.NAME]` reads and writes it through a
//! [`Transaction`]: one per call. Reads see what the backend holds (each
//! key read once, so the call sees one value per key); writes are buffered
//! in the transaction and reach the backend only when the call has passed
//! every check, in one atomic [`Backend::commit`]. The commit first checks
//! that nothing the call read has changed since (optimistic concurrency
//! control); if something has, it writes nothing and answers
//! [`StateError::Conflict`], and the runtime runs the call again on a fresh
//! snapshot. Every committed call therefore behaves as if the calls had run
//! one at a time, in commit order.
//!
//! Backends: [`MemoryBackend`] (verification, tests), [`SqliteBackend`]
//! (`mote up`'s default, a file that survives restarts) and
//! [`PostgresBackend`] (state shared by several hosts).

mod backend;
mod memory;
mod postgres;
mod sqlite;
mod transaction;

pub use backend::{Backend, Commit, Entry, ListSeen, ReadSeen, Write};
pub use memory::MemoryBackend;
pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;
pub use transaction::{After, Before, Committed, MAX_LIST, Shared, Transaction};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Something the call read changed before it could commit; nothing was
    /// written. Running the call again on a fresh snapshot may succeed.
    #[error("a concurrent call changed what this call read")]
    Conflict,
    /// The backend failed (I/O, a full disk, a database error).
    #[error("the store backend failed: {0}")]
    Backend(String),
    /// The backend could not be opened.
    #[error("cannot open the store at {location}: {why}")]
    Open {
        /// The file or address.
        location: String,
        /// What went wrong.
        why: String,
    },
}
