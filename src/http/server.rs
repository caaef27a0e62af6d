//! The listener: accept TCP, TLS handshake with a timeout inside each connection's task, serve
//! HTTP/1.1 or h2 (ALPN), and shut down gracefully — stop accepting, let in-flight requests
//! finish within a grace period, then return so the caller can flush the writer.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::router;
use crate::app::App;
use crate::budget::ConnectionCounts;

/// Serve until `shutdown` turns true. `tls` is None when TLS is terminated by a proxy.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = app.config.limits.clone();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = ConnectionCounts::new(limits.max_connections_per_address);
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        // A trusted reverse proxy carries many clients on its connections: its requests are
        // limited per client address instead (`client_addr`), not per connection.
        let slot = if is_trusted(&app.settings.trusted_proxies, peer.ip()) {
            None
        } else {
            match per_address.admit(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, "connections per address reached; closing new connection");
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            peer,
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            conn.run(stream, tls).await;
        });
    }
    drop(listener);
    // Every connection task holds a permit until it ends: all permits back = all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(limits.shutdown_grace_secs)) => {
            tracing::warn!("grace period over; closing remaining connections")
        }
    }
}

fn is_trusted(proxies: &[ipnet::IpNet], addr: std::net::IpAddr) -> bool {
    proxies.iter().any(|p| p.contains(&addr))
}

/// One accepted connection.
struct Connection {
    app: Arc<App>,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, tls: Option<TlsAcceptor>) {
        let limits = &self.app.config.limits;
        let handshake_timeout = Duration::from_secs(limits.handshake_timeout_secs);
        let header_timeout = Duration::from_secs(limits.header_read_timeout_secs);
        let peer = self.peer;
        match tls {
            Some(acceptor) => {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        self.serve(FirstByteDeadline::new(tls_stream, header_timeout))
                            .await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
            None => {
                self.serve(FirstByteDeadline::new(stream, header_timeout))
                    .await
            }
        }
    }

    /// HTTP/1 or HTTP/2 on the stream until the client closes, the connection has been idle
    /// (no request in flight) for `limits.idle_timeout_secs`, or the server stops. Both end
    /// with a graceful shutdown: requests in flight finish, then the connection closes.
    async fn serve<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            peer,
            mut shutdown,
        } = self;
        let limits = app.config.limits.clone();
        let header_timeout = Duration::from_secs(limits.header_read_timeout_secs);
        let idle_timeout = Duration::from_secs(limits.idle_timeout_secs);
        let activity = Arc::new(Activity::new());
        let seen = activity.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let busy = seen.begin();
            async move {
                let resp = router::handle(app, req, peer.ip()).await;
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(limits.max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_bytes as u32)
            // Pings find a peer that vanished without closing; the idle timeout below closes
            // one that is there but sends nothing.
            .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut closing = false;
        let mut tick = tokio::time::interval(idle_timeout / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A graceful HTTP/2 close waits for the client to answer a ping: one that does not
        // is dropped after this long.
        let give_up = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(give_up);
        let result = loop {
            tokio::select! {
                result = conn.as_mut() => break result,
                _ = shutdown.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                    let grace = Duration::from_secs(limits.shutdown_grace_secs);
                    give_up.as_mut().reset(tokio::time::Instant::now() + grace);
                }
                _ = tick.tick(), if !closing => {
                    if activity.idle_for() >= idle_timeout {
                        tracing::debug!(%peer, "idle connection closed");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                        give_up.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                }
                _ = &mut give_up, if closing => {
                    tracing::debug!(%peer, "connection did not close gracefully; dropped");
                    return;
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long an idle connection being closed may take to say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Requests in flight on a connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    since: std::sync::Mutex<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            since: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// How long no request has been in flight (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        self.since.lock().map(|t| t.elapsed()).unwrap_or_default()
    }
}

/// A request in flight; when it ends, the connection's idle time starts over.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.since.lock() {
            *t = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// A stream whose reads fail with `TimedOut` if no byte arrives within the deadline.
///
/// hyper's header-read timer starts with the first byte of a request, so a client that completes
/// the TLS handshake and then stays silent would hold a connection slot forever; 1024 of them
/// would lock everyone out. After the first byte, hyper's own timers take over.
struct FirstByteDeadline<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FirstByteDeadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        FirstByteDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request from the client",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
