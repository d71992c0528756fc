//! Kept-alive HTTP/1 connections to one server, shared by every client of
//! mote's protocol: `mote verify --url` and the calls a host makes to the
//! services other hosts serve.

use std::sync::Mutex;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header;
use hyper_util::rt::TokioIo;

/// The largest answer read back from a server; a larger one is refused
/// rather than read to the end.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// An answer as it came over the wire.
pub(crate) struct Exchanged {
    pub(crate) status: u16,
    /// The Content-Type, if any.
    pub(crate) media: Option<String>,
    pub(crate) body: Bytes,
}

/// Why no answer came.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made: the server is down, refused, or the
    /// handshake failed.
    Connect(String),
    /// A connection was made, but the exchange broke off.
    Exchange(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(m) | SendError::Exchange(m) => f.write_str(m),
        }
    }
}

/// The idle connections to one `host:port`. A request takes one (or opens
/// one) and gives it back once its answer is read in full; a request cut
/// short (its future dropped at a deadline) drops its connection, which
/// may still carry the late answer.
pub(crate) struct Connections {
    authority: String,
    tls: Option<Tls>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// TLS on every connection: how to connect, and the name the server's
/// certificate must carry.
pub(crate) struct Tls {
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) server_name: rustls_pki_types::ServerName<'static>,
}

impl Connections {
    /// Plain HTTP to `authority`.
    pub(crate) fn new(authority: String) -> Self {
        Connections::with_tls(authority, None)
    }

    /// HTTP to `authority`, over `tls` when given.
    pub(crate) fn with_tls(authority: String, tls: Option<Tls>) -> Self {
        Connections {
            authority,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The `host:port` these connections reach.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| {
                SendError::Connect(format!("cannot connect to {}: {e}", self.authority))
            })?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.handshake(stream).await;
        };
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| {
                SendError::Connect(format!("TLS handshake with {} failed: {e}", self.authority))
            })?;
        self.handshake(stream).await
    }

    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<Full<Bytes>>, SendError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                SendError::Connect(format!(
                    "HTTP handshake with {} failed: {e}",
                    self.authority
                ))
            })?;
        tokio::spawn(driver);
        Ok(sender)
    }

    /// POSTs JSON `body` to `path` with `headers`; the whole answer. A
    /// kept-alive connection the server closed is replaced once.
    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Exchanged, SendError> {
        let mut connection = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        for attempt in 0..2 {
            let mut sender = match connection.take() {
                Some(sender) if !sender.is_closed() => sender,
                _ => self.open().await?,
            };
            if sender.ready().await.is_err() {
                continue;
            }
            let mut request = hyper::Request::post(path)
                .header(header::HOST, &self.authority)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, application/problem+json");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let request = request
                .body(Full::new(Bytes::from(body.to_string())))
                .map_err(|e| SendError::Exchange(e.to_string()))?;
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let media = response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                        .collect()
                        .await
                        .map_err(|e| {
                            SendError::Exchange(format!(
                                "the response body broke off or exceeded {MAX_RESPONSE_BYTES} bytes: {e}"
                            ))
                        })?
                        .to_bytes();
                    self.idle
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(sender);
                    return Ok(Exchanged {
                        status,
                        media,
                        body,
                    });
                }
                Err(e) if attempt == 0 => {
                    tracing::debug!("retrying on a fresh connection: {e}");
                }
                Err(e) => return Err(SendError::Exchange(format!("the request failed: {e}"))),
            }
        }
        Err(SendError::Connect(format!(
            "no usable connection to {}",
            self.authority
        )))
    }
}

/// The `code` and the words (`detail`, else `title`) of an
/// `application/problem+json` body, if it is one.
pub(crate) fn problem(media: Option<&str>, body: &[u8]) -> Option<(String, String)> {
    let is_problem = media.is_some_and(|m| {
        m.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/problem+json"))
    });
    if !is_problem {
        return None;
    }
    let problem: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = problem.get("code")?.as_str()?.to_string();
    let message = problem
        .get("detail")
        .or_else(|| problem.get("title"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}
