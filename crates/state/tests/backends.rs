//! The same suite against every backend: what a transaction sees, what a
//! commit checks, and that concurrent read-modify-write calls lose no
//! update. PostgreSQL joins when `MOTE_TEST_POSTGRES` names a database
//! (`.ci/run` starts one and sets it), each run in a schema of its own.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::sync::Arc;
use std::thread;

use mote_state::{Backend, MemoryBackend, PostgresBackend, SqliteBackend, StateError, Transaction};

type Named = (&'static str, Arc<dyn Backend>, Option<tempdir::Dir>);

fn backends() -> Vec<Named> {
    let dir = tempdir::Dir::new();
    let file = SqliteBackend::open(&dir.path.join("state.sqlite")).unwrap();
    let mut all: Vec<Named> = vec![
        ("memory", Arc::new(MemoryBackend::new()), None),
        (
            "sqlite in memory",
            Arc::new(SqliteBackend::in_memory().unwrap()),
            None,
        ),
        ("sqlite file", Arc::new(file), Some(dir)),
    ];
    if let Some(postgres) = postgres() {
        all.push(("postgres", Arc::new(postgres), None));
    }
    all
}

/// A PostgreSQL backend in a fresh schema, when the environment names a
/// database.
fn postgres() -> Option<PostgresBackend> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var("MOTE_TEST_POSTGRES").ok()?;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let schema = format!(
        "mote_test_{}_{since}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Some(PostgresBackend::open_in_schema(&url, &schema).unwrap())
}

/// A scratch folder removed when dropped (no tempfile dependency for
/// one folder).
mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new() -> Dir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "mote-state-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn put(backend: &Arc<dyn Backend>, key: &str, value: &str) {
    let mut t = Transaction::new(Arc::clone(backend));
    t.put("stock", key, value.to_string());
    t.commit().unwrap();
}

#[test]
fn writes_reach_the_backend_only_on_commit() {
    for (name, backend, _dir) in backends() {
        let mut t = Transaction::new(Arc::clone(&backend));
        assert_eq!(t.get("stock", "A").unwrap(), None, "{name}");
        t.put("stock", "A", "5".into());
        assert_eq!(t.get("stock", "A").unwrap().as_deref(), Some("5"), "{name}");
        assert_eq!(
            t.before("stock", "A").unwrap(),
            None,
            "{name}: before ignores own writes"
        );
        assert!(
            backend.read("stock", "A").unwrap().is_none(),
            "{name}: buffered"
        );
        let committed = t.commit().unwrap();
        assert_eq!(
            committed.stores["stock"],
            (1, 1),
            "{name}: one read, one write"
        );
        assert_eq!(
            backend.read("stock", "A").unwrap().unwrap().value,
            "5",
            "{name}"
        );

        // A transaction dropped without commit writes nothing.
        let mut t = Transaction::new(Arc::clone(&backend));
        t.put("stock", "A", "6".into());
        t.delete("stock", "A");
        drop(t);
        assert_eq!(
            backend.read("stock", "A").unwrap().unwrap().value,
            "5",
            "{name}"
        );
    }
}

#[test]
fn a_stale_read_is_a_conflict_and_writes_nothing() {
    for (name, backend, _dir) in backends() {
        put(&backend, "A", "5");
        let mut slow = Transaction::new(Arc::clone(&backend));
        assert_eq!(slow.get("stock", "A").unwrap().as_deref(), Some("5"));
        slow.put("stock", "B", "1".into());
        put(&backend, "A", "4");
        assert_eq!(slow.commit(), Err(StateError::Conflict), "{name}");
        assert!(backend.read("stock", "B").unwrap().is_none(), "{name}");

        // Reading an absent key that another call then creates.
        let mut slow = Transaction::new(Arc::clone(&backend));
        assert_eq!(slow.get("stock", "C").unwrap(), None);
        put(&backend, "C", "1");
        assert_eq!(
            slow.commit(),
            Err(StateError::Conflict),
            "{name}: absent then present"
        );

        // A read-only transaction is checked too: its answer must have seen
        // one consistent state.
        let mut reader = Transaction::new(Arc::clone(&backend));
        reader.get("stock", "A").unwrap();
        put(&backend, "A", "3");
        assert_eq!(
            reader.commit(),
            Err(StateError::Conflict),
            "{name}: read only"
        );
    }
}

#[test]
fn a_key_deleted_and_written_again_is_not_the_key_that_was_read() {
    for (name, backend, _dir) in backends() {
        put(&backend, "A", "5");
        let mut slow = Transaction::new(Arc::clone(&backend));
        slow.get("stock", "A").unwrap();
        let mut t = Transaction::new(Arc::clone(&backend));
        t.delete("stock", "A");
        t.commit().unwrap();
        put(&backend, "A", "5");
        slow.put("stock", "A", "4".into());
        assert_eq!(slow.commit(), Err(StateError::Conflict), "{name}");
    }
}

#[test]
fn listings_see_own_writes_and_conflict_on_phantoms() {
    for (name, backend, _dir) in backends() {
        for key in ["a-1", "a-2", "a-3", "b-1"] {
            put(&backend, key, "1");
        }
        let mut t = Transaction::new(Arc::clone(&backend));
        t.delete("stock", "a-1");
        t.put("stock", "a-0", "7".into());
        let keys: Vec<String> = t
            .list("stock", "a-", 2)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["a-0", "a-2"], "{name}");
        let all: Vec<String> = t
            .list("stock", "a-", 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(all, ["a-0", "a-2", "a-3"], "{name}");
        assert_eq!(t.list("stock", "c", 10).unwrap(), Vec::new(), "{name}");

        // Another call adds a key the listing would have shown.
        put(&backend, "a-25", "1");
        assert_eq!(t.commit(), Err(StateError::Conflict), "{name}: phantom");
    }
}

#[test]
fn concurrent_increments_lose_no_update() {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    for (name, backend, _dir) in backends() {
        put(&backend, "n", "0");
        let conflicts: usize = thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let backend = Arc::clone(&backend);
                    scope.spawn(move || {
                        let mut conflicts = 0;
                        for _ in 0..EACH {
                            loop {
                                let mut t = Transaction::new(Arc::clone(&backend));
                                let n: u64 = t.get("stock", "n").unwrap().unwrap().parse().unwrap();
                                thread::yield_now();
                                t.put("stock", "n", (n + 1).to_string());
                                match t.commit() {
                                    Ok(_) => break,
                                    Err(StateError::Conflict) => conflicts += 1,
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        }
                        conflicts
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let total = backend.read("stock", "n").unwrap().unwrap().value;
        assert_eq!(
            total,
            (THREADS * EACH).to_string(),
            "{name} ({conflicts} conflicts re-run)"
        );
    }
}

#[test]
fn a_sqlite_file_keeps_its_stores_when_opened_again() {
    let dir = tempdir::Dir::new();
    let path = dir.path.join("state.sqlite");
    {
        let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
        put(&backend, "A", "{\"n\":1}");
        put(&backend, "A", "{\"n\":2}");
    }
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
    let entry = backend.read("stock", "A").unwrap().unwrap();
    assert_eq!(entry.value, "{\"n\":2}");
    // Versions keep growing after a reopen.
    put(&backend, "B", "1");
    assert!(backend.read("stock", "B").unwrap().unwrap().version > entry.version);

    let missing = SqliteBackend::open(&dir.path.join("no-such-folder/state.sqlite")).unwrap_err();
    assert!(matches!(missing, StateError::Open { .. }), "{missing:?}");
}

#[test]
fn a_transaction_knows_how_much_it_holds() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    put(&backend, "A", "12345");
    let mut t = Transaction::new(Arc::clone(&backend));
    t.get("stock", "A").unwrap();
    assert_eq!(t.footprint(), (1, "stock".len() + 1 + 5));
    t.put("stock", "B", "1".into());
    t.put("stock", "B", "123".into());
    assert_eq!(t.footprint(), (2, 11 + "stock".len() + 1 + 3));
    t.discard_writes();
    assert_eq!(t.footprint(), (1, 11));
}
