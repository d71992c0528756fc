//! What the serving benches share: servers on their own named runtimes,
//! keep-alive client connections, and the load generator whose rounds
//! they compare.

#![allow(dead_code)] // each bench uses the part it needs

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mote_server::Gateway;

/// Connections the load generator keeps busy.
pub const CONNECTIONS: usize = 16;

/// How long one round of load lasts.
pub const ROUND: Duration = Duration::from_secs(1);

/// Starts `serve` on a listener of its own, on a two-worker runtime whose
/// threads are named `name` (so that a profile can be split by side);
/// returns the listener's address.
pub fn spawn_server<F, Fut>(name: &'static str, serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap();
        tokio.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

/// How a server serves its listener.
pub enum Serving {
    /// The plain baseline, with axum's own loop.
    Plain(axum::Router),
    /// mote's gateway with mote's own loop (header deadline, connection
    /// cap), as `mote up` serves it.
    Mote(Arc<Gateway>),
    /// The same, with its admin listener beside it, where the console's
    /// figures are polled every CONSOLE_POLL.
    MoteWithConsole(Arc<Gateway>),
    /// A host's peer address, as the other hosts of a placement reach it:
    /// mutual TLS when the gateway's config has peers, plain otherwise.
    Peer(Arc<Gateway>),
}

/// How often the bench polls an open console's figures: thirty times as
/// often as the console's page does.
pub const CONSOLE_POLL: Duration = Duration::from_millis(100);

/// Starts `serving` on its own two-worker runtime, its threads named
/// `name`; returns its address.
pub fn serve(name: &'static str, serving: Serving) -> SocketAddr {
    spawn_server(name, move |listener| async move {
        match serving {
            Serving::Plain(router) => axum::serve(listener, router).await.unwrap(),
            Serving::Mote(gateway) => {
                mote_server::serve(listener, gateway, std::future::pending())
                    .await
                    .unwrap();
            }
            Serving::Peer(gateway) => {
                mote_server::serve_to(
                    listener,
                    gateway,
                    mote_server::Audience::Peer,
                    std::future::pending(),
                )
                .await
                .unwrap();
            }
            Serving::MoteWithConsole(gateway) => {
                let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let admin_addr = admin.local_addr().unwrap();
                tokio::spawn(mote_server::serve_to(
                    admin,
                    Arc::clone(&gateway),
                    mote_server::Audience::Admin,
                    std::future::pending(),
                ));
                tokio::spawn(poll_console(admin_addr));
                mote_server::serve(listener, gateway, std::future::pending())
                    .await
                    .unwrap();
            }
        }
    })
}

/// An open console: its figures fetched every CONSOLE_POLL, for ever.
async fn poll_console(admin: SocketAddr) {
    let mut sender = connect(admin).await;
    loop {
        sender.ready().await.unwrap();
        let request = hyper::Request::get("/console/api/live")
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let figures = response.into_body().collect().await.unwrap().to_bytes();
        assert!(figures.len() > 100);
        tokio::time::sleep(CONSOLE_POLL).await;
    }
}

/// One keep-alive HTTP/1.1 connection's sending half.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens a keep-alive connection (no Nagle delay) to `addr`.
pub async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// POSTs `body` as JSON to `path`; the answer must be 200.
pub async fn post_json(sender: &mut Sender, path: &str, body: String) -> Bytes {
    sender.ready().await.unwrap();
    let request = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

/// One round of load: throughput and latency.
pub struct Load {
    /// Requests answered in the round.
    pub requests: usize,
    /// Answered requests per second.
    pub requests_per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Keeps CONNECTIONS keep-alive connections busy for one ROUND, each
/// POSTing `body(i)` to `path` for its own running count `i` (connection
/// `c` starts at `61 * c`, so that connections send different inputs).
pub async fn load(addr: SocketAddr, path: &'static str, body: fn(usize) -> String) -> Load {
    let deadline = Instant::now() + ROUND;
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut latencies = Vec::new();
            let mut i = connection * 61;
            while Instant::now() < deadline {
                let body = body(i);
                let start = Instant::now();
                post_json(&mut sender, path, body).await;
                latencies.push(start.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Load {
        requests: latencies.len(),
        requests_per_second: latencies.len() as f64 / elapsed,
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
    }
}

/// The round with the median throughput.
pub fn median_round(mut rounds: Vec<Load>) -> Load {
    rounds.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    rounds.swap_remove(rounds.len() / 2)
}
