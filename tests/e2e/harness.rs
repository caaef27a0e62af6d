//! The test harness: start the real `grouptalk-scim` binary on a loopback port with a temporary
//! data dir and a fresh TLS certificate, issue tokens through its CLI, and talk to it over HTTPS
//! with a client that verifies the certificate.
//!
//! Most tests start from [`TenantCtx::start`] (a running server, one tenant, a token for it) and
//! talk SCIM through [`Scim`]; tests that shape the config or the data dir first use
//! [`TenantCtx::start_with`] or [`Server::prepare`] + [`Server::spawn`]. Every request goes
//! through the one client set up in `spawn`: [`Scim`] for a test's own requests, [`ScimClient`]
//! for threads and for requests that may find the server gone, [`Server::raw_tls`] for
//! hand-made bytes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grouptalk_scim::scim::schema::{ENTERPRISE_USER, GROUPTALK_USER, PATCH_OP, USER};
use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_grouptalk-scim");
pub const SCIM_JSON: &str = "application/scim+json";

/// How long `spawn` waits for `serve --ready-file` to report the bound addresses.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server {
    pub dir: tempfile::TempDir,
    /// The public (HTTPS) listener, from the ready file of the latest `spawn`.
    pub addr: SocketAddr,
    /// The admin (HTTP: /metrics, health) listener, when the config has one (the default config
    /// of these tests does).
    pub admin_addr: Option<SocketAddr>,
    pub config: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread copying the running process's stderr into `log`.
    log_reader: Option<std::thread::JoinHandle<()>>,
    client: Client,
    /// Extra environment for the server process (set by `start_with`).
    env: Vec<(String, String)>,
}

/// Poll for the file `serve --ready-file` writes (atomically: present means complete) for up to
/// `READY_TIMEOUT`; returns the public and admin addresses in it. Err when the process exits
/// first, the time passes, or the file is not what `serve` writes.
fn wait_until_ready(
    child: &mut Child,
    ready: &Path,
) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match std::fs::read_to_string(ready) {
            Ok(text) => {
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("ready file {ready:?}: {e}: {text:?}"))?;
                let addr = |key: &str| -> Result<Option<SocketAddr>, String> {
                    v[key]
                        .as_str()
                        .map(|a| {
                            a.parse()
                                .map_err(|e| format!("ready file {key}: {e}: {text:?}"))
                        })
                        .transpose()
                };
                let public = addr("public")?
                    .ok_or_else(|| format!("ready file without \"public\": {text:?}"))?;
                return Ok((public, addr("admin")?));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("read {ready:?}: {e}")),
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("server exited ({status}) before it was ready"));
        }
        if Instant::now() > deadline {
            return Err(format!("server not ready after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Write a config file for a server in `dir` listening on an OS-chosen port.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}/data\"\n{extra}\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    config
}

impl Server {
    pub fn start() -> Server {
        Server::start_with("", &[])
    }

    /// Start with extra top-level config (TOML placed before `[server]`, so it may open its own
    /// tables such as `[limits]`) and extra environment for the server process.
    pub fn start_with(extra_config: &str, env: &[(&str, &str)]) -> Server {
        let mut s = Server::prepare(extra_config, env);
        s.spawn();
        s
    }

    /// Like `start_with`, but without starting the process: the test can shape the data dir
    /// first, then call `spawn`.
    pub fn prepare(extra_config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), extra_config);
        Server {
            addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: None,
            config,
            child: None,
            log: Default::default(),
            log_reader: None,
            client: Client::new(),
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Start (or restart) the process and wait until it is listening: `serve --ready-file`
    /// writes the bound addresses once both listeners are up. Its stderr is collected into
    /// `log_lines`.
    pub fn spawn(&mut self) {
        let ready = self.dir.path().join("ready.json");
        // A file left by the previous run of this server would report its old ports.
        if let Err(e) = std::fs::remove_file(&ready) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::NotFound,
                "remove {ready:?}: {e}"
            );
        }
        let mut child = Command::new(BIN)
            .args([
                "--config",
                self.config.to_str().unwrap(),
                "serve",
                "--ready-file",
            ])
            .arg(&ready)
            .env("RUST_LOG", "info")
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server");
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        let (public, admin) = match wait_until_ready(&mut child, &ready) {
            Ok(addrs) => addrs,
            Err(failure) => {
                // Once the process is gone its stderr ends, and the reader has every line.
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                panic!("{failure}; stderr:\n{}", self.log_lines().join("\n"));
            }
        };
        self.addr = public;
        self.admin_addr = admin;
        let cert = std::fs::read(self.dir.path().join("cert.pem")).unwrap();
        self.client = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
            .resolve("localhost", self.addr)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        self.child = Some(child);
        self.log_reader = Some(reader);
    }

    /// After the process exited: wait for the last of its stderr, so `log_lines` is complete.
    fn finish_log(&mut self) {
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
    }

    /// SIGTERM, and wait for the process to exit (and for the last of its log lines).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
            self.finish_log();
        }
    }

    /// SIGKILL: the process gets no chance to flush or clean up (a power cut, an OOM kill).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.finish_log();
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("grouptalk-scim.db")
    }

    /// Open the database file read-only, the way an auditor would after a crash: nothing is
    /// recovered into or checkpointed onto the files.
    pub fn open_db_read_only(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` of the file on disk: both must
    /// be clean. Panics with what SQLite reports otherwise.
    pub fn assert_db_intact(&self) {
        let conn = self.open_db_read_only();
        let report: Vec<String> = conn
            .prepare("PRAGMA integrity_check")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(report, ["ok"], "integrity_check of {:?}", self.db_path());
        let dangling: usize = conn
            .prepare("PRAGMA foreign_key_check")
            .unwrap()
            .query_map([], |_| Ok(()))
            .unwrap()
            .count();
        assert_eq!(dangling, 0, "foreign_key_check found dangling rows");
    }

    /// Run `serve` on this server's config when it is expected to refuse to start: waits up to
    /// `within` for the process to exit and returns (exit code, stderr). Panics if it is still
    /// running by then (it started when it should have refused).
    pub fn serve_expecting_refusal(&self, within: Duration) -> (i32, String) {
        let mut child = Command::new(BIN)
            .args(["--config", self.config.to_str().unwrap(), "serve"])
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let deadline = std::time::Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve kept running for {within:?}; it should have refused to start. stderr: {}",
                    reader.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code().unwrap_or(-1), reader.join().unwrap())
    }

    /// The client TLS configuration a raw test connection uses: trusts this server's
    /// certificate, offers only HTTP/1.1 (so raw bytes are read as HTTP/1.1).
    pub fn tls_client_config(&self) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(self.dir.path().join("cert.pem")).unwrap();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A raw TLS connection with the handshake completed, for sending hand-made bytes.
    /// Reads time out after `read_timeout`.
    pub fn raw_tls(&self, read_timeout: Duration) -> RawTls {
        let tcp = std::net::TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(read_timeout)).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.tls_client_config(), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Run a CLI command against this server's config; returns (status ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Create a tenant and issue a token for it; returns the token.
    pub fn tenant_token(&self, tenant: &str) -> String {
        let (ok, _, err) = self.cli(&["tenant", "create", tenant]);
        assert!(ok, "tenant create: {err}");
        self.token(tenant)
    }

    pub fn token(&self, tenant: &str) -> String {
        let (ok, out, err) = self.cli(&["token", "issue", "--tenant", tenant]);
        assert!(ok, "token issue: {err}");
        out.lines().last().unwrap().trim().to_string()
    }

    /// A URL under the SCIM base path (`/api/scim`) on the public listener.
    pub fn url(&self, path: &str) -> String {
        self.public_url(&format!("/api/scim{path}"))
    }

    /// A URL on the public listener outside the SCIM base path (`/healthz`, `/metrics`, …).
    pub fn public_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A URL on the admin listener (plain HTTP). Panics when the admin listener is off.
    pub fn admin_url(&self, path: &str) -> String {
        let addr = self
            .admin_addr
            .expect("the admin listener is off in this server's config");
        format!("http://{addr}{path}")
    }

    /// The client every request of a test goes through: trusts this server's certificate and
    /// resolves `localhost` to its port.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn as_tenant<'a>(&'a self, token: &'a str) -> Scim<'a> {
        Scim {
            server: self,
            token,
        }
    }

    /// An owned client for one token, for threads (it does not borrow the server, which can be
    /// killed and restarted meanwhile) and for requests that may find the server gone. A
    /// restart changes the port: take a new one after `spawn`.
    pub fn scim_client(&self, token: &str) -> ScimClient {
        ScimClient {
            client: self.client.clone(),
            base: self.url(""),
            token: token.to_string(),
        }
    }
}

/// The setup almost every test starts from: a running server with one tenant and a token for
/// it. Tests that only talk SCIM take `ctx.scim()`; tests that also drive the server or use the
/// token destructure it: `let TenantCtx { server, token } = TenantCtx::start("acme");`.
pub struct TenantCtx {
    pub server: Server,
    pub token: String,
}

impl TenantCtx {
    /// `Server::start()`, then `tenant create` and `token issue` for `tenant`.
    pub fn start(tenant: &str) -> TenantCtx {
        TenantCtx::start_with(tenant, "", &[])
    }

    /// Like `start`, on `Server::start_with(extra_config, env)`.
    pub fn start_with(tenant: &str, extra_config: &str, env: &[(&str, &str)]) -> TenantCtx {
        let server = Server::start_with(extra_config, env);
        let token = server.tenant_token(tenant);
        TenantCtx { server, token }
    }

    /// The SCIM client for the tenant's token.
    pub fn scim(&self) -> Scim<'_> {
        self.server.as_tenant(&self.token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub type RawTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// One HTTP/1.1 response parsed from raw bytes.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// What came back on a raw connection: the complete responses, and whether the server closed
/// the connection (clean EOF or reset) before the read timeout.
#[derive(Debug)]
pub struct RawOutcome {
    pub responses: Vec<RawResponse>,
    pub closed: bool,
    pub trailing: Vec<u8>,
}

/// Read everything the server sends until it closes the connection or `read_timeout` (set on
/// the socket) passes without data, and split it into responses (Content-Length framed; our
/// server always sends one).
pub fn read_responses(stream: &mut impl std::io::Read) -> RawOutcome {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            // Reset, or a TLS close without close_notify: the server hung up.
            Err(_) => break true,
        }
    };
    let mut responses = Vec::new();
    let mut rest = &bytes[..];
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let body_end = (end + 4 + len).min(rest.len());
        responses.push(RawResponse {
            status,
            head,
            body: rest[end + 4..body_end].to_vec(),
        });
        rest = &rest[body_end..];
    }
    RawOutcome {
        responses,
        closed,
        trailing: rest.to_vec(),
    }
}

/// A SCIM client bound to one tenant's token.
pub struct Scim<'a> {
    pub server: &'a Server,
    pub token: &'a str,
}

/// A response read whole: status, headers we check, and JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// Read a response whole; a body that cannot be read counts as empty.
pub fn reply(resp: Response) -> Reply {
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().unwrap_or_default();
    reply_from(status, headers, &text)
}

/// Read a response whole; Err when the body cannot be read (cut off: the reply was not
/// received).
fn try_reply(resp: Response) -> Result<Reply, String> {
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().map_err(|e| e.to_string())?;
    Ok(reply_from(status, headers, &text))
}

/// The body as JSON: Null when empty, a JSON string holding the text when it is not JSON.
fn reply_from(status: u16, headers: reqwest::header::HeaderMap, text: &str) -> Reply {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
    };
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

/// A request with the bearer token and, when there is one, a SCIM JSON body: what [`Scim`] and
/// [`ScimClient`] both send.
fn scim_request(
    client: &Client,
    url: String,
    token: &str,
    method: &str,
    body: Option<&Value>,
) -> RequestBuilder {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let req = client.request(m, url).bearer_auth(token);
    match body {
        Some(b) => req.header("content-type", SCIM_JSON).body(b.to_string()),
        None => req,
    }
}

impl Scim<'_> {
    /// A request with the token and nothing else, for headers or bodies of the test's own
    /// making; send it and read it with [`reply`].
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        scim_request(
            self.server.client(),
            self.server.url(path),
            self.token,
            method,
            None,
        )
    }
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let req = scim_request(
            self.server.client(),
            self.server.url(path),
            self.token,
            method,
            body,
        );
        reply(req.send().unwrap())
    }
    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }
    pub fn send(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.call(method, path, Some(body))
    }
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, body)
    }
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, body)
    }
    pub fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send("PATCH", path, body)
    }
    pub fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None)
    }
    /// A body that is not a JSON value (malformed, invalid UTF-8, too deep to build as one) or
    /// that goes with another content type.
    pub fn send_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> Reply {
        reply(
            self.request(method, path)
                .header("content-type", content_type)
                .body(body)
                .send()
                .unwrap(),
        )
    }
    /// GET with a raw (already encoded) query string.
    pub fn get_query(&self, path: &str, query: &str) -> Reply {
        self.get(&format!("{path}?{query}"))
    }
    /// GET /Users?filter=… with the filter encoded the way Entra does (`+` for spaces).
    pub fn filter(&self, path: &str, filter: &str) -> Reply {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", filter)
            .finish();
        self.get_query(path, &q)
    }
}

/// An owned SCIM client bound to one token (see [`Server::scim_client`]): cheap to clone,
/// `Send`, and it reports a server that went away instead of panicking.
#[derive(Clone)]
pub struct ScimClient {
    client: Client,
    base: String,
    token: String,
}

impl ScimClient {
    /// One request (with a SCIM JSON body when `body` is given). Err when no complete reply
    /// came: the connection failed or was cut, or the body was cut off (a killed server).
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let resp = scim_request(&self.client, url, &self.token, method, body)
            .send()
            .map_err(|e| e.to_string())?;
        try_reply(resp)
    }
}

/// Assert a SCIM error body: content type, schemas, status as a string, scimType.
pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert!(r.content_type.starts_with(SCIM_JSON), "{}", r.content_type);
    // Literal: the Error URN as it must be on the wire (the library has no constant for it).
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(r.body["status"], status.to_string());
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{:?}", r.body);
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

/// A PATCH body: the PatchOp envelope around `operations` (a JSON array of operations).
pub fn patch_op(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// The PatchOp envelope around operations that are not a JSON value (invalid UTF-8, nesting
/// deeper than a JSON value can be built): `operations` are the bytes of the array.
pub fn patch_op_bytes(operations: &[u8]) -> Vec<u8> {
    let mut body = format!("{{\"schemas\":[\"{PATCH_OP}\"],\"Operations\":").into_bytes();
    body.extend_from_slice(operations);
    body.push(b'}');
    body
}

/// Create a user with nothing but `userName`; asserts the 201 and returns the id.
pub fn create_user(scim: &Scim<'_>, user_name: &str) -> String {
    let r = scim.post("/Users", &json!({"userName": user_name}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// The claims of a JWT (its payload, not verified).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A user with every attribute the seed's user table has, as Entra sends it.
pub fn user_body(user_name: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE_USER],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Andersson"},
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "phoneNumbers": [{"type": "mobile", "value": "+46701234567"}],
        "meta": {"resourceType": "User"},
        "roles": [],
        ENTERPRISE_USER: {"costCenter": "CC-4130", "organization": "Contoso Security"},
        GROUPTALK_USER: {"label1": "Shift A", "label2": "North", "label3": "Medic", "label4": "L4", "label5": "L5"}
    })
}
