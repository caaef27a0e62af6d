//! Where a federated client's verification keys come from: a JWKS file or an `https://` URL,
//! read on demand and cached, so a token request costs no I/O in the usual case.
//!
//! - A file is stat'ed on each use and read again (at most `MAX_JWKS_BYTES`) when its size or
//!   modification time changed; a file that stops parsing keeps the keys it had.
//! - A URL is fetched (HTTP/1.1 over rustls with Mozilla's roots compiled in, no redirects,
//!   `fetch_timeout` for the whole exchange, body at most `MAX_JWKS_BYTES`) the first time it
//!   is needed; after `refresh_every` it is fetched again in the background while requests go on
//!   with the keys in hand. An assertion naming a `kid` the keys lack fetches at once (at most
//!   once per `MIN_REFETCH`): keys rotate. A failed fetch keeps the last good keys. One fetch
//!   per URL runs at a time; a request waits at most `fetch_timeout` for one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use rustls::pki_types::ServerName;

use super::assertion::{KeySet, MAX_JWKS_BYTES};

/// How long fetched keys are used before they are fetched again (in the background).
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// The longest one fetch may take, connection and TLS handshake included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Fetches of one URL are at least this far apart, except the first.
pub const MIN_REFETCH: Duration = Duration::from_secs(60);
/// After a failed fetch with no keys at all, requests are refused this long without trying.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(10);
/// Sources remembered at most (one per federated client); past it the memory starts over.
const MAX_SOURCES: usize = 256;

/// A JWKS location as configured (`client federate --jwks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Https { uri: Uri, host: String, port: u16 },
}

impl JwksSource {
    /// An absolute file path, or an `https://` URL (`http://` is refused: the keys are what
    /// authenticates the client).
    pub fn parse(text: &str) -> Result<JwksSource, String> {
        if text.starts_with('/') {
            return Ok(JwksSource::File(PathBuf::from(text)));
        }
        let lower = text.to_ascii_lowercase();
        if !lower.starts_with("https://") {
            return Err(format!(
                "the JWKS must be an absolute file path or an https:// URL, not {text:?}"
            ));
        }
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("not a URL: {text:?} ({e})"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("no host in {text:?}"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "no user name or password in the JWKS URL: {text:?}"
            ));
        }
        let host = authority.host().trim_matches(['[', ']']).to_string();
        if host.is_empty() {
            return Err(format!("no host in {text:?}"));
        }
        let port = authority.port_u16().unwrap_or(443);
        Ok(JwksSource::Https { uri, host, port })
    }
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// Last successful fetch (URL).
    fetched: Option<Instant>,
    /// Last fetch attempt, successful or not (URL).
    attempted: Option<Instant>,
    /// Size and mtime of the file when last read (file).
    stamp: Option<(u64, SystemTime)>,
    refreshing: bool,
}

struct Source {
    location: JwksSource,
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

/// The key sets of every configured JWKS, by their location's text.
pub struct Jwks {
    sources: Mutex<HashMap<String, Arc<Source>>>,
    tls: Arc<rustls::ClientConfig>,
    refresh_every: Duration,
    fetch_timeout: Duration,
}

impl Default for Jwks {
    fn default() -> Self {
        Jwks::with_roots(mozilla_roots(), REFRESH_EVERY, FETCH_TIMEOUT)
    }
}

fn mozilla_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// The trust anchors of JWKS fetches: Mozilla's roots, plus every certificate of
/// `oauth.jwks_ca_file` when set (a file without one is an error).
pub fn trust_anchors(ca_file: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
    use anyhow::Context;
    use rustls::pki_types::pem::PemObject;
    let mut roots = mozilla_roots();
    let Some(path) = ca_file else {
        return Ok(roots);
    };
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read oauth.jwks_ca_file {}", path.display()))?;
    let mut added = 0;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| anyhow::anyhow!("oauth.jwks_ca_file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("oauth.jwks_ca_file {}", path.display()))?;
        added += 1;
    }
    if added == 0 {
        anyhow::bail!(
            "oauth.jwks_ca_file {} holds no PEM certificate",
            path.display()
        );
    }
    Ok(roots)
}

impl Jwks {
    /// A cache trusting `roots` for HTTPS (tests: their own CA).
    pub fn with_roots(
        roots: rustls::RootCertStore,
        refresh_every: Duration,
        fetch_timeout: Duration,
    ) -> Jwks {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            // The default provider supports the default versions; never reached.
            .unwrap_or_else(|_| {
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        Jwks {
            sources: Mutex::new(HashMap::new()),
            tls: Arc::new(tls),
            refresh_every,
            fetch_timeout,
        }
    }

    fn source(&self, location: &str) -> Option<Arc<Source>> {
        let mut map = self.sources.lock().ok()?;
        if let Some(s) = map.get(location) {
            return Some(s.clone());
        }
        let parsed = match JwksSource::parse(location) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "a federated client's JWKS location is not usable");
                return None;
            }
        };
        if map.len() >= MAX_SOURCES {
            map.clear();
        }
        let s = Arc::new(Source {
            location: parsed,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        });
        map.insert(location.to_string(), s.clone());
        Some(s)
    }

    /// The keys at `location`, or None when none could ever be had.
    pub async fn keys(&self, location: &str) -> Option<Arc<KeySet>> {
        let source = self.source(location)?;
        match &source.location {
            JwksSource::File(path) => read_file(&source, path.clone()).await,
            JwksSource::Https { .. } => {
                let (keys, fetched, attempted, refreshing) = {
                    let s = source.state.lock().ok()?;
                    (s.keys.clone(), s.fetched, s.attempted, s.refreshing)
                };
                let Some(keys) = keys else {
                    if attempted.is_some_and(|a| a.elapsed() < RETRY_WITHOUT_KEYS) {
                        return None;
                    }
                    return self.fetch(&source, Instant::now()).await;
                };
                let stale = fetched.is_none_or(|f| f.elapsed() >= self.refresh_every);
                let may_try = attempted.is_none_or(|a| a.elapsed() >= MIN_REFETCH);
                if stale && may_try && !refreshing {
                    self.refresh_in_background(source);
                }
                Some(keys)
            }
        }
    }

    /// The keys after an assertion named a `kid` they lack: a file is read again if it
    /// changed; a URL is fetched now unless it was tried within `MIN_REFETCH`.
    pub async fn keys_after_unknown_kid(&self, location: &str) -> Option<Arc<KeySet>> {
        let source = self.source(location)?;
        match &source.location {
            JwksSource::File(path) => read_file(&source, path.clone()).await,
            JwksSource::Https { .. } => {
                let (keys, attempted) = {
                    let s = source.state.lock().ok()?;
                    (s.keys.clone(), s.attempted)
                };
                if attempted.is_some_and(|a| a.elapsed() < MIN_REFETCH) {
                    return keys;
                }
                self.fetch(&source, Instant::now()).await
            }
        }
    }

    fn refresh_in_background(&self, source: Arc<Source>) {
        if let Ok(mut s) = source.state.lock() {
            s.refreshing = true;
        }
        let tls = self.tls.clone();
        let timeout = self.fetch_timeout;
        tokio::spawn(async move {
            fetch_into(&source, &tls, timeout, Instant::now()).await;
            if let Ok(mut s) = source.state.lock() {
                s.refreshing = false;
            }
        });
    }

    async fn fetch(&self, source: &Source, asked: Instant) -> Option<Arc<KeySet>> {
        fetch_into(source, &self.tls, self.fetch_timeout, asked).await
    }
}

/// Fetch `source` (one fetch at a time; if another finished while this one waited, its
/// result stands) and return the keys it has now.
async fn fetch_into(
    source: &Source,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
    asked: Instant,
) -> Option<Arc<KeySet>> {
    let JwksSource::Https { uri, host, port } = &source.location else {
        return None;
    };
    let Ok(_one) = tokio::time::timeout(timeout, source.fetching.lock()).await else {
        return source.state.lock().ok()?.keys.clone();
    };
    {
        let mut s = source.state.lock().ok()?;
        if s.attempted.is_some_and(|a| a >= asked) {
            return s.keys.clone();
        }
        s.attempted = Some(Instant::now());
    }
    let fetched = tokio::time::timeout(timeout, get(uri, host, *port, tls.clone()))
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
        .and_then(|body| KeySet::from_jwks(&body));
    let mut s = source.state.lock().ok()?;
    match fetched {
        Ok(keys) => {
            tracing::info!(url = %uri, keys = keys.len(), "fetched a JWKS");
            s.keys = Some(Arc::new(keys));
            s.fetched = Some(Instant::now());
        }
        Err(e) => {
            let kept = s.keys.is_some();
            tracing::warn!(url = %uri, error = %e, kept_last_keys = kept, "cannot fetch a JWKS");
        }
    }
    s.keys.clone()
}

/// GET an `https://` URL: HTTP/1.1, no redirects, 200 only, body at most `MAX_JWKS_BYTES`.
async fn get(
    uri: &Uri,
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Bytes, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::USER_AGENT, "grouptalk-scim")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP status {}", resp.status()));
        }
        Limited::new(resp.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| format!("body: {e}"))
    };
    // The connection is driven alongside the exchange and ends with it: no task outlives it.
    let (body, _) = tokio::join!(exchange, conn);
    body
}

/// Read a JWKS file again when its size or mtime changed; keep the last good keys otherwise.
async fn read_file(source: &Arc<Source>, path: PathBuf) -> Option<Arc<KeySet>> {
    let src = source.clone();
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path);
        let mut s = src.state.lock().ok()?;
        let stamp = match meta {
            Ok(m) => (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
            Err(e) => {
                if s.stamp.take().is_some() || s.keys.is_none() {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read a JWKS file");
                }
                return s.keys.clone();
            }
        };
        if s.stamp == Some(stamp) {
            return s.keys.clone();
        }
        s.stamp = Some(stamp);
        let read = read_bounded(&path).and_then(|b| KeySet::from_jwks(&b));
        match read {
            Ok(keys) => s.keys = Some(Arc::new(keys)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, kept_last_keys = s.keys.is_some(),
                    "cannot use a JWKS file");
            }
        }
        s.keys.clone()
    })
    .await
    .ok()
    .flatten()
}

fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn jwks_doc() -> String {
        let pair = rcgen::KeyPair::generate().unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)
            .unwrap();
        serde_json::json!({ "keys": [jwk] }).to_string()
    }

    #[test]
    fn locations_are_absolute_files_or_https_urls() {
        assert_eq!(
            JwksSource::parse("/etc/grouptalk-scim/entra.jwks.json"),
            Ok(JwksSource::File(
                "/etc/grouptalk-scim/entra.jwks.json".into()
            ))
        );
        match JwksSource::parse("https://login.example:8443/t/discovery/v2.0/keys?x=1").unwrap() {
            JwksSource::Https { uri, host, port } => {
                assert_eq!((host.as_str(), port), ("login.example", 8443));
                assert_eq!(
                    uri.path_and_query().unwrap().as_str(),
                    "/t/discovery/v2.0/keys?x=1"
                );
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "http://login.example/keys",
            "keys.json",
            "./keys.json",
            "https://",
            "https://user:pw@login.example/keys",
            "ftp://x/y",
            "",
        ] {
            assert!(JwksSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ca_file_adds_its_certificates_to_mozillas_roots_or_is_refused() {
        let base = trust_anchors(None).unwrap().len();
        assert!(base > 100, "Mozilla's roots: {base}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["idp.internal".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        assert_eq!(trust_anchors(Some(&ca)).unwrap().len(), base + 1);
        let e = trust_anchors(Some(&dir.path().join("missing.pem")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read oauth.jwks_ca_file"), "{e}");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = trust_anchors(Some(&ca)).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    #[tokio::test]
    async fn a_file_is_read_again_when_it_changes_and_a_broken_one_keeps_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let loc = path.to_str().unwrap().to_string();
        let jwks = Jwks::default();
        assert!(jwks.keys(&loc).await.is_none(), "missing file");
        std::fs::write(&path, jwks_doc()).unwrap();
        let first = jwks.keys(&loc).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &jwks.keys(&loc).await.unwrap()),
            "cached"
        );
        std::fs::write(&path, format!("{} ", jwks_doc())).unwrap();
        let second = jwks.keys(&loc).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "re-read after a change");
        std::fs::write(&path, "{\"keys\": [] }  ").unwrap();
        let kept = jwks.keys(&loc).await.unwrap();
        assert!(
            Arc::ptr_eq(&second, &kept),
            "a broken file keeps the last keys"
        );
        assert!(jwks.keys("relative.json").await.is_none());
    }

    /// A one-certificate HTTPS server on loopback answering each request from `reply`.
    struct TestServer {
        port: u16,
        hits: Arc<AtomicUsize>,
        roots: rustls::RootCertStore,
    }

    async fn https_server(
        reply: impl Fn(usize) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> TestServer {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let k = tls.read(&mut buf).await.unwrap_or(0);
                        if k == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..k]);
                    }
                    // None: hang (a server that never answers).
                    let Some((status, body)) = reply(n) else {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(body.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TestServer { port, hits, roots }
    }

    #[tokio::test]
    async fn a_url_is_fetched_cached_refreshed_in_the_background_and_kept_when_unreachable() {
        let doc = jwks_doc();
        // 1st: the keys; 2nd: a 500; 3rd: hangs; 4th: too large; then the keys again.
        let server = https_server(move |n| match n {
            0 | 4.. => Some((200, doc.clone())),
            1 => Some((500, "oops".into())),
            2 => None,
            _ => Some((
                200,
                format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(70_000)),
            )),
        })
        .await;
        let url = format!("https://localhost:{}/keys", server.port);
        let jwks = Jwks::with_roots(
            server.roots.clone(),
            Duration::ZERO, // always stale: every use may refresh
            Duration::from_millis(500),
        );
        let first = jwks.keys(&url).await.expect("first fetch");
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        // Stale, but fetched within MIN_REFETCH: no new fetch, the same keys at once.
        let again = jwks.keys(&url).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        // Past MIN_REFETCH (simulated): a refresh starts in the background, the answer does not
        // wait for it — even when the server fails, hangs or sends too much.
        for expect_hits in [2, 3, 4] {
            jwks.source(&url).unwrap().state.lock().unwrap().attempted =
                Instant::now().checked_sub(MIN_REFETCH * 2);
            let started = Instant::now();
            let kept = jwks.keys(&url).await.unwrap();
            assert!(started.elapsed() < Duration::from_millis(200));
            assert!(Arc::ptr_eq(&first, &kept));
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(server.hits.load(Ordering::SeqCst), expect_hits);
            let after = jwks.keys(&url).await.unwrap();
            assert!(Arc::ptr_eq(&first, &after), "the last good keys are kept");
        }
        // An unknown kid fetches at once (past MIN_REFETCH): new keys.
        jwks.source(&url).unwrap().state.lock().unwrap().attempted =
            Instant::now().checked_sub(MIN_REFETCH * 2);
        let rotated = jwks.keys_after_unknown_kid(&url).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &rotated));
        assert_eq!(server.hits.load(Ordering::SeqCst), 5);
        // ... but not twice within MIN_REFETCH.
        let same = jwks.keys_after_unknown_kid(&url).await.unwrap();
        assert!(Arc::ptr_eq(&rotated, &same));
        assert_eq!(server.hits.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_or_a_dead_url_gives_no_keys_and_is_not_hammered() {
        let doc = jwks_doc();
        let server = https_server(move |_| Some((200, doc.clone()))).await;
        let url = format!("https://localhost:{}/keys", server.port);
        // Mozilla's roots do not include the test's self-signed certificate.
        let jwks = Jwks::default();
        assert!(jwks.keys(&url).await.is_none());
        assert!(jwks.keys(&url).await.is_none());
        assert_eq!(server.hits.load(Ordering::SeqCst), 1, "not retried at once");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = Instant::now();
        assert!(jwks
            .keys(&format!("https://localhost:{closed}/k"))
            .await
            .is_none());
        assert!(started.elapsed() < FETCH_TIMEOUT);
    }
}
