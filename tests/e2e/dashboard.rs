//! The admin dashboard against the real binary: a tenant provisioned the way Entra does it —
//! with hostile text in a userName and a displayName — shown in headless Chromium (the DOM has
//! the counts and the text, escaped, and no element the text tried to inject; screenshots at
//! desktop and phone width land in `target/dashboard-e2e/`), and the attacks on the admin
//! listener: DNS rebinding, the public port, no or a wrong token, a huge query string, and an
//! admin listener off loopback without TLS and a token.
//!
//! `SKIP_BROWSER_TEST=1` skips only the Chromium part (and says so on stderr).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::{create_user, patch_op, Server, TenantCtx, BIN};

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const TOKEN: &str = "correct-horse-battery-staple-42";

/// A raw HTTP/1.1 GET with exactly the `Host` and `Authorization` given: (status, head, body).
fn raw_get(
    addr: SocketAddr,
    target: &str,
    host: &str,
    auth: Option<&str>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    // A server that refuses a huge head may close before reading all of it.
    let _ = s.write_all(req.as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn admin(server: &Server) -> SocketAddr {
    server.admin_addr.expect("admin listener")
}

fn local(server: &Server) -> String {
    format!("127.0.0.1:{}", admin(server).port())
}

fn basic(password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
    )
}

/// Entra's requests: three users (one with each hostile text, one deactivated by PATCH), a
/// group whose members are added by PATCH, and a duplicate create answered 409.
fn provision(ctx: &TenantCtx) -> String {
    let scim = ctx.scim();
    let mut ids = Vec::new();
    for (user_name, display) in [
        (format!("{SCRIPT}@contoso.com"), IMG.to_string()),
        (format!("{IMG}@contoso.com"), SCRIPT.to_string()),
        ("carol@contoso.com".to_string(), "Carol".to_string()),
    ] {
        let mut body = crate::harness::user_body(&user_name);
        body["displayName"] = json!(display);
        let r = scim.post("/Users", &body);
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let r = scim.patch(
        &format!("/Users/{}", ids[2]),
        &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = scim.post(
        "/Groups",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Dispatch", "externalId": "g-1", "members": []}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let group = r.body["id"].as_str().unwrap().to_string();
    let r = scim.patch(
        &format!("/Groups/{group}"),
        &patch_op(json!([{"op": "Add", "path": "members",
            "value": [{"value": ids[0]}, {"value": ids[1]}]}])),
    );
    assert!(matches!(r.status, 200 | 204), "{:?}", r.body);
    let r = scim.post("/Users", &crate::harness::user_body("carol@contoso.com"));
    assert_eq!(r.status, 409);
    ids[0].clone()
}

fn wait_for_log(server: &Server, addr: SocketAddr, needle: &str) -> String {
    // The provisioning log is written in batches: wait until the 409 is on the page.
    for _ in 0..100 {
        let (status, _, body) = raw_get(addr, "/", &local(server), None);
        assert_eq!(status, 200);
        if body.contains(needle) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{needle:?} never appeared on the dashboard");
}

fn assert_counts(html: &str) {
    for (key, n) in [
        ("users", 3),
        ("active", 2),
        ("inactive", 1),
        ("groups", 1),
        ("memberships", 2),
    ] {
        let cell = format!("data-count=\"{key}\">{n}<");
        assert!(html.contains(&cell), "{cell} not in the page");
    }
}

fn assert_escaped_and_not_injected(html: &str) {
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped script text"
    );
    assert!(
        html.contains("&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "escaped img text"
    );
    assert_not_injected(html);
}

fn assert_not_injected(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element exists");
    assert!(!lower.contains("<img"), "an img element exists");
    // No tag carries an event handler (the escaped text may mention one, outside any tag).
    for tag in lower.split('<').skip(1) {
        let inside = tag.split('>').next().unwrap_or("");
        assert!(
            !inside.contains("onerror"),
            "a tag with an event handler: <{inside}>"
        );
    }
}

#[test]
fn dashboard_shows_entras_tenant_escaped_in_a_real_browser() {
    let ctx = TenantCtx::start("contoso");
    let user = provision(&ctx);
    let addr = admin(&ctx.server);
    let html = wait_for_log(&ctx.server, addr, "uniqueness");
    assert_counts(&html);
    assert_escaped_and_not_injected(&html);
    assert!(
        html.contains("data-total=\"4xx\">1<"),
        "the 409 in the chart's totals"
    );
    assert!(
        html.contains("data-silent=\"false\""),
        "Entra called just now"
    );
    assert!(html.contains("<svg class=\"chart\""));
    // The search box: one user's history by its (hostile) userName.
    let q: String =
        form_urlencoded::byte_serialize(format!("{SCRIPT}@contoso.com").as_bytes()).collect();
    let (status, _, page) = raw_get(addr, &format!("/history?q={q}"), &local(&ctx.server), None);
    assert_eq!(status, 200);
    assert!(page.contains(&user), "the user's id");
    assert!(page.contains("<td>create</td>"), "{page}");
    assert!(
        page.contains("<td class=\"\">201</td>"),
        "its logged POST: {page}"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;@contoso.com"));
    // Its create's diff lists what it was created with, escaped.
    assert!(
        page.contains("<li><code>displayName</code>: (none) → &quot;"),
        "the create's diff: {page}"
    );
    assert_not_injected(&page);
    // A group by its displayName, case-insensitively: created, then its members added.
    let (status, _, page) = raw_get(addr, "/history?q=dispatch", &local(&ctx.server), None);
    assert_eq!(status, 200);
    assert!(
        page.contains("<td>create</td>") && page.contains("<td>update</td>"),
        "{page}"
    );
    // The PATCH that added its members shows what it changed.
    assert!(
        page.contains("<ul class=\"diff\"><li>members added ("),
        "{page}"
    );

    if std::env::var("SKIP_BROWSER_TEST").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_BROWSER_TEST=1: skipping the headless Chromium part of the dashboard test");
        return;
    }
    let url = format!("http://{}/", local(&ctx.server));
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-e2e");
    std::fs::create_dir_all(&out).unwrap();
    let dom = chromium(&["--dump-dom", "--window-size=1280,1800", &url]);
    assert_counts(&dom);
    assert_escaped_and_not_injected(&dom);
    assert!(
        dom.contains("data-count=\"users\""),
        "the browser rendered the page"
    );
    for (name, width) in [("dashboard.png", 1280), ("dashboard-phone.png", 390)] {
        let file = out.join(name);
        let _ = std::fs::remove_file(&file);
        chromium(&[
            &format!("--screenshot={}", file.display()),
            &format!("--window-size={width},1800"),
            "--hide-scrollbars",
            &url,
        ]);
        let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(&png[1..4], b"PNG");
        // IHDR: the width the page was laid out at.
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(w, width, "{name}");
        eprintln!("dashboard screenshot: {}", file.display());
    }
    // At phone width the DOM is the same page (no script adapts it; the stylesheet does).
    let phone = chromium(&["--dump-dom", "--window-size=390,1800", &url]);
    assert_counts(&phone);
    assert_escaped_and_not_injected(&phone);
}

/// Headless Chromium as root: no sandbox, nothing from the network but our page, a fresh
/// profile. Returns stdout (the DOM for `--dump-dom`).
fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let output = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {bin} ({e}): install Debian's chromium, or SKIP_BROWSER_TEST=1")
        });
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn dns_rebinding_host_header_is_refused() {
    let server = Server::start();
    let addr = admin(&server);
    for path in ["/", "/metrics", "/history?q=x", "/style.css"] {
        let (status, _, _) = raw_get(addr, path, &format!("evil.example:{}", addr.port()), None);
        assert_eq!(status, 403, "{path}");
        let (status, _, _) = raw_get(addr, path, "127.0.0.1.nip.io", None);
        assert_eq!(status, 403, "{path}");
    }
    for host in [
        local(&server),
        format!("localhost:{}", addr.port()),
        "localhost:8080".into(),
    ] {
        let (status, _, _) = raw_get(addr, "/", &host, None);
        assert_eq!(status, 200, "{host}");
    }
    // Probes answer whatever the Host: they show nothing.
    let (status, _, _) = raw_get(addr, "/livez", "evil.example", None);
    assert_eq!(status, 200);
}

#[test]
fn dashboard_is_never_on_the_public_port() {
    let ctx = TenantCtx::start("contoso");
    for path in ["/", "/history?q=x", "/style.css"] {
        let r = ctx
            .server
            .client()
            .get(ctx.server.public_url(path))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().unwrap();
        assert!(!body.contains("<html"), "{path}: {body}");
    }
}

#[test]
fn non_loopback_admin_without_tls_and_token_is_refused_by_check_config_and_serve() {
    let server = Server::start();
    let config = server.config.to_str().unwrap().to_string();
    let refused: [&[(&str, &str)]; 3] = [
        &[("GROUPTALK_SCIM_ADMIN__LISTEN", "0.0.0.0:9464")],
        &[
            ("GROUPTALK_SCIM_ADMIN__LISTEN", "0.0.0.0:9464"),
            ("GROUPTALK_SCIM_ADMIN__TOKEN", TOKEN),
        ],
        &[
            ("GROUPTALK_SCIM_ADMIN__LISTEN", "0.0.0.0:9464"),
            ("GROUPTALK_SCIM_ADMIN__TLS", "true"),
        ],
    ];
    for env in refused {
        let out = Command::new(BIN)
            .args(["--config", &config, "check-config"])
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("admin.listen") && err.contains("admin.token"),
            "{err}"
        );
        let out = Command::new(BIN)
            .args(["--config", &config, "serve"])
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "serve started with {env:?}");
    }
    let out = Command::new(BIN)
        .args(["--config", &config, "check-config"])
        .env_remove("GROUPTALK_SCIM_CONFIG")
        .envs([
            ("GROUPTALK_SCIM_ADMIN__LISTEN", "0.0.0.0:9464"),
            ("GROUPTALK_SCIM_ADMIN__TLS", "true"),
            ("GROUPTALK_SCIM_ADMIN__TOKEN", TOKEN),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(TOKEN),
        "check-config printed the token"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(TOKEN), "check-config printed the token");
    assert!(
        err.contains("Dashboard: https://0.0.0.0:9464/ (admin.token required"),
        "{err}"
    );
}

#[test]
fn no_or_wrong_basic_token_gets_401() {
    let server = Server::start_with("", &[("GROUPTALK_SCIM_ADMIN__TOKEN", TOKEN)]);
    let addr = admin(&server);
    let host = local(&server);
    for path in ["/", "/metrics", "/history?q=x", "/style.css"] {
        for auth in [
            None,
            Some(basic("wrong-token-wrong-token")),
            Some(basic(&TOKEN[..TOKEN.len() - 1])),
            Some(format!("Bearer {TOKEN}")),
            Some("Basic !!!not-base64".to_string()),
        ] {
            let (status, head, _) = raw_get(addr, path, &host, auth.as_deref());
            assert_eq!(status, 401, "{path} {auth:?}");
            assert!(head.contains("www-authenticate: basic realm="), "{head}");
        }
        let (status, _, _) = raw_get(addr, path, &host, Some(&basic(TOKEN)));
        assert_eq!(status, 200, "{path}");
    }
    let (status, _, _) = raw_get(addr, "/livez", &host, None);
    assert_eq!(status, 200, "probes need no token");
}

#[test]
fn csp_forbids_scripts_on_every_admin_answer() {
    let server = Server::start();
    let addr = admin(&server);
    for (path, host) in [
        ("/", local(&server)),
        ("/history?q=x", local(&server)),
        ("/nope", local(&server)),
        ("/", "evil.example".to_string()),
    ] {
        let (_, head, _) = raw_get(addr, path, &host, None);
        let csp = head
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("{path}: no CSP in {head}"));
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(head.contains("x-content-type-options: nosniff"));
    }
}

#[test]
fn huge_query_string_is_bounded() {
    let server = Server::start();
    let addr = admin(&server);
    let host = local(&server);
    // Beyond the head limit: refused by the HTTP layer (431), nothing read into a page.
    let (status, _, _) = raw_get(
        addr,
        &format!("/history?q={}", "a".repeat(1 << 20)),
        &host,
        None,
    );
    assert!(matches!(status, 0 | 414 | 431), "{status}");
    // Within the head, over the search limit: a page that says so, no query run.
    let (status, _, body) = raw_get(
        addr,
        &format!("/history?q={}", "b".repeat(5000)),
        &host,
        None,
    );
    assert_eq!(status, 400);
    assert!(body.contains("longer than 256 characters"), "{body}");
    assert!(
        !body.contains(&"b".repeat(257)),
        "the page echoes at most 256 characters"
    );
    let (status, _, _) = raw_get(addr, "/", &host, None);
    assert_eq!(status, 200, "still serving");
}

#[test]
fn admin_off_loopback_serves_https_with_basic_auth_only() {
    let server = Server::start_with(
        "",
        &[
            ("GROUPTALK_SCIM_ADMIN__LISTEN", "0.0.0.0:0"),
            ("GROUPTALK_SCIM_ADMIN__TLS", "true"),
            ("GROUPTALK_SCIM_ADMIN__TOKEN", TOKEN),
        ],
    );
    let port = admin(&server).port();
    let at: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cert = std::fs::read(server.config.parent().unwrap().join("cert.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .resolve("localhost", at)
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/");
    let r = client.get(&url).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&url)
        .basic_auth("admin", Some(TOKEN))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("grouptalk-scim"));
    // Plain HTTP on it gets no page.
    let (status, _, body) = raw_get(at, "/", &format!("localhost:{port}"), Some(&basic(TOKEN)));
    assert_ne!(status, 200);
    assert!(!body.contains("data-count"));
}

#[test]
fn dashboard_shows_each_feed_consumer_with_its_lag() {
    let ctx = TenantCtx::start("contoso");
    let token = crate::feed::feed_token(&ctx.server, "contoso");
    let feed = crate::feed::Feed::new(&ctx.server, &token);
    assert_eq!(feed.put_position("0").status, 200);
    for n in 0..3 {
        create_user(&ctx.scim(), &format!("u{n}@contoso.com"));
    }
    let addr = admin(&ctx.server);
    let (status, _, html) = raw_get(addr, "/", &local(&ctx.server), None);
    assert_eq!(status, 200);
    let token_id = crate::harness::claims(&token)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(html.contains("<h3>Change-feed consumers</h3>"), "{html}");
    assert!(
        html.contains(&format!("<tr><td>{token_id}</td><td class=\"warn\">3</td>")),
        "the consumer keyed by its token id, three changes behind: {html}"
    );
    assert!(!html.contains(&token), "never the token itself");
    // Once it has read them, no lag.
    let page = feed.get("/changes?after=0&limit=10");
    let next = page.body["nextAfter"].as_str().unwrap().to_string();
    assert_eq!(feed.put_position(&next).status, 200);
    let (_, _, html) = raw_get(addr, "/", &local(&ctx.server), None);
    assert!(
        html.contains(&format!("<tr><td>{token_id}</td><td>0</td>")),
        "{html}"
    );
}

#[test]
fn dashboard_shows_what_the_deletion_brake_holds() {
    let brake = "[brake]\nmax_removals = 2\nmax_fraction = 0.0\nwindow_minutes = 60\n";
    let ctx = TenantCtx::start_with("contoso", brake, &[]);
    let scim = ctx.scim();
    let ids: Vec<String> = (0..5)
        .map(|n| create_user(&scim, &format!("u{n}@contoso.com")))
        .collect();
    for id in &ids {
        let r = scim.patch(
            &format!("/Users/{id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        );
        assert_eq!(r.status, 200, "the write succeeds whatever the brake does");
    }
    let addr = admin(&ctx.server);
    let (status, _, html) = raw_get(addr, "/", &local(&ctx.server), None);
    assert_eq!(status, 200);
    assert!(
        html.contains("data-held=\"3\">3</span>"),
        "two delivered, three held: {html}"
    );
    for id in &ids[2..] {
        assert!(html.contains(&format!("<code>{id}</code>")), "{id} listed");
    }
    assert!(html.contains("<td>deactivate</td>"), "{html}");
    let (ok, _, err) = ctx.server.cli(&["brake", "release", "--tenant", "contoso"]);
    assert!(ok, "{err}");
    let (_, _, html) = raw_get(addr, "/", &local(&ctx.server), None);
    assert!(html.contains("data-held=\"0\">0</span>"), "{html}");
}
