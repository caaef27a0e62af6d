//! Workload identity federation: `client federate` and `POST /oauth2/token` with a
//! `client_assertion` JWT (RFC 7523 §2.2) signed by a key of a JWKS file the test generates;
//! the access token on SCIM, and every way an assertion is refused (RFC 6749 §5.2).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::{Reply, Server, TenantCtx};
use crate::oauth::{
    access_token, assert_oauth_error, create_client, form, oauth_server, post_form, token_url,
    ISSUER,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const IDP: &str = "https://login.idp.example/tenant-1/v2.0";
const SUBJECT: &str = "entra-provisioning-workload";

fn audience() -> String {
    format!("{ISSUER}/oauth2/token")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signing key of the test's identity provider and its public JWK.
struct IdpKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
    jwk: Value,
}

impl IdpKey {
    /// ECDSA P-256 (rcgen's default key type).
    fn es256(kid: &str) -> IdpKey {
        let pair = rcgen::KeyPair::generate().unwrap();
        IdpKey::with(
            EncodingKey::from_ec_der(&pair.serialize_der()),
            Algorithm::ES256,
            kid,
        )
    }

    /// RSA 2048, what Entra ID signs with (RS256).
    fn rs256(kid: &str) -> IdpKey {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let pkcs1 = pkcs1_of_pkcs8(pkcs8.as_ref());
        IdpKey::with(EncodingKey::from_rsa_der(pkcs1), Algorithm::RS256, kid)
    }

    fn with(key: EncodingKey, alg: Algorithm, kid: &str) -> IdpKey {
        let mut jwk =
            serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap())
                .unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        IdpKey {
            key,
            alg,
            kid: kid.into(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

/// The RSAPrivateKey (PKCS#1) inside a PrivateKeyInfo (PKCS#8): its last element, an OCTET
/// STRING.
fn pkcs1_of_pkcs8(der: &[u8]) -> &[u8] {
    // (tag, header length, content length) of the TLV at `at`.
    let tlv = |at: usize| -> (u8, usize, usize) {
        let tag = der[at];
        let first = der[at + 1] as usize;
        if first < 0x80 {
            return (tag, 2, first);
        }
        let n = first & 0x7f;
        let len = der[at + 2..at + 2 + n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize);
        (tag, 2 + n, len)
    };
    let (_, outer_header, _) = tlv(0);
    let mut at = outer_header;
    loop {
        let (tag, h, len) = tlv(at);
        if tag == 0x04 {
            return &der[at + h..at + h + len];
        }
        at += h + len;
    }
}

fn write_jwks(path: &PathBuf, keys: &[&IdpKey]) {
    let doc = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    std::fs::write(path, doc.to_string()).unwrap();
}

fn jwks_path(server: &Server) -> PathBuf {
    server.data_dir().with_file_name("idp.jwks.json")
}

fn claims() -> Value {
    json!({
        "iss": IDP,
        "sub": SUBJECT,
        "aud": audience(),
        "iat": now(),
        "nbf": now() - 5,
        "exp": now() + 600,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

/// The CLI with the server's configuration, as an administrator runs it: `server.public_url`
/// included (the test server has it from its environment).
fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::harness::BIN)
        .arg("--config")
        .arg(&server.config)
        .args(args)
        .env_remove("GROUPTALK_SCIM_CONFIG")
        .env("GROUPTALK_SCIM_SERVER__PUBLIC_URL", ISSUER)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `client federate … --json` → the printed object.
fn federate(server: &Server, client: &str, extra: &[&str]) -> Value {
    let jwks = jwks_path(server);
    let mut args = vec![
        "client",
        "federate",
        client,
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        IDP,
        "--subject",
        SUBJECT,
        "--json",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = cli(server, &args);
    assert!(ok, "client federate: {err}");
    assert_eq!(out.trim().lines().count(), 1, "one JSON object: {out}");
    serde_json::from_str(out.trim()).unwrap()
}

fn grant_assertion(server: &Server, client_id: Option<&str>, assertion: &str) -> Reply {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", "scim"),
    ];
    if let Some(id) = client_id {
        pairs.push(("client_id", id));
    }
    post_form(server.client().post(token_url(server)), form(&pairs))
}

/// A server with tenant acme, a client federated with the test's JWKS file holding `keys`.
fn federated(keys: &[&IdpKey], extra: &[&str]) -> (TenantCtx, String) {
    let ctx = oauth_server();
    write_jwks(&jwks_path(&ctx.server), keys);
    let (id, _, _) = create_client(&ctx.server, "acme", extra);
    federate(&ctx.server, &id, &[]);
    (ctx, id)
}

#[test]
fn a_good_assertion_gets_a_token_that_works_on_users_until_the_client_is_revoked() {
    let ctx = oauth_server();
    let server = &ctx.server;
    let key = IdpKey::rs256("rsa-1");
    write_jwks(&jwks_path(server), &[&key]);
    let (id, _, _) = create_client(server, "acme", &[]);
    let fed = federate(server, &id, &[]);
    assert_eq!(fed["client_id"], id.as_str());
    assert_eq!(fed["issuer"], IDP);
    assert_eq!(fed["subject"], SUBJECT);
    assert_eq!(fed["audience"], audience(), "default: the token endpoint");
    assert_eq!(fed["audience_is_default"], true);
    assert!(fed["federation_id"].is_string());
    // `client list` shows it.
    let (ok, out, _) = cli(server, &["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list["clients"][0]["federation"]["issuer"], IDP);
    assert_eq!(list["clients"][0]["federation"]["audience"], audience());
    // Without server.public_url the CLI cannot know the default audience: null, not a guess.
    let (ok, out, _) = server.cli(&["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list["clients"][0]["federation"]["audience"], Value::Null);
    assert_eq!(
        list["clients"][0]["federation"]["jwks"],
        jwks_path(server).to_str().unwrap()
    );
    let (ok, out, _) = server.cli(&["client", "list"]);
    assert!(
        ok && out.contains("federated") && out.contains(SUBJECT),
        "{out}"
    );

    // With client_id, as Entra sends it.
    let r = grant_assertion(server, Some(&id), &key.sign(&claims()));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "scim");
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = access_token(&r);
    let claims_of = crate::harness::claims(&token);
    assert_eq!(claims_of["cid"], id.as_str());
    assert_eq!(claims_of["fid"], fed["federation_id"]);
    assert!(claims_of.get("sid").is_none());
    let users = server.as_tenant(&token).get("/Users");
    assert_eq!(users.status, 200, "{:?}", users.body);
    let created = server
        .as_tenant(&token)
        .post("/Users", &crate::harness::user_body("fed@x.example"));
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Without client_id: the client is the one federated with this issuer and subject.
    let r = grant_assertion(server, None, &key.sign(&claims()));
    let token2 = access_token(&r);
    assert_eq!(crate::harness::claims(&token2)["cid"], id.as_str());

    // Revoking the client ends both tokens at once, and no new one is issued.
    let (ok, _, err) = server.cli(&["client", "revoke", &id]);
    assert!(ok, "{err}");
    for t in [&token, &token2] {
        assert_eq!(server.as_tenant(t).get("/Users").status, 401);
    }
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &key.sign(&claims())),
        401,
        "invalid_client",
    );
}

#[test]
fn wrong_key_issuer_audience_subject_expired_alg_none_and_replayed_jti_are_invalid_client() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &[]);
    let server = &ctx.server;
    let stranger = IdpKey::es256("ec-1"); // same kid, other key
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(key.jwk["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    let replayed = key.sign(&claims());
    access_token(&grant_assertion(server, Some(&id), &replayed));
    let (other_client, _, _) = create_client(server, "acme", &[]);
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        ("wrong key", Some(&id), stranger.sign(&claims())),
        (
            "wrong issuer",
            Some(&id),
            key.sign(&with(claims(), "iss", json!("https://evil.example"))),
        ),
        (
            "wrong audience",
            Some(&id),
            key.sign(&with(
                claims(),
                "aud",
                json!("https://elsewhere/oauth2/token"),
            )),
        ),
        (
            "wrong subject",
            Some(&id),
            key.sign(&with(claims(), "sub", json!("another-workload"))),
        ),
        (
            "expired",
            Some(&id),
            key.sign(&with(claims(), "exp", json!(now() - 3600))),
        ),
        (
            "not yet valid",
            Some(&id),
            key.sign(&with(claims(), "nbf", json!(now() + 3600))),
        ),
        (
            "no exp",
            Some(&id),
            key.sign(&{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("alg none", Some(&id), alg_none.clone()),
        ("alg none, no client_id", None, alg_none),
        (
            "HMAC keyed with the public key",
            Some(&id),
            hs256_with_public_key,
        ),
        ("replayed jti", Some(&id), replayed),
        // A good assertion presented for a client that is not federated with it.
        (
            "another client's id",
            Some(&other_client),
            key.sign(&claims()),
        ),
        (
            "unknown client",
            Some("00000000-0000-4000-8000-000000000000"),
            key.sign(&claims()),
        ),
        (
            "no client_id and an unknown subject",
            None,
            key.sign(&with(claims(), "sub", json!("nobody"))),
        ),
    ];
    let mut bodies = Vec::new();
    let mut sent = Vec::new();
    for (what, client, assertion) in cases {
        sent.push(assertion.rsplit('.').next().unwrap().to_string());
        let r = grant_assertion(server, client, &assertion);
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_oauth_error(&r, 401, "invalid_client");
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the same answer whatever failed: {bodies:?}"
    );
    // The service log says which check failed (for the administrator); never the assertion.
    std::thread::sleep(Duration::from_millis(200));
    let logs = server.log_lines().join("\n");
    for reason in [
        "signature",
        "issuer",
        "audience",
        "subject",
        "expired",
        "jti replayed",
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains("client assertion refused") && l.contains(reason)),
            "{reason}: {logs}"
        );
    }
    for signature in sent.iter().filter(|s| s.len() > 20) {
        assert!(!logs.contains(signature.as_str()), "{signature}");
    }
}

#[test]
fn a_malformed_assertion_or_two_authentication_methods_are_invalid_request() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &[]);
    let server = &ctx.server;
    for bad in [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln",
        "",
    ] {
        let r = grant_assertion(server, Some(&id), bad);
        assert_oauth_error(&r, 400, "invalid_request");
    }
    let good = key.sign(&claims());
    let post =
        |pairs: &[(&str, &str)]| post_form(server.client().post(token_url(server)), form(pairs));
    // Unknown assertion type; an assertion without its type, and the reverse.
    assert_oauth_error(
        &post(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &good),
        ]),
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &post(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &good),
        ]),
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &post(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
        ]),
        400,
        "invalid_request",
    );
    // An assertion and a secret: one method per request (RFC 6749 §2.3).
    let (_, secret, _) = create_client(server, "acme", &[]);
    assert_oauth_error(
        &post(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &good),
        ]),
        400,
        "invalid_request",
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    let r = post_form(
        server
            .client()
            .post(token_url(server))
            .header("authorization", basic),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &good),
        ]),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    // None of these used the assertion up: it still works.
    access_token(&grant_assertion(server, Some(&id), &good));
}

#[test]
fn attack_huge_assertion_body_is_refused_at_once_and_the_server_goes_on() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &[]);
    let server = &ctx.server;
    // Claims padded past the assertion limit, signed properly, still under the form limit.
    let padded = key.sign(&with(claims(), "pad", json!("x".repeat(5000))));
    assert!(padded.len() < 8000, "{}", padded.len());
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &padded),
        400,
        "invalid_request",
    );
    // A body of several megabytes: refused without reading it all.
    let huge = "A".repeat(4 * 1024 * 1024);
    let started = Instant::now();
    let r = server
        .client()
        .post(token_url(server))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &huge),
        ]))
        .send();
    if let Ok(resp) = r {
        let r = crate::harness::reply(resp);
        assert_oauth_error(&r, 400, "invalid_request");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    access_token(&grant_assertion(server, Some(&id), &key.sign(&claims())));
}

#[test]
fn keys_rotate_in_the_file_and_unfederate_ends_the_tokens_issued_on_assertions() {
    let old = IdpKey::rs256("rsa-old");
    let (ctx, id) = federated(&[&old], &[]);
    let server = &ctx.server;
    let t_old = access_token(&grant_assertion(server, Some(&id), &old.sign(&claims())));
    // The identity provider rotates: the file gains a key; the server reads it again.
    let new = IdpKey::es256("ec-new");
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &new.sign(&claims())),
        401,
        "invalid_client",
    );
    std::thread::sleep(Duration::from_millis(20));
    write_jwks(&jwks_path(server), &[&old, &new]);
    let t_new = access_token(&grant_assertion(server, Some(&id), &new.sign(&claims())));
    // Federating again replaces the federation (a new audience here): tokens issued on the
    // old one stop; the audience is the new one.
    let fed = federate(server, &id, &["--audience", "api://grouptalk-scim"]);
    assert_eq!(fed["audience"], "api://grouptalk-scim");
    assert_eq!(fed["audience_is_default"], false);
    for t in [&t_old, &t_new] {
        assert_eq!(server.as_tenant(t).get("/Users").status, 401);
    }
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &new.sign(&claims())),
        401,
        "invalid_client",
    );
    let aud = with(claims(), "aud", json!(["api://grouptalk-scim"]));
    let t = access_token(&grant_assertion(server, Some(&id), &new.sign(&aud)));
    assert_eq!(server.as_tenant(&t).get("/Users").status, 200);
    // Unfederate: the token stops, no new one; the client's secret still works.
    let (ok, _, err) = server.cli(&["client", "unfederate", &id]);
    assert!(ok, "{err}");
    assert_eq!(server.as_tenant(&t).get("/Users").status, 401);
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &new.sign(&aud)),
        401,
        "invalid_client",
    );
    let (ok, _, err) = server.cli(&["client", "unfederate", &id]);
    assert!(!ok && err.contains("not federated"), "{err}");
    let (ok, out, _) = server.cli(&["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list["clients"][0]["federation"], Value::Null);
}

#[test]
fn federate_refuses_bad_input_and_keeps_issuer_and_subject_to_one_client() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &[]);
    let server = &ctx.server;
    let jwks = jwks_path(server);
    let run = |args: &[&str]| server.cli(args);
    let base = |client: &str, jwks: &str| -> Vec<String> {
        [
            "client",
            "federate",
            client,
            "--jwks",
            jwks,
            "--issuer",
            IDP,
            "--subject",
            "s2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let refused = |args: Vec<String>, says: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = run(&a);
        assert!(!ok, "{a:?} succeeded: {out}");
        assert!(err.contains(says), "{a:?}: {err}");
        assert!(out.is_empty());
    };
    refused(
        base(
            "00000000-0000-4000-8000-000000000000",
            jwks.to_str().unwrap(),
        ),
        "no client",
    );
    refused(base(&id, "http://idp.example/keys"), "https://");
    refused(base(&id, "keys.json"), "absolute");
    refused(base(&id, "/nonexistent/keys.json"), "cannot read");
    let not_jwks = jwks.with_file_name("not.jwks.json");
    std::fs::write(&not_jwks, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    refused(base(&id, not_jwks.to_str().unwrap()), "not a usable JWKS");
    // The same issuer and subject for a second client: refused.
    let (other, _, _) = create_client(server, "acme", &[]);
    let (ok, _, err) = run(&[
        "client",
        "federate",
        &other,
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        IDP,
        "--subject",
        SUBJECT,
    ]);
    assert!(!ok && err.contains("already federated"), "{err}");
    // An https URL is accepted without fetching (the server fetches it).
    let (ok, out, err) = run(&[
        "client",
        "federate",
        &other,
        "--jwks",
        "https://login.idp.example/tenant-1/discovery/v2.0/keys",
        "--issuer",
        IDP,
        "--subject",
        "other-workload",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim().len(), 36, "the federation id: {out}");
}

#[test]
fn a_feed_read_client_gets_no_scim_scope_and_its_token_cannot_write() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &["--scope", "feed.read"]);
    let server = &ctx.server;
    // Asking for scim (what `grant_assertion` sends): invalid_scope.
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &key.sign(&claims())),
        400,
        "invalid_scope",
    );
    let r = post_form(
        server.client().post(token_url(server)),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.sign(&claims())),
        ]),
    );
    let token = access_token(&r);
    assert_eq!(r.body["scope"], "feed.read");
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
    let w = server
        .as_tenant(&token)
        .post("/Users", &crate::harness::user_body("nope@x.example"));
    crate::harness::assert_scim_error(&w, 403, None);
    // Another tenant's data stays invisible to it.
    let other = server.tenant_token("other");
    let theirs = crate::harness::create_user(&server.as_tenant(&other), "theirs@x.example");
    assert_eq!(
        server
            .as_tenant(&token)
            .get(&format!("/Users/{theirs}"))
            .status,
        404
    );
}

#[test]
fn the_metadata_offers_private_key_jwt_and_the_log_records_the_client_never_the_assertion() {
    let key = IdpKey::es256("ec-1");
    let (ctx, id) = federated(&[&key], &[]);
    let server = &ctx.server;
    let meta = crate::harness::reply(
        server
            .client()
            .get(server.public_url("/.well-known/oauth-authorization-server"))
            .send()
            .unwrap(),
    );
    assert_eq!(meta.status, 200);
    assert_eq!(
        meta.body["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    let algs = meta.body["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("RS256")) && algs.contains(&json!("ES256")));
    assert!(!algs.contains(&json!("none")) && !algs.contains(&json!("HS256")));
    // One granted without client_id, one refused: both logged under the client, no assertion.
    let good = key.sign(&claims());
    access_token(&grant_assertion(server, None, &good));
    let bad = IdpKey::es256("ec-1").sign(&claims());
    grant_assertion(server, Some(&id), &bad);
    std::thread::sleep(Duration::from_millis(1500));
    let signature = |jwt: &str| jwt.rsplit('.').next().unwrap().to_string();
    for line in server.log_lines() {
        assert!(
            !line.contains(&signature(&good)) && !line.contains(&signature(&bad)),
            "{line}"
        );
    }
    let (ok, log, _) = server.cli(&["log", "--json"]);
    assert!(ok);
    let entries: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Value| e.to_string().contains("/oauth2/token"))
        .collect();
    assert_eq!(entries.len(), 2, "{log}");
    assert!(entries.iter().all(|e| e.to_string().contains(&id)), "{log}");
    assert!(!log.contains(&signature(&good)) && !log.contains(&signature(&bad)));
    // `stats` shows the federation with the client.
    let (ok, out, err) = server.cli(&["stats", "--tenant", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("federated:") && out.contains(IDP), "{out}");
}

#[test]
fn an_unreachable_jwks_url_is_503_temporarily_unavailable_and_the_server_goes_on() {
    let key = IdpKey::es256("ec-1");
    let ctx = oauth_server();
    let server = &ctx.server;
    let (id, _, _) = create_client(server, "acme", &[]);
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://localhost:{port}/keys");
    let (ok, _, err) = cli(
        server,
        &[
            "client",
            "federate",
            &id,
            "--jwks",
            &url,
            "--issuer",
            IDP,
            "--subject",
            SUBJECT,
        ],
    );
    assert!(ok, "{err}");
    for _ in 0..2 {
        let started = Instant::now();
        let r = grant_assertion(server, Some(&id), &key.sign(&claims()));
        assert_oauth_error(&r, 503, "temporarily_unavailable");
        assert!(r.headers.contains_key("retry-after"));
        assert!(started.elapsed() < Duration::from_secs(6));
    }
    // Still answers everything else.
    assert_eq!(server.as_tenant(&ctx.token).get("/Users").status, 200);
}

/// An HTTPS server on loopback serving `body` at any path, with a certificate for localhost
/// written (PEM) to `ca_path`; counts its requests.
fn jwks_https_server(ca_path: &std::path::Path, body: String) -> (u16, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(ca_path, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if !got.starts_with(b"GET /idp/keys ") {
                continue;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, hits)
}

#[test]
fn a_jwks_url_is_fetched_over_https_once_and_its_keys_verify_assertions() {
    let key = IdpKey::rs256("rsa-1");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("idp-ca.pem");
    let doc = json!({"keys": [key.jwk.clone()]}).to_string();
    let (port, hits) = jwks_https_server(&ca, doc);
    let ctx = TenantCtx::start_with(
        "acme",
        "",
        &[
            ("GROUPTALK_SCIM_SERVER__PUBLIC_URL", ISSUER),
            ("GROUPTALK_SCIM_OAUTH__JWKS_CA_FILE", ca.to_str().unwrap()),
        ],
    );
    let server = &ctx.server;
    let (id, _, _) = create_client(server, "acme", &[]);
    let url = format!("https://localhost:{port}/idp/keys");
    let (ok, _, err) = cli(
        server,
        &[
            "client",
            "federate",
            &id,
            "--jwks",
            &url,
            "--issuer",
            IDP,
            "--subject",
            SUBJECT,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the CLI does not fetch");
    let t = access_token(&grant_assertion(server, Some(&id), &key.sign(&claims())));
    assert_eq!(server.as_tenant(&t).get("/Users").status, 200);
    // Cached: the next grants do not fetch again.
    access_token(&grant_assertion(server, None, &key.sign(&claims())));
    assert_oauth_error(
        &grant_assertion(server, Some(&id), &IdpKey::rs256("rsa-1").sign(&claims())),
        401,
        "invalid_client",
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
