//! `grouptalk-scim selftest`: run the direct checks of Microsoft's gallery validation
//! (`gallery`) against a running appliance, as a client on the network sees it, and print a
//! pass/fail table an administrator can paste into a gallery submission or a support ticket.
//!
//! It creates and deletes its own users and groups in the tenant the credential belongs to, so
//! it refuses a tenant that already holds more than a handful of resources unless told
//! `--i-understand`. The HTTPS client is the server's own stack (hyper + rustls with AWS-LC), one
//! connection per request; certificates are checked against Mozilla's roots or `--ca-cert`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::gallery::{self, Check, ClientCredentials, Reply, Transport, Verdict};

/// Resources (users + groups) a tenant may hold before `selftest` asks for `--i-understand`.
pub const HANDFUL: u64 = 5;

/// How long one request may take, connection and TLS handshake included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body read.
const MAX_BODY: usize = 8 << 20;

#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// The appliance's public URL (`server.public_url`, SCIM under /api/scim), or the full
    /// Tenant URL given to Entra (`https://HOST:PORT/api/scim/`)
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A SCIM bearer token (`token issue`); Validate_Credentials is then skipped
    #[arg(
        long,
        env = "GROUPTALK_SCIM_SELFTEST_TOKEN",
        hide_env_values = true,
        required_unless_present = "client_id",
        conflicts_with = "client_id"
    )]
    pub token: Option<String>,
    /// An OAuth client (`client create`): the checks run with a token from the token endpoint
    #[arg(long, requires = "client_secret")]
    pub client_id: Option<String>,
    /// The client's secret
    #[arg(
        long,
        env = "GROUPTALK_SCIM_SELFTEST_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Token endpoint (default: the URL's origin + /oauth2/token)
    #[arg(long, value_name = "URL")]
    pub token_endpoint: Option<String>,
    /// Trust this PEM certificate (e.g. `serve --dev`'s grouptalk-scim-dev/tls/cert.pem) instead of
    /// the public roots
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Run even though the tenant holds more than a handful of users and groups
    #[arg(long)]
    pub i_understand: bool,
}

pub fn run(args: SelftestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (scim_base, origin) = split_url(&args.url)?;
    let token_url = match &args.token_endpoint {
        Some(u) => u.parse().context("--token-endpoint")?,
        None => format!("{origin}/oauth2/token").parse()?,
    };
    let mut client = HttpsClient {
        runtime,
        tls: TlsConnector::from(tls_config(args.ca_cert.as_deref())?),
        scim_base,
        token_url,
        bearer: args.token.clone().unwrap_or_default(),
    };
    let oauth = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Some(ClientCredentials {
            client_id: id.clone(),
            client_secret: secret.clone(),
        }),
        _ => None,
    };
    if let Some(c) = &oauth {
        client.bearer = grant(&client, c)?;
    }
    preflight(&client, args.i_understand)?;
    let checks = gallery::run_all(&client, oauth.as_ref());
    print!("{}", table(&checks));
    let failed = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Failed)
        .count();
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// The SCIM base URL and the origin (`https://host:port`) of `--url`. A URL without a path is
/// the public URL: SCIM lives under the default base path `/api/scim`.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let uri: hyper::Uri = url.parse().with_context(|| format!("--url {url:?}"))?;
    if uri.scheme_str() != Some("https") {
        bail!("--url must be an https:// URL (the appliance speaks only HTTPS)");
    }
    let authority = uri.authority().context("--url has no host")?;
    let origin = format!("https://{authority}");
    let path = uri.path().trim_end_matches('/');
    let base = if path.is_empty() { "/api/scim" } else { path };
    Ok((format!("{origin}{base}"), origin))
}

fn tls_config(ca: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.context("--ca-cert: not a PEM certificate")?)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client-credentials grant for the token the checks use.
fn grant(client: &HttpsClient, c: &ClientCredentials) -> anyhow::Result<String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &c.client_id)
        .append_pair("client_secret", &c.client_secret)
        .finish();
    let r = client
        .token_request(&form)
        .map_err(|e| anyhow::anyhow!("token endpoint {}: {e}", client.token_url))?;
    match r.body["access_token"].as_str() {
        Some(t) if r.ok() => Ok(t.to_string()),
        _ => bail!(
            "token endpoint {} refused the client: HTTP {} {}",
            client.token_url,
            r.status,
            r.body["error"].as_str().unwrap_or_default()
        ),
    }
}

/// The credential works, and the tenant is (nearly) empty unless the operator said otherwise.
fn preflight(client: &HttpsClient, i_understand: bool) -> anyhow::Result<()> {
    let mut held = 0;
    for endpoint in ["/Users", "/Groups"] {
        let r = client
            .scim("GET", &format!("{endpoint}?startIndex=1&count=1"), None)
            .map_err(|e| anyhow::anyhow!("{}{endpoint}: {e}", client.scim_base))?;
        match r.status {
            200 => held += r.body["totalResults"].as_u64().unwrap_or(0),
            401 => bail!("the appliance refused the credential (401): check the token or client"),
            403 => bail!("the credential may not use SCIM (403): it needs the `scim` scope"),
            s => bail!("GET {endpoint}: HTTP {s}"),
        }
    }
    if held > HANDFUL && !i_understand {
        bail!(
            "the tenant holds {held} users and groups; selftest creates and deletes test objects \
             in it — run it against an empty test tenant, or add --i-understand"
        );
    }
    Ok(())
}

/// The table: one line per check, `PASS*` where the template itself would fail a correct
/// answer, with the reason as a note below.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(4);
    let mut out = format!("{:width$}  RESULT  DETAIL\n", "TEST");
    let mut notes = Vec::new();
    for c in checks {
        let mut result = match c.verdict {
            Verdict::Passed => "PASS".to_string(),
            Verdict::Failed => "FAIL".to_string(),
            Verdict::Skipped => "SKIP".to_string(),
        };
        if let Some(flaw) = &c.template_flaw {
            result.push('*');
            notes.push(format!("* {}: {flaw}", c.name));
        }
        out.push_str(&format!("{:width$}  {result:6}  {}\n", c.name, c.detail));
    }
    for n in notes {
        out.push_str(&format!(
            "{n}. The appliance answers as the RFC requires; README \"Connect Entra ID\" says \
             what to do for Microsoft's run.\n"
        ));
    }
    out
}

struct HttpsClient {
    runtime: tokio::runtime::Runtime,
    tls: TlsConnector,
    scim_base: String,
    token_url: hyper::Uri,
    bearer: String,
}

impl HttpsClient {
    fn send(&self, req: Request<Full<Bytes>>) -> Result<Reply, String> {
        self.runtime.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req))
                .await
                .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
        })
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<Reply, String> {
        let uri = req.uri().clone();
        let host = uri.host().ok_or("URL without a host")?.to_string();
        let port = uri.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| format!("{host}: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    fn request(
        &self,
        method: &str,
        uri: &str,
        bearer: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, String> {
        let uri: hyper::Uri = uri.parse().map_err(|e| format!("{uri}: {e}"))?;
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .header("accept", "application/scim+json");
        if !bearer.is_empty() {
            b = b.header("authorization", format!("Bearer {bearer}"));
        }
        if !body.is_empty() {
            b = b.header("content-type", content_type);
        }
        b.body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }
}

impl Transport for HttpsClient {
    fn scim(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let url = format!("{}{path}", self.scim_base);
        self.send(self.request(method, &url, &self.bearer, "application/scim+json", bytes)?)
    }

    fn scim_with_token(&self, token: &str, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.scim_base);
        self.send(self.request("GET", &url, token, "", Vec::new())?)
    }

    fn token_request(&self, form: &str) -> Result<Reply, String> {
        let req = self.request(
            "POST",
            &self.token_url.to_string(),
            "",
            "application/x-www-form-urlencoded",
            form.as_bytes().to_vec(),
        )?;
        self.send(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_path_is_the_public_url_and_a_path_is_the_tenant_url() {
        let (base, origin) = split_url("https://scim.example.org:8443").unwrap();
        assert_eq!(base, "https://scim.example.org:8443/api/scim");
        assert_eq!(origin, "https://scim.example.org:8443");
        let (base, _) = split_url("https://h/scim/v2/?aadOptscim062020").unwrap();
        assert_eq!(base, "https://h/scim/v2");
        assert!(split_url("http://h").is_err());
    }

    #[test]
    fn the_table_marks_template_flaws_and_explains_them() {
        let mut c = Check {
            name: "SCIM_Group_Update_Test",
            verdict: Verdict::Passed,
            detail: "ok".into(),
            template_flaw: Some("reads at the top level".into()),
        };
        let t = table(std::slice::from_ref(&c));
        assert!(t.contains("PASS*"), "{t}");
        assert!(
            t.contains("* SCIM_Group_Update_Test: reads at the top level"),
            "{t}"
        );
        c.template_flaw = None;
        c.verdict = Verdict::Failed;
        assert!(table(&[c]).contains("FAIL "));
    }
}
