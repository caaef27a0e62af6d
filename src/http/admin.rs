//! The admin listener: plain HTTP for `/metrics`, `/healthz`, `/readyz` and `/livez`, meant for
//! loopback or a management network (default 127.0.0.1:9464). Not on the public port unless
//! `admin.metrics_on_public_port` asks for it.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::response::{self, Body};
use super::router;
use crate::app::App;

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => router::metrics(&app).await,
        "/healthz" => router::health(&app).await,
        "/readyz" => router::ready(&app),
        "/livez" => response::text(200, "ok\n"),
        _ => response::text(
            404,
            "not found: try /metrics, /healthz, /readyz or /livez\n",
        ),
    }
}

pub async fn serve(app: Arc<App>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(app, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
