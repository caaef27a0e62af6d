//! The load generator: `connections` keep-alive HTTPS/1.1 connections, each sending its next
//! request as soon as the previous response has been read in full (a closed loop, like `wrk`),
//! for a warm-up and then a fixed measured duration.
//!
//! It is the same generator for the ceiling (`/livez`) and for every SCIM phase, so the ratios
//! compare the server's work and nothing else. Requests are made per send by a `MakeRequest`
//! closure that gets a run-wide sequence number, so bodies and URLs can be unique per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where to send requests, and how to authenticate.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    connector: TlsConnector,
    token: Option<Arc<str>>,
    /// The local address connections come from (loopback is all of 127/8): another client.
    local: Option<std::net::IpAddr>,
}

impl Target {
    /// A target that trusts exactly `cert` (the server's self-signed certificate for `localhost`).
    pub fn new(addr: SocketAddr, cert: CertificateDer<'static>) -> Result<Target> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).context("bench certificate")?;
        // The server's provider, named: dev-dependencies also enable ring, so there is no
        // single process default.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // HTTP/1.1 keep-alive, like wrk and oha's default.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Target {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
            token: None,
            local: None,
        })
    }

    /// The same target, with connections from `local` (e.g. 127.0.0.3: an attacker's address).
    pub fn from(&self, local: std::net::IpAddr) -> Target {
        Target {
            local: Some(local),
            ..self.clone()
        }
    }

    pub fn with_token(&self, token: &str) -> Target {
        Target {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// One TCP + TLS connection with an HTTP/1.1 handshake.
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = match self.local {
            None => TcpStream::connect(self.addr).await?,
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(self.addr).await?
            }
        };
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost")?;
        let tls = self.connector.connect(name, tcp).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Send one request on `sender`; returns the status and the whole body.
    pub async fn send(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: &Req,
    ) -> Result<(u16, Bytes)> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header("host", "localhost");
        if let Some(t) = &self.token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let custom = |name: &str| req.headers.iter().any(|(n, _)| *n == name);
        let body = match &req.body {
            Some(b) => {
                if !custom("content-type") {
                    builder = builder.header("content-type", "application/scim+json");
                }
                Full::new(b.clone())
            }
            None => Full::new(Bytes::new()),
        };
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        sender.ready().await?;
        let resp = sender.send_request(builder.body(body)?).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// A one-off request on a fresh connection.
    pub async fn once(&self, req: &Req) -> Result<(u16, Bytes)> {
        let mut sender = self.connect().await?;
        self.send(&mut sender, req).await
    }
}

/// One request: method, path with query, optional JSON body — and optionally a request that the
/// same connection sends right after it, untimed (P3 removes each member it added, so the groups
/// keep their sizes through the phase).
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
    pub then: Option<Box<Req>>,
    /// Extra headers (the OAuth phase's `Authorization: Basic` and form content type).
    pub headers: Vec<(&'static str, String)>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Req {
        Req {
            method: Method::GET,
            path: path.into(),
            body: None,
            then: None,
            headers: Vec::new(),
        }
    }

    pub fn with_body(method: Method, path: impl Into<String>, body: String) -> Req {
        Req {
            method,
            path: path.into(),
            body: Some(Bytes::from(body)),
            then: None,
            headers: Vec::new(),
        }
    }

    /// The same request with an extra header (replacing the default of the same name).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    /// Send `next` on the same connection once this request is answered; it is not timed and
    /// must answer with the phase's expected status too.
    pub fn then(self, next: Req) -> Req {
        Req {
            then: Some(Box::new(next)),
            ..self
        }
    }
}

/// Makes the request for run-wide sequence number `n` (0, 1, 2, … across all connections).
pub type MakeRequest = Arc<dyn Fn(u64) -> Req + Send + Sync>;

/// What one measured run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Requests completed inside the measured window with the expected status.
    pub ok: u64,
    /// Requests made in all, warm-up included (sequence numbers handed out).
    pub sent: u64,
    /// Responses received in all, warm-up included (for CPU time per request).
    pub completed: u64,
    /// Requests with another status or a transport error.
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// CPU seconds used during the run (warm-up included) by the server and by this generator;
    /// filled in by the caller.
    pub server_cpu_s: f64,
    pub client_cpu_s: f64,
    /// Whether the server was idle when the phase began (see `Running::settle`).
    pub settled: bool,
    /// Latencies of the `ok` requests in microseconds, sorted.
    latencies_us: Vec<u32>,
}

impl Outcome {
    /// An outcome measured outside `run` (the dashboard phase's sequential requests).
    pub fn from_latencies(
        mut latencies_us: Vec<u32>,
        elapsed: Duration,
        errors: u64,
        first_error: Option<String>,
    ) -> Outcome {
        latencies_us.sort_unstable();
        let ok = latencies_us.len() as u64;
        Outcome {
            ok,
            sent: ok + errors,
            completed: ok + errors,
            errors,
            first_error,
            elapsed,
            server_cpu_s: 0.0,
            client_cpu_s: 0.0,
            settled: true,
            latencies_us,
        }
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// One outcome of two runs of the same phase (slices of it): counts, time and CPU add up,
    /// latencies pool.
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.ok += other.ok;
        self.sent += other.sent;
        self.completed += other.completed;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.elapsed += other.elapsed;
        self.server_cpu_s += other.server_cpu_s;
        self.client_cpu_s += other.client_cpu_s;
        self.settled &= other.settled;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        self
    }

    /// The `q` quantile (0.0..=1.0) of latency, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Run the closed loop: connect every connection first, then send for `warmup` (not recorded)
/// and `duration` (recorded). A request counts when its response is complete inside the window.
pub async fn run(
    target: &Target,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    expect: u16,
    make: MakeRequest,
) -> Result<Outcome> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(target.connect().await?);
    }
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(connections);
    for mut sender in senders {
        let (target, make, seq) = (target.clone(), make.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let (mut errors, mut first_error) = (0u64, None::<String>);
            let mut completed = 0u64;
            loop {
                let req = make(seq.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = target.send(&mut sender, &req).await;
                let done = Instant::now();
                completed += 1;
                let counted = sent >= measure_from && done <= end;
                let result = match (result, &req.then) {
                    (Ok((status, _)), Some(next)) if status == expect => {
                        completed += 1;
                        match target.send(&mut sender, next).await {
                            Ok((status, body)) if status != expect => {
                                Err((&**next, Ok((status, body))))
                            }
                            Ok(_) => Ok(status),
                            Err(e) => Err((&**next, Err(e))),
                        }
                    }
                    (Ok((status, _)), _) if status == expect => Ok(status),
                    (other, _) => Err((&req, other)),
                };
                match result {
                    Ok(_) => {
                        if counted {
                            let us = done.duration_since(sent).as_micros();
                            lat.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                    }
                    Err((failed, Ok((status, body)))) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!(
                                "{} {} -> {status}: {}",
                                failed.method,
                                failed.path,
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )
                        });
                    }
                    Err((failed, Err(e))) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("{} {}: {e:#}", failed.method, failed.path)
                        });
                        // The connection is gone: reconnect rather than lose this slot.
                        match target.connect().await {
                            Ok(s) => sender = s,
                            Err(_) => break,
                        }
                    }
                }
            }
            (lat, errors, first_error, completed)
        }));
    }
    let mut out = Outcome {
        ok: 0,
        sent: 0,
        completed: 0,
        errors: 0,
        first_error: None,
        elapsed: duration,
        server_cpu_s: 0.0,
        client_cpu_s: 0.0,
        settled: true,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (lat, errors, first_error, completed) =
            t.await.map_err(|e| anyhow!("load task: {e}"))?;
        out.completed += completed;
        out.latencies_us.extend(lat);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
    }
    out.ok = out.latencies_us.len() as u64;
    out.sent = seq.load(Ordering::Relaxed);
    out.latencies_us.sort_unstable();
    Ok(out)
}
