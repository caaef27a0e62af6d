//! Authentication: missing, tampered, revoked, expired and foreign tokens, and tenant isolation.

use base64::Engine;
use grouptalk_scim::scim::schema::GROUP;
use serde_json::json;

use crate::harness::{assert_scim_error, claims, reply, user_body, TenantCtx};

fn assert_401(r: &crate::harness::Reply) {
    assert_scim_error(r, 401, None);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
}

#[test]
fn missing_and_malformed_tokens_are_401_with_www_authenticate() {
    let server = TenantCtx::start("acme").server;
    assert_401(&reply(
        server.client().get(server.url("/Users")).send().unwrap(),
    ));
    assert_401(&reply(
        server
            .client()
            .get(server.url("/Users"))
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .unwrap(),
    ));
    assert_401(&server.as_tenant("not-a-jwt").get("/Users"));
    assert_401(&server.as_tenant(&"x".repeat(100_000)).get("/Users"));
}

#[test]
fn tampered_token_is_401() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut c = claims(&token);
    c["tid"] = json!("someone-else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
    assert_401(&server.as_tenant(&parts.join(".")).get("/Users"));
    // Signature from a different key.
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&token),
        &jsonwebtoken::EncodingKey::from_secret(&[7u8; 64]),
    )
    .unwrap();
    assert_401(&server.as_tenant(&other).get("/Users"));
}

#[test]
fn revoked_token_is_refused_on_the_next_request_without_restart() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let scim = server.as_tenant(&token);
    assert_eq!(scim.get("/Users").status, 200);
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    let (ok, _, err) = server.cli(&["token", "revoke", &jti]);
    assert!(ok, "{err}");
    assert_401(&scim.get("/Users"));
    // Revoking by the token itself also works and is idempotent.
    let (ok, _, err) = server.cli(&["token", "revoke", &token]);
    assert!(ok, "{err}");
    // A tenant and token created while the server runs work at once.
    let t2 = server.tenant_token("beta");
    assert_eq!(server.as_tenant(&t2).get("/Users").status, 200);
}

/// A GET checks its token inside its own read transaction; whatever path a GET takes — a point
/// lookup, a group's members, discovery without any read, an error found before reading — a
/// revoked token gets the same 401 and nothing else.
#[test]
fn revoked_token_gets_401_on_every_read_route_whatever_it_would_have_answered() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let scim = server.as_tenant(&token);
    let user = scim.post("/Users", &user_body("alice@contoso.com"));
    let uid = user.body["id"].as_str().unwrap().to_string();
    let group = scim.post(
        "/Groups",
        &json!({"schemas": [GROUP],
                "displayName": "Dispatch", "members": [{"value": uid}]}),
    );
    let gid = group.body["id"].as_str().unwrap().to_string();
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    assert!(server.cli(&["token", "revoke", &jti]).0);
    let routes = [
        "/Users?filter=userName+eq+%22alice%40contoso.com%22".to_string(),
        format!("/Users/{uid}"),
        format!("/Groups/{gid}"),
        format!("/Groups/{gid}?excludedAttributes=members"),
        "/Users".into(),
        "/Users/no-such-id".into(),
        "/Users?filter=userName+eq".into(),
        "/Users?filter=%FF".into(),
        "/Users?sortOrder=sideways".into(),
        "/Schemas".into(),
        "/ServiceProviderConfig".into(),
        "/NoSuchEndpoint".into(),
    ];
    for route in &routes {
        let r = scim.get(route);
        assert_401(&r);
        let text = r.body.to_string();
        assert!(
            !text.contains("alice") && !text.contains("Dispatch"),
            "{route}: {text}"
        );
    }
    // The same routes with a good token of the same tenant answer as usual.
    let fresh = server.token("acme");
    let ok = server.as_tenant(&fresh);
    assert_eq!(ok.get(&routes[0]).body["totalResults"], 1);
    assert_eq!(ok.get(&format!("/Users/{uid}")).status, 200);
    assert_scim_error(
        &ok.get("/Users?filter=userName+eq"),
        400,
        Some("invalidFilter"),
    );
    assert_eq!(ok.get("/Schemas").status, 200);
}

#[test]
fn expired_token_is_401() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let key = std::fs::read(server.dir.path().join("data/signing.key")).unwrap();
    let mut c = claims(&token);
    c["exp"] = json!(c["iat"].as_i64().unwrap() - 10);
    c["iat"] = json!(c["iat"].as_i64().unwrap() - 100);
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_401(&server.as_tenant(&expired).get("/Users"));
    // The same claims without the past expiry are accepted: it was the expiry that failed.
    let mut fresh = c.clone();
    fresh.as_object_mut().unwrap().remove("exp");
    let ok = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &fresh,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_eq!(server.as_tenant(&ok).get("/Users").status, 200);
}

#[test]
fn another_tenants_resources_are_invisible() {
    let TenantCtx { server, token: a } = TenantCtx::start("acme");
    let b = server.tenant_token("beta");
    let (sa, sb) = (server.as_tenant(&a), server.as_tenant(&b));
    let created = sa.post("/Users", &user_body("alice@contoso.com"));
    let id = created.body["id"].as_str().unwrap();
    assert_scim_error(&sb.get(&format!("/Users/{id}")), 404, None);
    assert_scim_error(
        &sb.put(&format!("/Users/{id}"), &user_body("x@y")),
        404,
        None,
    );
    assert_scim_error(&sb.delete(&format!("/Users/{id}")), 404, None);
    assert_eq!(
        sb.filter("/Users", "userName eq \"alice@contoso.com\"")
            .body["totalResults"],
        0
    );
    assert_eq!(sb.get("/Users").body["totalResults"], 0);
    // Same userName in another tenant is fine.
    assert_eq!(
        sb.post("/Users", &user_body("alice@contoso.com")).status,
        201
    );
    assert_eq!(
        sa.get(&format!("/Users/{id}")).status,
        200,
        "A's user untouched"
    );
}

#[test]
fn tokens_never_appear_in_logs() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let scim = server.as_tenant(&token);
    scim.get("/Users");
    server.as_tenant(&format!("{token}x")).get("/Users");
    server.stop();
    let log = server.log_lines().join("\n");
    assert!(log.contains("request"), "request lines are logged: {log}");
    assert!(!log.contains(&token), "token leaked into the log");
    assert!(
        !log.contains(token.split('.').nth(2).unwrap()),
        "signature leaked into the log"
    );
}
