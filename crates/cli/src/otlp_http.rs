//! The HTTP transport of OTLP export, on the hyper client the project
//! already has, instead of a second HTTP stack (reqwest and its ~80 crates).
//!
//! opentelemetry's batch processor exports from a thread of its own, with
//! no async runtime; this client drives each request on a small
//! current-thread tokio runtime it owns.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// The longest one export may take, and the largest answer read back.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Sends each export as one HTTP/1.1 request on a fresh connection.
#[derive(Debug)]
pub struct OtlpHttpClient {
    runtime: tokio::runtime::Runtime,
}

impl OtlpHttpClient {
    /// A client with its own runtime.
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(OtlpHttpClient { runtime })
    }
}

async fn send(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(format!("{uri}: OTLP export speaks plain http:// only").into());
    }
    let host = uri.host().ok_or_else(|| format!("{uri} has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    // The connection already names the server; send the path alone.
    parts.uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    if let Ok(authority) = uri.authority().map_or("", |a| a.as_str()).parse() {
        parts
            .headers
            .entry(hyper::header::HOST)
            .or_insert(authority);
    }
    let response = sender
        .send_request(hyper::Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.runtime.block_on(async {
            tokio::time::timeout(TIMEOUT, send(request))
                .await
                .map_err(|_| HttpError::from(format!("no answer within {TIMEOUT:?}")))?
        })
    }
}
