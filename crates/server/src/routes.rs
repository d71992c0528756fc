//! The HTTP routes and the server loop.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mote_runtime::{Failure, PlatformFailure};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::gateway::{Audience, Gateway};
use crate::problem::{CALL_ID_HEADER, Problem, failure_response};

/// The gateway's routes for `audience`, ready to serve.
pub fn router(gateway: Arc<Gateway>, audience: Audience) -> Router {
    let routes = Router::new()
        .route("/v1/services", get(catalog))
        .route("/v1/services/{name}", get(contract))
        .route("/v1/{service}", post(call))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let admin = audience == Audience::Admin;
    let routes = match audience {
        Audience::Admin => crate::console::routes(routes.route("/metrics", get(metrics))),
        Audience::Public | Audience::Peer => routes,
    };
    let routes = routes.fallback(not_found).layer(Extension(audience));
    let routes = if admin {
        routes.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            admin_host_only,
        ))
    } else {
        routes
    };
    routes.with_state(gateway)
}

/// On the admin address, a request naming a host other than an IP
/// address, `localhost` or one of the configured admin host names is
/// refused (421): a web page whose own name an attacker points at this
/// machine (DNS rebinding) must not reach the console's try-it or the
/// full catalog through a visitor's browser. A request without a Host
/// header comes from no browser and is served.
async fn admin_host_only(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    match host {
        Some(host) if !admin_host(&host, &gateway.config.admin_hosts) => Problem::new(
            421,
            "urn:mote:platform:unknown_host",
            "This address does not answer to that host name",
            &format!(
                "the admin address answers to IP addresses, localhost and the names given with --admin-host; not to `{}`",
                host.chars().take(100).collect::<String>()
            ),
            "unknown_host",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Whether the Host header `host` (`name[:port]`) names this machine by
/// address, as `localhost`, or as one of `allowed`.
fn admin_host(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => {
            return bracketed
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Serves the gateway's public side on `listener` (see [`serve_to`]).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_to(listener, gateway, Audience::Public, shutdown).await
}

/// Serves the gateway to `audience` on `listener` until `shutdown` completes; then
/// `/readyz` turns 503, no new connection is accepted, and the requests in
/// flight finish before this returns.
///
/// Every connection is bounded: its headers must arrive within the
/// configured header timeout (which also closes idle kept-alive
/// connections), and at most `max_connections` are open at once.
pub async fn serve_to(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    audience: Audience,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let routes = router(Arc::clone(&gateway), audience);
    // Only a rate-limited listener needs each request's client address;
    // the others share one service rather than wrapping the routes anew
    // for every connection.
    let per_client = audience == Audience::Public && gateway.limiter.is_some();
    // The peer address under mutual TLS: the acceptor, and the hosts a
    // client certificate may name.
    let mutual_tls = match (audience, &gateway.config.peers) {
        (Audience::Peer, Some(access)) => Some((access.tls.acceptor(), Arc::new(access.hosts()))),
        _ => None,
    };
    let shared = TowerToHyperService::new(routes.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(gateway.config.header_timeout)
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(gateway.config.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = Arc::clone(&open).acquire_owned() => place,
            () = &mut shutdown => break,
        };
        let Ok(place) = place else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some((acceptor, hosts)) = &mutual_tls {
            // The handshake runs on the connection's task, under the header
            // deadline, so that a slow or silent client holds only its own
            // place.
            let acceptor = acceptor.clone();
            let hosts = Arc::clone(hosts);
            let routes = routes.clone();
            let http = http.clone();
            let watcher = graceful.watcher();
            let handshake_timeout = gateway.config.header_timeout;
            tokio::spawn(async move {
                let _place = place;
                let stream =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake refused: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                let named = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(<[_]>::first)
                    .map(|c| mote_tls::hosts_named(c, hosts.iter().map(String::as_str)))
                    .unwrap_or_default();
                let service =
                    TowerToHyperService::new(routes.layer(Extension(PeerHosts(named.into()))));
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(stream), service))
                    .await;
            });
            continue;
        }
        let service = if per_client {
            TowerToHyperService::new(routes.clone().layer(Extension(Client(peer.ip()))))
        } else {
            shared.clone()
        };
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _place = place;
            let _ = connection.await;
        });
    }
    gateway.begin_shutdown();
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The address a request's connection came from.
#[derive(Debug, Clone, Copy)]
struct Client(IpAddr);

/// The hosts of the placement that the certificate a peer connection
/// showed was issued to (verified against the app's authority).
#[derive(Debug, Clone)]
struct PeerHosts(Arc<[String]>);

async fn call(
    State(gateway): State<Arc<Gateway>>,
    Extension(audience): Extension<Audience>,
    client: Option<Extension<Client>>,
    peer_hosts: Option<Extension<PeerHosts>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let call_id = gateway.call_ids.next();
    let refused = match (&gateway.limiter, audience, client) {
        (Some(limiter), Audience::Public, Some(Extension(Client(ip)))) => {
            limiter.check(ip).err().map(|wait| {
                Problem::platform(
                    PlatformFailure::RateLimited,
                    "this client sent more requests than the public address allows",
                )
                .retry_after(wait.as_secs_f64().ceil() as u64)
            })
        }
        (_, Audience::Peer, _) => {
            let peer_hosts = peer_hosts.map(|Extension(PeerHosts(hosts))| hosts);
            declared_by_caller(&gateway, &service, &headers, peer_hosts.as_deref())
                .err()
                .map(|why| {
                    Problem::new(
                        403,
                        "urn:mote:platform:undeclared_call",
                        "No service that declares this call made it",
                        &why,
                        PlatformFailure::UndeclaredCall.code(),
                    )
                })
        }
        _ => None,
    };
    let mut response = match refused {
        Some(problem) => problem.service(&service).call_id(&call_id).into_response(),
        None => {
            answer(
                &gateway, audience, &service, &call_id, started, &headers, body, None,
            )
            .await
        }
    };
    if let Ok(value) = HeaderValue::from_str(&call_id) {
        response.headers_mut().insert(CALL_ID_HEADER, value);
    }
    response
}

/// Where a traced call leaves its trace.
pub(crate) type TraceSlot = Arc<std::sync::Mutex<Option<mote_runtime::Trace>>>;

/// The edge checks, then the call: content type, declared size, the body
/// (bounded in size and time), then a place among the calls in flight,
/// then the runtime on a call thread under the request deadline. With
/// `trace`, the call is traced and its trace left there.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn answer(
    gateway: &Arc<Gateway>,
    audience: Audience,
    service: &str,
    call_id: &str,
    started: Instant,
    headers: &HeaderMap,
    body: Body,
    trace: Option<TraceSlot>,
) -> Response {
    let Some((service, served)) = gateway.served(service, audience) else {
        return Problem::platform(
            PlatformFailure::UnknownService,
            &format!("no service named `{service}` is served here; see /v1/services"),
        )
        .service(service)
        .call_id(call_id)
        .into_response();
    };
    let finish = |outcome: &str| {
        gateway
            .metrics
            .record(service, outcome, started.elapsed().as_secs_f64());
        gateway.live.record(service, outcome, started, call_id);
    };
    let refuse = |problem: Problem| {
        finish(PlatformFailure::InvalidInput.code());
        problem.service(service).call_id(call_id).into_response()
    };
    let config = &gateway.config;
    let limit = config.max_body_bytes;
    if let Some(kind) = headers.get(header::CONTENT_TYPE)
        && !is_json(kind)
    {
        return refuse(Problem::invalid_input(
            415,
            "The request body must be JSON",
            &format!(
                "Content-Type is {:?}; send application/json",
                kind.to_str().unwrap_or("not text")
            ),
        ));
    }
    let too_large = || {
        Problem::invalid_input(
            413,
            "The request body is too large",
            &format!("this host accepts request bodies up to {limit} bytes"),
        )
    };
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return refuse(too_large());
    }
    let bytes =
        match tokio::time::timeout(config.body_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) if is_length_limit(&e) => return refuse(too_large()),
            Ok(Err(_)) => {
                return refuse(Problem::invalid_input(
                    400,
                    "The request body broke off",
                    "the connection ended before the whole body arrived",
                ));
            }
            Err(_) => {
                let mut response = refuse(Problem::invalid_input(
                    408,
                    "The request body arrived too slowly",
                    &format!(
                        "the whole body must arrive within {} ms",
                        config.body_timeout.as_millis()
                    ),
                ));
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        };
    let Ok(input) = String::from_utf8(bytes.to_vec()) else {
        return refuse(Problem::platform(
            PlatformFailure::InvalidInput,
            "the request body is not UTF-8 text",
        ));
    };
    // Only a complete request takes a place among the calls in flight.
    let Ok(permit) = Arc::clone(&gateway.in_flight).try_acquire_owned() else {
        finish(PlatformFailure::Overloaded.code());
        return Problem::platform(
            PlatformFailure::Overloaded,
            &format!(
                "{} calls are in flight, the most this host serves at once",
                config.max_in_flight
            ),
        )
        .service(service)
        .call_id(call_id)
        .into_response();
    };

    let _in_flight = gateway.metrics.in_flight(service);
    let span = tracing::info_span!(
        "call",
        service,
        call_id,
        version = %served.contract.service.version,
        outcome = tracing::field::Empty,
        client_identity = tracing::field::Empty,
    );
    if let Some(identity) = identity(&config.identity_headers, headers) {
        span.record("client_identity", identity.as_str());
    }
    crate::trace_context::incoming(&span, headers);
    let runtime = gateway.runtime.clone();
    let name = service.to_string();
    let call_span = span.clone();
    // The permit travels with the call: a call the edge stopped waiting
    // for still counts until the runtime's own deadline ends it.
    let task = gateway.calls.run(move || {
        let _permit = permit;
        call_span.in_scope(|| match trace {
            None => runtime.call(&name, &input),
            Some(slot) => {
                let (answer, trace) = runtime.call_traced(&name, &input);
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(trace);
                answer
            }
        })
    });
    let timeout = config.request_timeout;
    let outcome = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Failure::Platform {
            kind: PlatformFailure::Trap,
            message: "the call's worker failed".into(),
        }),
        Err(_) => Err(Failure::Platform {
            kind: PlatformFailure::Timeout,
            message: format!("no answer within {} ms", timeout.as_millis()),
        }),
    };
    match outcome {
        Ok(output) => {
            span.record("outcome", crate::metrics::SUCCESS);
            finish(crate::metrics::SUCCESS);
            Json(output).into_response()
        }
        Err(failure) => {
            let code = failure.code();
            span.record("outcome", code);
            finish(code);
            // The client gets the code and the call id; the failure's own
            // words, which may carry the guest's text, go to the log.
            span.in_scope(|| match failure.platform_kind() {
                Some(kind) if !kind.detail_is_public() => {
                    tracing::error!(service, call_id, code, "call failed: {}", failure.message());
                }
                _ => tracing::debug!(service, call_id, code, "{}", failure.message()),
            });
            failure_response(service, call_id, &served.contract, &failure)
        }
    }
}

/// On the peer address, a call must name its caller, a service of the app
/// whose contract declares the call. Under mutual TLS, the caller must
/// also be placed on a host the connection's certificate names
/// (`peer_hosts`), so that a host speaks only for its own services.
fn declared_by_caller(
    gateway: &Gateway,
    service: &str,
    headers: &HeaderMap,
    peer_hosts: Option<&[String]>,
) -> Result<(), String> {
    let Some(caller) = headers
        .get(crate::remote::CALLER_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(format!(
            "a call between hosts names its calling service in `{}`",
            crate::remote::CALLER_HEADER
        ));
    };
    let caller_name = mote_contract::versions::ServiceRef::parse(caller).name;
    if let Some(access) = &gateway.config.peers {
        let shown = peer_hosts.unwrap_or_default();
        match access.host_of.get(caller_name) {
            Some(host) if shown.contains(host) => {}
            Some(host) => {
                return Err(format!(
                    "`{caller}` is served by host `{host}`, and this connection's certificate is {}",
                    match shown {
                        [] => "no host's".to_string(),
                        hosts => format!("host `{}`'s", hosts.join("`, `")),
                    }
                ));
            }
            None => {
                return Err(format!(
                    "the placement puts no service `{caller}` on a host"
                ));
            }
        }
    }
    let Some(caller_contract) = gateway.runtime.contract(caller) else {
        return Err(format!("the app has no service `{caller}`"));
    };
    // The version asked for must be one the caller's range accepts; a
    // name this host does not serve is answered as missing later.
    let Some(callee) = gateway.runtime.contract(service) else {
        return Ok(());
    };
    let declared = caller_contract.declares_call(&callee.service.name, &callee.service.version);
    if declared {
        Ok(())
    } else {
        Err(format!(
            "`{caller}` does not declare a call to `{}` {}",
            callee.service.name, callee.service.version
        ))
    }
}

/// The longest identity recorded on a span.
const MAX_IDENTITY_CHARS: usize = 256;

/// What the ingress's identity headers say, as `name=value` pairs, if any
/// is present; bounded in length, control characters dropped.
fn identity(names: &[String], headers: &HeaderMap) -> Option<String> {
    let pairs: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let value = headers.get(name.as_str())?.to_str().ok()?;
            Some(format!("{name}={value}"))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    Some(
        pairs
            .join(", ")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_IDENTITY_CHARS)
            .collect(),
    )
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

async fn catalog(
    State(gateway): State<Arc<Gateway>>,
    Extension(audience): Extension<Audience>,
) -> Json<serde_json::Value> {
    Json(gateway.catalog(audience))
}

async fn contract(
    State(gateway): State<Arc<Gateway>>,
    Extension(audience): Extension<Audience>,
    Path(name): Path<String>,
) -> Response {
    match gateway.served(&name, audience) {
        Some((key, served)) => Json(serde_json::json!({
            "name": key,
            "service": served.contract.service.name.as_str(),
            "version": served.contract.service.version.to_string(),
            "contract_sha256": served.contract.hash.to_string(),
            "verification": served.verification.label(),
            "contract": served.contract.json,
        }))
        .into_response(),
        None => Problem::platform(
            PlatformFailure::UnknownService,
            &format!("no service named `{name}` is served here"),
        )
        .service(&name)
        .into_response(),
    }
}

async fn openapi(
    State(gateway): State<Arc<Gateway>>,
    Extension(audience): Extension<Audience>,
) -> Json<serde_json::Value> {
    Json(gateway.openapi_for(audience).clone())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.is_ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        gateway.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    Problem::new(
        404,
        "urn:mote:platform:not_found",
        "No such route",
        "routes: POST /v1/{service}, GET /v1/services, GET /v1/services/{name}, GET /openapi.json, GET /healthz, GET /readyz, GET /metrics",
        "not_found",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_address_answers_to_addresses_localhost_and_named_hosts() {
        let allowed = ["ops.internal".to_string()];
        for host in [
            "127.0.0.1:8081",
            "10.0.0.5",
            "[::1]:8081",
            "localhost:8081",
            "LOCALHOST",
            "ops.internal:8081",
        ] {
            assert!(admin_host(host, &allowed), "{host}");
        }
        for host in [
            "evil.example:8081",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[evil]",
            "",
        ] {
            assert!(!admin_host(host, &allowed), "{host}");
        }
    }

    #[test]
    fn the_identity_names_each_header_present_and_is_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-user", HeaderValue::from_static("alice"));
        headers.insert(
            "x-forwarded-groups",
            HeaderValue::from_static("ops\tadmins"),
        );
        let names = vec![
            "x-forwarded-user".to_string(),
            "x-forwarded-groups".to_string(),
            "x-absent".to_string(),
        ];
        assert_eq!(
            identity(&names, &headers).as_deref(),
            Some("x-forwarded-user=alice, x-forwarded-groups=opsadmins")
        );
        assert_eq!(identity(&names[2..], &headers), None);
        let long = "a".repeat(1000);
        headers.insert(
            "x-forwarded-user",
            HeaderValue::from_str(&long).unwrap_or(HeaderValue::from_static("x")),
        );
        let recorded = identity(&names[..1], &headers).unwrap_or_default();
        assert_eq!(recorded.chars().count(), MAX_IDENTITY_CHARS);
    }
}
