//! The accept loop: one hyper HTTP/1.1 connection per client, plain or behind a TLS handshake,
//! each request carrying the client's address (`ConnectInfo`) for logs, history and audit.
//! The same loop serves either front (`http` backend or S3), so both get the same TLS,
//! limits and graceful shutdown.
//!
//! Slow clients are bounded here: the TLS handshake and the request head must each arrive
//! within the header timeout, and the head may not exceed [`MAX_HEADER_BYTES`] (hyper answers
//! 431). Request bodies are bounded by the HTTP layer (`--max-state-size`, `--body-timeout`).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use statelock_http::auth::ClientCertificate;
use statelock_http::s3::S3Front;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::{MAX_HEADER_BYTES, MAX_HEADERS, Transport};

/// Longest graceful shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// What a listener serves: the `http` backend and JSON API, or the S3 front.
#[derive(Clone, Debug)]
pub enum Front {
    Http(Router),
    S3(S3Front),
}

impl Front {
    async fn answer(self, request: hyper::Request<Incoming>) -> Response {
        match self {
            Front::Http(app) => match app.oneshot(request.map(axum::body::Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Front::S3(front) => front.handle(request).await,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Front,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let acceptor = transport.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are written as soon as they are ready (a streamed state's headers, then its
        // chunks): without this, Nagle's algorithm holds a small last segment back until the
        // client's delayed ACK, some 40 ms, on every such answer over a kept-alive connection.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let timeout = transport.header_timeout;
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return run_connection(tcp, remote, None, app, timeout, watcher).await;
            };
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    // Present only when verified against --tls-client-ca.
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| ClientCertificate::from_der(leaf));
                    run_connection(tls, remote, certificate, app, timeout, watcher).await;
                }
                Ok(Err(e)) => tracing::info!(%remote, %e, "TLS handshake refused"),
                Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {}s; stopping anyway",
            DRAIN.as_secs()
        );
    }
}

async fn run_connection<I>(
    io: I,
    remote: SocketAddr,
    certificate: Option<ClientCertificate>,
    app: Front,
    header_timeout: Duration,
    watcher: Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        if let Some(certificate) = certificate {
            request.extensions_mut().insert(certificate);
        }
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(app.answer(request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    if let Err(e) = watcher
        .watch(builder.serve_connection(TokioIo::new(io), service))
        .await
    {
        tracing::debug!(%remote, %e, "connection ended with an error");
    }
}
