//! Stateful serving, same run, same machine: the shop's
//! `inventory.reserve` served by mote-server over a SQLite store (one
//! transaction per call, synced on commit) against a plain axum handler
//! doing the same SQL from Rust directly (one SQLite transaction per
//! request, the same durability), both driven over loopback by the same
//! keep-alive load generator:
//!
//! 1. spread: each request reserves one unit of one of 1,000 products;
//! 2. one key: every request reserves one unit of the same product, so
//!    mote's calls conflict and run again; their conflicts per second are
//!    counted.
//!
//! Then the same over PostgreSQL when `MOTE_TEST_POSTGRES` names a
//! database (`.ci/postgres` starts one): mote's PostgreSQL backend against
//! axum doing the same SQL (a row lock, one transaction per request) over
//! a pool of connections.
//!
//! Run: `cargo bench -p mote-server --bench stores`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that fails should stop

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::routing::post;
use hyper::body::Bytes;
use mote_runtime::{Runtime, RuntimeConfig};
use mote_server::{Gateway, ServerConfig};
use mote_state::{Backend, PostgresBackend, SqliteBackend};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use support::{CONNECTIONS, ROUND, Serving, load, median_round, serve};

mod support;

/// The one route both servers serve.
const PATH: &str = "/v1/inventory.reserve";

/// The allocator the `mote` binary uses, for both servers alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 5;
const PRODUCTS: usize = 1000;
/// Units of each product: enough for every round of both workloads.
const UNITS: u64 = 1000;
const HOT_UNITS: u64 = 100_000;

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/bench-stores");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sku(i: usize) -> String {
    format!("SKU-{:03}", i % PRODUCTS)
}

/// The shop's inventory services over `backend`, stocked.
fn runtime(backend: Arc<dyn Backend>) -> Runtime {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/fixtures");
    mote_build::ensure_wasm_target().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    for source in mote_build::discover(&shop).unwrap() {
        let contract = mote_contract::load(&source.contract).unwrap();
        if !contract.service.name.as_str().starts_with("inventory.") {
            continue;
        }
        let wasm = mote_build::build(&source, &target).unwrap().unwrap();
        runtime.load_file(contract, &wasm).unwrap();
    }
    runtime.use_state_backend(backend);
    for i in 0..=PRODUCTS {
        let (sku, units) = if i == PRODUCTS {
            ("HOT-001".to_string(), HOT_UNITS)
        } else {
            (sku(i), UNITS)
        };
        for _ in 0..units / 1000 {
            runtime
                .call(
                    "inventory.restock",
                    &format!(r#"{{"sku":"{sku}","qty":1000}}"#),
                )
                .unwrap();
        }
    }
    runtime
}

/// The products and how many units each starts with.
fn stock() -> Vec<(String, i64)> {
    (0..=PRODUCTS)
        .map(|i| {
            if i == PRODUCTS {
                ("HOT-001".to_string(), HOT_UNITS as i64)
            } else {
                (sku(i), UNITS as i64)
            }
        })
        .collect()
}

/// The baseline's store: the same durability as mote's SQLite backend.
fn baseline_store(dir: &Path) -> Arc<Mutex<Connection>> {
    let connection = Connection::open(dir.join("plain.sqlite")).unwrap();
    let _: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    connection
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();
    connection
        .execute_batch(
            "CREATE TABLE stock (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL) WITHOUT ROWID",
        )
        .unwrap();
    for (sku, units) in stock() {
        connection
            .execute("INSERT INTO stock VALUES (?1, ?2)", params![sku, units])
            .unwrap();
    }
    Arc::new(Mutex::new(connection))
}

/// The PostgreSQL baseline's connections and table.
struct PostgresPlain {
    url: String,
    table: String,
    idle: Mutex<Vec<postgres::Client>>,
}

fn postgres_baseline(url: &str) -> Arc<PostgresPlain> {
    let table = format!("plain_stock_{}", std::process::id());
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (sku TEXT PRIMARY KEY, on_hand BIGINT NOT NULL)"
        ))
        .unwrap();
    for (sku, units) in stock() {
        client
            .execute(
                &format!("INSERT INTO {table} VALUES ($1, $2)"),
                &[&sku, &units],
            )
            .unwrap();
    }
    Arc::new(PostgresPlain {
        url: url.to_string(),
        table,
        idle: Mutex::new(vec![client]),
    })
}

/// The same as [`plain_reserve`], over PostgreSQL: the row locked, read,
/// checked and written in one transaction, on a pooled connection.
async fn plain_reserve_postgres(
    axum::extract::State(store): axum::extract::State<Arc<PostgresPlain>>,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "invalid input").into_response();
    };
    let sku = input["sku"].as_str().unwrap_or_default().to_string();
    let qty = input["qty"].as_i64().unwrap_or(0);
    let answer = tokio::task::spawn_blocking(move || {
        let idle = store.idle.lock().unwrap().pop();
        let mut client =
            idle.unwrap_or_else(|| postgres::Client::connect(&store.url, postgres::NoTls).unwrap());
        let mut transaction = client.transaction().unwrap();
        let table = &store.table;
        let on_hand: Option<i64> = transaction
            .query_opt(
                &format!("SELECT on_hand FROM {table} WHERE sku = $1 FOR UPDATE"),
                &[&sku],
            )
            .unwrap()
            .map(|row| row.get(0));
        let answer = match on_hand {
            Some(on_hand) if on_hand >= qty => {
                transaction
                    .execute(
                        &format!("UPDATE {table} SET on_hand = $1 WHERE sku = $2"),
                        &[&(on_hand - qty), &sku],
                    )
                    .unwrap();
                Some(serde_json::json!({"sku": sku, "reserved": qty, "on_hand": on_hand - qty}))
            }
            _ => None,
        };
        transaction.commit().unwrap();
        store.idle.lock().unwrap().push(client);
        answer
    })
    .await
    .unwrap();
    match answer {
        Some(output) => axum::Json(output).into_response(),
        None => (axum::http::StatusCode::CONFLICT, "insufficient_stock").into_response(),
    }
}

/// The plain baseline: parse, one SQLite transaction (read, check,
/// write), answer, as a hand-written service would.
async fn plain_reserve(
    axum::extract::State(store): axum::extract::State<Arc<Mutex<Connection>>>,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "invalid input").into_response();
    };
    let sku = input["sku"].as_str().unwrap_or_default().to_string();
    let qty = input["qty"].as_i64().unwrap_or(0);
    let answer = tokio::task::spawn_blocking(move || {
        let mut connection = store.lock().unwrap();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let on_hand: Option<i64> = transaction
            .query_row(
                "SELECT on_hand FROM stock WHERE sku = ?1",
                params![sku],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        let answer = match on_hand {
            Some(on_hand) if on_hand >= qty => {
                transaction
                    .execute(
                        "UPDATE stock SET on_hand = ?1 WHERE sku = ?2",
                        params![on_hand - qty, sku],
                    )
                    .unwrap();
                Some(serde_json::json!({"sku": sku, "reserved": qty, "on_hand": on_hand - qty}))
            }
            _ => None,
        };
        transaction.commit().unwrap();
        answer
    })
    .await
    .unwrap();
    match answer {
        Some(output) => axum::Json(output).into_response(),
        None => (axum::http::StatusCode::CONFLICT, "insufficient_stock").into_response(),
    }
}

/// The reservation the load generator's `i`th request makes: of one of
/// the products, or (`hot`) always of the same one.
fn reservation(i: usize, hot: bool) -> String {
    let sku = if hot { "HOT-001".to_string() } else { sku(i) };
    format!(r#"{{"sku":"{sku}","qty":1}}"#)
}

fn spread(i: usize) -> String {
    reservation(i, false)
}

fn hot(i: usize) -> String {
    reservation(i, true)
}

fn main() {
    let dir = scratch();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-generator")
        .enable_all()
        .build()
        .unwrap();
    let sqlite: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&dir.join("mote.sqlite")).unwrap());
    let plain = serve(
        "plain-sqlite",
        Serving::Plain(
            axum::Router::new()
                .route("/v1/inventory.reserve", post(plain_reserve))
                .with_state(baseline_store(&dir)),
        ),
    );
    compare(&client, "SQLite synced on every commit", sqlite, plain);
    let Ok(url) = std::env::var("MOTE_TEST_POSTGRES") else {
        println!("\n(MOTE_TEST_POSTGRES is not set: no PostgreSQL comparison)");
        return;
    };
    let schema = format!("mote_bench_{}", std::process::id());
    let postgres: Arc<dyn Backend> =
        Arc::new(PostgresBackend::open_in_schema(&url, &schema).unwrap());
    let plain = serve(
        "plain-postgres",
        Serving::Plain(
            axum::Router::new()
                .route("/v1/inventory.reserve", post(plain_reserve_postgres))
                .with_state(postgres_baseline(&url)),
        ),
    );
    compare(&client, "PostgreSQL on loopback", postgres, plain);
}

/// mote over `backend` against the plain server at `plain`, both
/// workloads.
fn compare(
    client: &tokio::runtime::Runtime,
    what: &str,
    backend: Arc<dyn Backend>,
    plain: SocketAddr,
) {
    let runtime = runtime(backend);
    let gateway =
        Arc::new(Gateway::new(runtime.clone(), BTreeMap::new(), ServerConfig::default()).unwrap());
    let mote = serve("mote-server", Serving::Mote(gateway));
    println!(
        "\n== reserving one unit ({CONNECTIONS} keep-alive connections, median of {ROUNDS} alternating rounds of {ROUND:?}, loopback, {what})"
    );
    for (workload, body) in [
        ("spread over 1,000 products", spread as fn(usize) -> String),
        ("all on one product", hot),
    ] {
        let mut plain_rounds = Vec::new();
        let mut mote_rounds = Vec::new();
        let mut conflicts = 0;
        let mut mote_seconds = 0.0;
        for _ in 0..ROUNDS {
            plain_rounds.push(client.block_on(load(plain, PATH, body)));
            let before = runtime.store_counts()["stock"].conflicts;
            let started = Instant::now();
            mote_rounds.push(client.block_on(load(mote, PATH, body)));
            mote_seconds += started.elapsed().as_secs_f64();
            conflicts += runtime.store_counts()["stock"].conflicts - before;
        }
        let plain = median_round(plain_rounds);
        let served = median_round(mote_rounds);
        println!("-- {workload}");
        for (name, l) in [
            ("plain axum + SQL from Rust", &plain),
            ("mote up, inventory.reserve", &served),
        ] {
            println!(
                "{name:<28} {:>8.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs",
                l.requests_per_second,
                l.p50.as_secs_f64() * 1e6,
                l.p99.as_secs_f64() * 1e6
            );
        }
        println!(
            "mote / plain throughput: {:.0} %; mote's conflicts (each a re-run): {:.0} per second",
            100.0 * served.requests_per_second / plain.requests_per_second,
            conflicts as f64 / mote_seconds
        );
    }
}
