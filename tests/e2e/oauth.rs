//! Entra's "OAuth2 Client Credentials Grant": `POST /oauth2/token` with a client made by
//! `client create`, the access token on SCIM, and every way a token request or an access token
//! is refused (RFC 6749 §5.2, RFC 6750 §3.1).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

use crate::harness::{assert_scim_error, reply, Reply, Server, TenantCtx};

pub(crate) const ISSUER: &str = "https://scim.example.test";

pub(crate) fn oauth_server() -> TenantCtx {
    TenantCtx::start_with("acme", "", &[("GROUPTALK_SCIM_SERVER__PUBLIC_URL", ISSUER)])
}

/// `client create --json` → (client id, secret, secret id).
pub(crate) fn create_client(
    server: &Server,
    tenant: &str,
    extra: &[&str],
) -> (String, String, String) {
    let mut args = vec!["client", "create", "--tenant", tenant, "--json"];
    args.extend_from_slice(extra);
    let (ok, out, err) = server.cli(&args);
    assert!(ok, "client create: {err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
        v["secret_id"].as_str().unwrap().to_string(),
    )
}

pub(crate) fn token_url(server: &Server) -> String {
    format!("https://localhost:{}/oauth2/token", server.addr.port())
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(crate) fn post_form(req: RequestBuilder, body: String) -> Reply {
    reply(
        req.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap(),
    )
}

/// HTTP Basic as RFC 6749 §2.3.1 says: each half form-url-encoded first.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn grant_basic(server: &Server, id: &str, secret: &str) -> Reply {
    post_form(
        server
            .client()
            .post(token_url(server))
            .header("authorization", basic(id, secret)),
        form(&[("grant_type", "client_credentials")]),
    )
}

fn grant_body(server: &Server, id: &str, secret: &str) -> Reply {
    post_form(
        server.client().post(token_url(server)),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ]),
    )
}

pub(crate) fn assert_oauth_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], code, "{:?}", r.body);
    assert!(r.body["error_description"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
}

pub(crate) fn access_token(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

#[test]
fn the_grant_with_basic_with_body_and_with_both_gives_a_token_that_works_on_users() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, _) = create_client(&server, "acme", &[]);
    let r = grant_basic(&server, &id, &secret);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "scim");
    assert_eq!(r.headers["cache-control"], "no-store");
    let t1 = access_token(&r);
    let t2 = access_token(&grant_body(&server, &id, &secret));
    let both = post_form(
        server
            .client()
            .post(token_url(&server))
            .header("authorization", basic(&id, &secret)),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("resource", "ignored-by-the-server"),
        ]),
    );
    let t3 = access_token(&both);
    for t in [&t1, &t2, &t3] {
        let list = server.as_tenant(t).get("/Users");
        assert_eq!(list.status, 200, "{:?}", list.body);
        let created = server.as_tenant(t).post(
            "/Users",
            &crate::harness::user_body(&format!("u{}@x.example", &t[t.len() - 6..])),
        );
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    // Both, but disagreeing.
    let (_, other_secret, _) = create_client(&server, "acme", &[]);
    let mismatch = post_form(
        server
            .client()
            .post(token_url(&server))
            .header("authorization", basic(&id, &secret)),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &other_secret),
        ]),
    );
    assert_oauth_error(&mismatch, 400, "invalid_request");
}

#[test]
fn basic_credentials_are_url_decoded_before_they_are_checked() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, _) = create_client(&server, "acme", &[]);
    // Every byte percent-encoded: a server that skips the decoding refuses this.
    let pct = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let raw = format!("{}:{}", pct(&id), pct(&secret));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let r = post_form(
        server
            .client()
            .post(token_url(&server))
            .header("authorization", header),
        form(&[("grant_type", "client_credentials")]),
    );
    access_token(&r);
}

#[test]
fn wrong_secret_unknown_client_expired_and_revoked_secrets_and_revoked_client_are_invalid_client() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, secret_id) = create_client(&server, "acme", &[]);
    let wrong = grant_basic(
        &server,
        &id,
        &format!("{secret_id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    );
    assert_oauth_error(&wrong, 401, "invalid_client");
    assert!(wrong.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let unknown = grant_body(&server, "00000000-0000-4000-8000-000000000000", &secret);
    assert_oauth_error(&unknown, 401, "invalid_client");
    assert!(unknown.headers.get("www-authenticate").is_none());
    // The same answer whatever was wrong.
    assert_eq!(wrong.body, unknown.body);
    // An expired secret: no token, even with the right text.
    let (id2, secret2, sid2) = create_client(&server, "acme", &[]);
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "UPDATE client_secrets SET expires = '2001-01-01T00:00:00Z' WHERE id = ?1",
        [&sid2],
    )
    .unwrap();
    assert_oauth_error(&grant_basic(&server, &id2, &secret2), 401, "invalid_client");
    // A revoked secret; the client's other secret still works (rotation).
    let (ok, out, err) = server.cli(&["client", "secret", "add", &id, "--json"]);
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(out.trim()).unwrap();
    let second_secret = second["client_secret"].as_str().unwrap().to_string();
    let before = access_token(&grant_basic(&server, &id, &secret));
    assert!(server.cli(&["client", "secret", "revoke", &secret_id]).0);
    assert_oauth_error(&grant_basic(&server, &id, &secret), 401, "invalid_client");
    // Tokens issued with the revoked secret end at once; the other secret's work.
    assert_eq!(server.as_tenant(&before).get("/Users").status, 401);
    let after = access_token(&grant_basic(&server, &id, &second_secret));
    assert_eq!(server.as_tenant(&after).get("/Users").status, 200);
    // A revoked client: its tokens stop on the next request, and it gets no new one.
    assert!(server.cli(&["client", "revoke", &id]).0);
    assert_eq!(server.as_tenant(&after).get("/Users").status, 401);
    assert_oauth_error(
        &grant_basic(&server, &id, &second_secret),
        401,
        "invalid_client",
    );
}

#[test]
fn wrong_grant_type_missing_grant_type_and_bad_scopes_are_rfc6749_errors() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, _) = create_client(&server, "acme", &[]);
    let req = |pairs: &[(&str, &str)]| {
        post_form(
            server
                .client()
                .post(token_url(&server))
                .header("authorization", basic(&id, &secret)),
            form(pairs),
        )
    };
    assert_oauth_error(
        &req(&[("grant_type", "password")]),
        400,
        "unsupported_grant_type",
    );
    assert_oauth_error(&req(&[]), 400, "invalid_request");
    assert_oauth_error(
        &req(&[("grant_type", "client_credentials"), ("scope", "admin")]),
        400,
        "invalid_scope",
    );
    // A scope the client does not have.
    assert_oauth_error(
        &req(&[("grant_type", "client_credentials"), ("scope", "feed.read")]),
        400,
        "invalid_scope",
    );
    let ok = req(&[("grant_type", "client_credentials"), ("scope", "scim")]);
    assert_eq!(ok.body["scope"], "scim");
    // Not a form.
    let json_body = reply(
        server
            .client()
            .post(token_url(&server))
            .header("authorization", basic(&id, &secret))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .unwrap(),
    );
    assert_oauth_error(&json_body, 400, "invalid_request");
}

/// An access token signed with the server's own key but past its `exp`.
fn expired_access_token(server: &Server, tenant_id: &str, client: &str, secret_id: &str) -> String {
    let key = std::fs::read(server.data_dir().join("signing.key")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": "grouptalk-scim", "jti": "00000000-0000-4000-8000-00000000abcd", "tid": tenant_id,
        "iat": now - 7200, "exp": now - 3600, "cid": client, "sid": secret_id, "scope": "scim",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap()
}

#[test]
fn an_expired_access_token_gets_a_401_that_says_invalid_token() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, secret_id) = create_client(&server, "acme", &[]);
    let fresh = access_token(&grant_basic(&server, &id, &secret));
    let tenant_id = crate::harness::claims(&fresh)["tid"]
        .as_str()
        .unwrap()
        .to_string();
    let expired = expired_access_token(&server, &tenant_id, &id, &secret_id);
    let r = server.as_tenant(&expired).get("/Users");
    assert_scim_error(&r, 401, None);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("expired"), "{challenge}");
    // Any other bad token keeps the generic challenge.
    let junk = server.as_tenant("junk").get("/Users");
    assert_eq!(
        junk.headers["www-authenticate"],
        "Bearer realm=\"grouptalk-scim\""
    );
}

#[test]
fn a_feed_read_token_reads_but_gets_403_on_every_scim_write() {
    let TenantCtx { server, token } = oauth_server();
    let (id, secret, _) = create_client(&server, "acme", &["--scope", "feed.read"]);
    let r = grant_basic(&server, &id, &secret);
    assert_eq!(r.body["scope"], "feed.read");
    let reader = access_token(&r);
    let user = crate::harness::create_user(&server.as_tenant(&token), "x@x.example");
    let scim = server.as_tenant(&reader);
    assert_eq!(scim.get(&format!("/Users/{user}")).status, 200);
    assert_eq!(scim.get("/Users").status, 200);
    let body = crate::harness::user_body("y@x.example");
    assert_scim_error(&scim.post("/Users", &body), 403, None);
    assert_scim_error(&scim.put(&format!("/Users/{user}"), &body), 403, None);
    assert_scim_error(
        &scim.patch(
            &format!("/Users/{user}"),
            &crate::harness::patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        ),
        403,
        None,
    );
    assert_scim_error(&scim.delete(&format!("/Users/{user}")), 403, None);
    // Nothing changed.
    let still = server.as_tenant(&token).get(&format!("/Users/{user}"));
    assert_eq!(still.status, 200, "the user was not deleted");
    assert_eq!(
        still.body["meta"]["version"], "W/\"1\"",
        "the user was changed"
    );
    // A client with both scopes that asks only for feed.read gets a token that cannot write.
    let (both_id, both_secret, _) = create_client(
        &server,
        "acme",
        &["--scope", "scim", "--scope", "feed.read"],
    );
    let narrowed = post_form(
        server
            .client()
            .post(token_url(&server))
            .header("authorization", basic(&both_id, &both_secret)),
        form(&[("grant_type", "client_credentials"), ("scope", "feed.read")]),
    );
    assert_eq!(narrowed.body["scope"], "feed.read");
    let narrowed = access_token(&narrowed);
    assert_scim_error(
        &server.as_tenant(&narrowed).post("/Users", &body),
        403,
        None,
    );
    // And a long-lived token issued with --scope feed.read behaves the same.
    let (ok, out, err) =
        server.cli(&["token", "issue", "--tenant", "acme", "--scope", "feed.read"]);
    assert!(ok, "{err}");
    let feed_token = out.lines().last().unwrap().trim().to_string();
    assert_scim_error(
        &server.as_tenant(&feed_token).post("/Users", &body),
        403,
        None,
    );
}

fn client_from(server: &Server, last: u8) -> Client {
    let cert = std::fs::read(server.dir.path().join("cert.pem")).unwrap();
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .resolve("localhost", server.addr)
        .local_address(IpAddr::from([127, 0, 0, last]))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[test]
fn a_wrong_secret_flood_is_throttled_without_locking_out_the_real_client() {
    let TenantCtx { server, .. } = oauth_server();
    let (id, secret, secret_id) = create_client(&server, "acme", &[]);
    let attacker = client_from(&server, 5);
    let mut statuses = Vec::new();
    for i in 0..30 {
        let guess = format!("{secret_id}.guess{i:038}");
        let r = post_form(
            attacker
                .post(token_url(&server))
                .header("authorization", basic(&id, &guess)),
            form(&[("grant_type", "client_credentials")]),
        );
        statuses.push(r.status);
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 15, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // Entra, from another address, with the same client id: its token, at once.
    let entra = client_from(&server, 6);
    let r = post_form(
        entra
            .post(token_url(&server))
            .header("authorization", basic(&id, &secret)),
        form(&[("grant_type", "client_credentials")]),
    );
    access_token(&r);
}

#[test]
fn secrets_appear_in_no_log_line_log_entry_or_table() {
    secrets_appear_nowhere("false");
}

/// With `log.keep_bodies` on, SCIM write bodies are kept — never the token endpoint's form.
#[test]
fn secrets_appear_in_no_log_line_log_entry_or_table_with_keep_bodies_on() {
    secrets_appear_nowhere("true");
}

fn secrets_appear_nowhere(keep_bodies: &str) {
    let TenantCtx { server, .. } = TenantCtx::start_with(
        "acme",
        "",
        &[
            ("GROUPTALK_SCIM_SERVER__PUBLIC_URL", ISSUER),
            ("GROUPTALK_SCIM_LOG__KEEP_BODIES", keep_bodies),
            ("RUST_LOG", "debug"),
        ],
    );
    let (id, secret, secret_id) = create_client(&server, "acme", &[]);
    access_token(&grant_basic(&server, &id, &secret));
    let wrong = format!("{secret_id}.ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ");
    grant_body(&server, &id, &wrong);
    std::thread::sleep(Duration::from_millis(1500));
    let random_part = secret.split_once('.').unwrap().1;
    let wrong_part = wrong.split_once('.').unwrap().1;
    for line in server.log_lines() {
        assert!(
            !line.contains(random_part) && !line.contains(wrong_part),
            "{line}"
        );
    }
    let (ok, log, _) = server.cli(&["log", "--json"]);
    assert!(ok);
    assert!(
        log.contains(&id),
        "the token requests are in the provisioning log"
    );
    assert!(!log.contains(random_part) && !log.contains(wrong_part));
    let conn = server.open_db_read_only();
    let hashes: Vec<String> = conn
        .prepare("SELECT hash FROM client_secrets")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!hashes.is_empty());
    for h in hashes {
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains(random_part));
    }
    let bodies: i64 = conn
        .query_row(
            "SELECT count(*) FROM request_details d JOIN request_log l ON l.seq = d.log_seq \
             WHERE d.body IS NOT NULL AND l.path LIKE '%oauth2%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bodies, 0, "the token endpoint's form is never kept");
    // The database file and its write-ahead log (what is not yet checkpointed).
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", server.db_path().display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for secret in [random_part, wrong_part] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret in {path}"
            );
        }
    }
}

#[test]
fn the_metadata_names_the_token_endpoint_and_oauth_is_off_without_a_public_url() {
    let TenantCtx { server, .. } = oauth_server();
    let meta = reply(
        server
            .client()
            .get(format!(
                "https://localhost:{}/.well-known/oauth-authorization-server",
                server.addr.port()
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["issuer"], ISSUER);
    assert_eq!(
        meta.body["token_endpoint"],
        format!("{ISSUER}/oauth2/token")
    );
    assert_eq!(
        meta.body["grant_types_supported"],
        json!(["client_credentials"])
    );
    assert_eq!(meta.body["scopes_supported"], json!(["scim", "feed.read"]));
    let TenantCtx { server: off, .. } = TenantCtx::start("acme");
    let (id, secret, _) = create_client(&off, "acme", &[]);
    let r = grant_basic(&off, &id, &secret);
    assert_eq!(r.status, 404, "{:?}", r.body);
}
