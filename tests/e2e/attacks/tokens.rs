//! Forged, stale and malformed bearer tokens, and secrets in logs, error bodies and the
//! database. Every refusal is the same 401: status, `WWW-Authenticate` and body do not say which
//! check failed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::{
    assert_scim_error, claims, patch_op, reply, Reply, Server, TenantCtx, SCIM_JSON,
};

fn b64(v: &Value) -> String {
    B64.encode(v.to_string())
}

/// A JWT with any header, signed by `alg` with `key` (HMAC algorithms).
fn hmac_token(header: &Value, claims: &Value, alg: Algorithm, key: &[u8]) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &EncodingKey::from_secret(key), alg).unwrap();
    format!("{msg}.{sig}")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn get_with(server: &Server, authorization: &str) -> Reply {
    reply(
        server
            .client()
            .get(server.url("/Users"))
            .header("authorization", authorization)
            .send()
            .unwrap(),
    )
}

/// Config for tests that send many refused requests from one address on purpose.
pub const FAILURES_UNLIMITED: &str = "[limits]\nauth_failures_per_minute = 1000000\n";

/// The 401 every refusal must be identical to.
fn assert_same_401(r: &Reply, baseline: &Reply, case: &str) {
    assert_eq!(r.status, 401, "{case}: {:?}", r.body);
    assert_scim_error(r, 401, None);
    assert_eq!(r.body, baseline.body, "{case}: the 401 body differs");
    assert_eq!(
        r.headers.get("www-authenticate"),
        baseline.headers.get("www-authenticate"),
        "{case}"
    );
    let detail = r.body["detail"].as_str().unwrap().to_lowercase();
    for hint in [
        "expired",
        "revoked",
        "signature",
        "alg",
        "issuer",
        "unknown",
        "tenant",
        "malformed",
    ] {
        assert!(!detail.contains(hint), "{case}: the 401 says {hint:?}");
    }
}

#[test]
fn every_forged_stale_or_malformed_token_gets_the_same_generic_401() {
    // Hundreds of refusals from one address: above the per-address failure budget, which has
    // its own test (`attacks::flood`); here every refusal must be the same 401.
    let TenantCtx {
        server,
        token: good,
    } = TenantCtx::start_with("acme", FAILURES_UNLIMITED, &[]);
    let beta = server.tenant_token("beta");
    let revoked = server.token("acme");
    let jti = claims(&revoked)["jti"].as_str().unwrap().to_string();
    assert!(server.cli(&["token", "revoke", &jti]).0);
    let key = std::fs::read(server.data_dir().join("signing.key")).unwrap();
    let c = claims(&good);
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let signed = |claims: &Value| hmac_token(&hs256, claims, Algorithm::HS256, &key);
    let with = |k: &str, v: Value| {
        let mut c = c.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = c.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let sig = good.rsplit('.').next().unwrap();
    let body_of_good = good.rsplit_once('.').unwrap().0;
    let ec = rcgen::KeyPair::generate().unwrap();
    let es256 = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &c,
        &EncodingKey::from_ec_der(&ec.serialize_der()),
    )
    .unwrap();
    let attacker_key = [0x42u8; 64];

    // Positive controls: the same request with the real token (any scheme case) works, and a
    // token re-signed by us with the real key and unchanged claims works — so every case
    // below fails for the one thing it changes.
    assert_eq!(get_with(&server, &format!("Bearer {good}")).status, 200);
    assert_eq!(get_with(&server, &format!("bearer {good}")).status, 200);
    assert_eq!(
        get_with(&server, &format!("Bearer {}", signed(&c))).status,
        200
    );

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&c)
            ),
        ),
        (
            "alg none, real signature",
            format!("{}.{}.{sig}", b64(&json!({"alg": "none"})), b64(&c)),
        ),
        (
            "alg NoNe",
            format!("{}.{}.", b64(&json!({"alg": "NoNe"})), b64(&c)),
        ),
        (
            "HS512 with the real key",
            hmac_token(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &c,
                Algorithm::HS512,
                &key,
            ),
        ),
        (
            "HS384 with the real key",
            hmac_token(
                &json!({"alg": "HS384", "typ": "JWT"}),
                &c,
                Algorithm::HS384,
                &key,
            ),
        ),
        (
            "RS256 header, HMAC signature with the real key",
            hmac_token(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &c,
                Algorithm::HS256,
                &key,
            ),
        ),
        ("ES256 with an attacker's EC key", es256),
        (
            "HS256 with an attacker's key",
            hmac_token(&hs256, &c, Algorithm::HS256, &attacker_key),
        ),
        (
            "HS256 with an empty key",
            hmac_token(&hs256, &c, Algorithm::HS256, b""),
        ),
        (
            "embedded jwk of the attacker's key",
            hmac_token(
                &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": B64.encode(attacker_key)}}),
                &c,
                Algorithm::HS256,
                &attacker_key,
            ),
        ),
        (
            "kid pointing at /dev/null",
            hmac_token(
                &json!({"alg": "HS256", "kid": "../../../../dev/null"}),
                &c,
                Algorithm::HS256,
                b"",
            ),
        ),
        (
            "signature zeroed",
            format!("{body_of_good}.{}", B64.encode([0u8; 32])),
        ),
        (
            "signature of another token",
            format!("{body_of_good}.{}", beta.rsplit('.').next().unwrap()),
        ),
        (
            "payload swapped to another tenant",
            format!(
                "{}.{}.{sig}",
                good.split('.').next().unwrap(),
                b64(&claims(&beta))
            ),
        ),
        ("expired", signed(&with("exp", json!(now() - 60)))),
        ("expired long ago", signed(&with("exp", json!(1)))),
        (
            "not yet valid (issued tomorrow)",
            signed(&with("iat", json!(now() + 86_400))),
        ),
        ("revoked", revoked.clone()),
        (
            "unknown token id",
            signed(&with("jti", json!("00000000-0000-4000-8000-000000000000"))),
        ),
        (
            "real token id, other tenant",
            signed(&with("tid", claims(&beta)["tid"].clone())),
        ),
        ("wrong issuer", signed(&with("iss", json!("someone-else")))),
        ("no token id", signed(&without("jti"))),
        ("no tenant", signed(&without("tid"))),
        (
            "claims not an object",
            format!("{}.{}.{}", b64(&hs256), B64.encode("[]"), sig),
        ),
        ("truncated by 10", good[..good.len() - 10].to_string()),
        ("header and payload only", body_of_good.to_string()),
        ("an extra segment", format!("{good}.x")),
        (
            "payload not base64",
            format!("{}.!!!.{sig}", good.split('.').next().unwrap()),
        ),
        ("not a JWT", "not-a-jwt".into()),
        ("empty", String::new()),
    ];
    let baseline = get_with(&server, "Bearer not-a-jwt");
    assert_eq!(baseline.status, 401);
    for (case, token) in &cases {
        let r = get_with(&server, &format!("Bearer {token}"));
        assert_same_401(&r, &baseline, case);
        // Also on a write route: refused before anything is read or written.
        let r = reply(
            server
                .client()
                .post(server.url("/Users"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/scim+json")
                .body(json!({"userName": format!("forged {case}")}).to_string())
                .send()
                .unwrap(),
        );
        assert_same_401(&r, &baseline, case);
    }
    for (case, header) in [
        ("no scheme", good.clone()),
        (
            "Basic scheme",
            format!("Basic {}", B64.encode(format!("acme:{good}"))),
        ),
        ("Token scheme", format!("Token {good}")),
        ("Bearer without token", "Bearer".to_string()),
        ("two tokens", format!("Bearer {revoked} {good}")),
    ] {
        assert_same_401(&get_with(&server, &header), &baseline, case);
    }
    // No header at all, and the token in the query string (where it would end up in logs).
    let none = reply(server.client().get(server.url("/Users")).send().unwrap());
    assert_same_401(&none, &baseline, "no Authorization");
    let query = reply(
        server
            .client()
            .get(format!("{}?access_token={good}", server.url("/Users")))
            .send()
            .unwrap(),
    );
    assert_same_401(&query, &baseline, "access_token query parameter");
    // Nothing forged got written.
    let list = server.as_tenant(&good).get("/Users");
    assert_eq!(list.body["totalResults"], 0, "{:?}", list.body);
}

#[test]
fn hundred_kilobyte_tokens_get_the_same_generic_401() {
    let TenantCtx {
        server,
        token: good,
    } = TenantCtx::start("acme");
    let key = std::fs::read(server.data_dir().join("signing.key")).unwrap();
    let baseline = get_with(&server, "Bearer not-a-jwt");
    let mut padded = claims(&good);
    padded["pad"] = json!("p".repeat(75 * 1024));
    let cases = [
        ("100 KB of junk", "x".repeat(100 * 1024)),
        (
            "100 KB JWT correctly signed with the real key",
            hmac_token(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &padded,
                Algorithm::HS256,
                &key,
            ),
        ),
    ];
    for (case, token) in cases {
        assert!(token.len() >= 100 * 1024, "{case}: {} bytes", token.len());
        assert_same_401(
            &get_with(&server, &format!("Bearer {token}")),
            &baseline,
            case,
        );
    }
    // The server is fine afterwards.
    assert_eq!(server.as_tenant(&good).get("/Users").status, 200);
}

/// Bytes of a file, or empty when it does not exist.
fn read_or_empty(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_token_or_key_in_logs_error_bodies_or_the_database() {
    // Debug logging on purpose: an administrator chasing a problem turns it on.
    let TenantCtx {
        mut server,
        token: good,
    } = TenantCtx::start_with("acme", "", &[("RUST_LOG", "debug")]);
    let other = server.token("acme");
    let jti = claims(&other)["jti"].as_str().unwrap().to_string();
    assert!(server.cli(&["token", "revoke", &jti]).0);
    let scim = server.as_tenant(&good);
    let mut replies = Vec::new();
    let created = scim.post("/Users", &json!({"userName": "alice@contoso.com"}));
    let id = created.body["id"].as_str().unwrap().to_string();
    replies.push(created);
    replies.push(scim.post("/Users", &json!({"userName": "alice@contoso.com"}))); // 409
    replies.push(scim.filter("/Users", "userName eq")); // 400
    replies.push(scim.get("/Users/00000000-0000-4000-8000-000000000000")); // 404
    replies.push(scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([{"op": "remove", "path": "userName"}])),
    )); // 400
    replies.push(scim.send_bytes("POST", "/Users", SCIM_JSON, "{not json"));
    replies.push(reply(
        scim.request("PUT", &format!("/Users/{id}"))
            .header("if-match", "W/\"999\"")
            .header("content-type", SCIM_JSON)
            .body(json!({"userName": "x"}).to_string())
            .send()
            .unwrap(),
    )); // 412
    replies.push(scim.send_bytes("POST", "/Users", "text/plain", "x")); // 415
    for bad in [
        format!("{good}x"),
        good[..good.len() - 3].to_string(),
        other.clone(),
        format!(
            "{}.{}.{}",
            good.split('.').next().unwrap(),
            B64.encode("{}"),
            good.rsplit('.').next().unwrap()
        ),
    ] {
        replies.push(server.as_tenant(&bad).get("/Users"));
        replies.push(
            server
                .as_tenant(&bad)
                .post("/Users", &json!({"userName": "x"})),
        );
    }
    server.stop();

    let secrets: Vec<(&str, String)> = vec![
        ("token", good.clone()),
        (
            "token signature",
            good.rsplit('.').next().unwrap().to_string(),
        ),
        (
            "revoked token signature",
            other.rsplit('.').next().unwrap().to_string(),
        ),
    ];
    let key = std::fs::read(server.data_dir().join("signing.key")).unwrap();
    let key_forms = [
        B64.encode(&key),
        base64::engine::general_purpose::STANDARD.encode(&key),
        key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ];
    let log = server.log_lines().join("\n");
    assert!(
        log.contains("DEBUG") || log.contains("debug"),
        "debug logging was on: {log}"
    );
    for (what, s) in &secrets {
        assert!(!log.contains(s.as_str()), "{what} in the server log");
        for r in &replies {
            assert!(
                !r.body.to_string().contains(s.as_str()),
                "{what} in an error body: {:?}",
                r.body
            );
        }
    }
    for k in &key_forms {
        assert!(!log.contains(k.as_str()), "signing key in the server log");
    }
    assert!(
        !log.to_lowercase().contains("bearer ey"),
        "an Authorization header in the log"
    );
    // The provisioning log and everything else in the database files.
    let db = server.db_path();
    let mut files = read_or_empty(db.clone());
    files.extend(read_or_empty(format!("{}-wal", db.display()).into()));
    for (what, s) in &secrets {
        assert!(
            !contains(&files, s.as_bytes()),
            "{what} in the database files"
        );
    }
    assert!(!contains(&files, &key), "signing key in the database files");
}
