//! The listener: connections taken one task each, over TLS or not, with bounds a hostile client
//! meets — at most [`Connections::max`] open at once (beyond it a connection is answered 503 with
//! `Retry-After` and closed, or over TLS closed), request headers within
//! [`Connections::header_timeout`] (a slow-loris connection is closed), and a request body
//! within [`Connections::body_timeout`] (408) — so memory stays bounded whatever clients do.
//! On shutdown it stops taking connections and lets the requests in flight finish.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::tls::{self, Acceptor, ClientCert};

/// Bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Open connections at most.
    pub max: usize,
    /// Time to send a request's headers (and a TLS handshake).
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            max: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// What a connection over the limit is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 72\r\nConnection: close\r\n\r\n{\"error\":{\"code\":\"service_unavailable\",\"message\":\"too many connections\"}}";

fn count(category: &'static str) {
    metrics::counter!("zen_watcher_errors_total", "component" => "http", "category" => category)
        .increment(1);
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Acceptor>,
    bounds: Connections,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        bounds.body_timeout,
    ));
    let reloading = tls.as_ref().map(Acceptor::watch);
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(bounds.max.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (mut tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait, rather than spin.
                    tracing::error!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            count("connection_limit");
            if tls.is_none() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(BUSY)).await;
                });
            }
            continue;
        };
        let (app, tls, watch) = (app.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            let served = match tls {
                None => connection(tcp, app, None, bounds, watch).await,
                Some(acceptor) => {
                    let handshake = acceptor.acceptor().accept(tcp);
                    let stream = match tokio::time::timeout(bounds.header_timeout, handshake).await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            count("tls");
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            count("tls");
                            return;
                        }
                    };
                    let cert = tls::client_cert(&stream, acceptor.settings().client_scope);
                    connection(stream, app, cert, bounds, watch).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    if let Some(task) = reloading {
        task.abort();
    }
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1.1 on one connection until it closes (or the shutdown ends it between requests);
/// each request carries the connection's client certificate.
async fn connection<S>(
    io: S,
    app: Router,
    cert: Option<ClientCert>,
    bounds: Connections,
    watch: hyper_util::server::graceful::Watcher,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(cert) = &cert {
                req.extensions_mut().insert(cert.clone());
            }
            let app = app.clone();
            async move {
                use tower::ServiceExt;
                app.oneshot(req.map(axum::body::Body::new)).await
            }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .serve_connection(TokioIo::new(io), service);
    watch.watch(conn).await
}
