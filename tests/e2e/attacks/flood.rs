//! Denial of service from one address or one tenant: whatever it sends, its cost is bounded and
//! the others are served. Per-address budgets are shown from two loopback addresses (127.0.0.1
//! floods, 127.0.0.2 is the bystander); per-tenant ones with two tenants. Latencies are not
//! asserted (the bench measures them); where a test must show that a bystander did not wait for
//! the flood, it compares the order in which requests finished.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::harness::{create_user, reply, Reply, Server, TenantCtx};

/// A client whose connections come from `127.0.0.{last}` (loopback is the whole 127/8).
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

fn get(client: &Client, server: &Server, path: &str, token: &str) -> Reply {
    reply(
        client
            .get(server.url(path))
            .bearer_auth(token)
            .send()
            .unwrap(),
    )
}

fn metrics(server: &Server) -> String {
    reqwest::blocking::get(server.admin_url("/metrics"))
        .unwrap()
        .text()
        .unwrap()
}

/// The provisioning log as JSON lines.
fn log_entries(server: &Server) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["log", "--json", "--limit", "5000"]);
    assert!(ok, "log: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Wait until the provisioning log's queue has been written (it flushes every 200 ms).
fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn random_methods_do_not_grow_the_metrics() {
    let server = Server::start();
    let before = metrics(&server).len();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..200 {
        let method: String = (0..2000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'A' + (seed % 26) as u8)
            })
            .collect();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = server.client().request(m, server.url("/Users")).send();
    }
    let after = metrics(&server);
    // 200 new series of 2,000-character labels would add 400 KB; bounded labels add a few.
    assert!(
        after.len() < before + 8 * 1024,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(after.contains("method=\"other\""), "{after}");
}

#[test]
fn anonymous_flood_with_long_paths_leaves_a_bounded_log() {
    let server = Server::start_with("[limits]\nauth_failures_per_minute = 100000\n", &[]);
    let long = format!("/Users/{}", "x".repeat(60_000));
    for i in 0..200 {
        let r = server
            .client()
            .get(server.url(&long))
            .bearer_auth(format!("not-a-token-{i}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    settle();
    let entries = log_entries(&server);
    let refused: Vec<&Value> = entries.iter().filter(|e| e["status"] == 401).collect();
    // The administrator still sees that requests are refused with 401 (the default budget is
    // 30 entries a minute per address) — but not 200 of them, and none carries 60 KB.
    assert!(!refused.is_empty(), "no 401 in the log");
    assert!(
        refused.len() <= 30,
        "{} anonymous entries logged",
        refused.len()
    );
    for e in &refused {
        let path = e["path"].as_str().unwrap();
        assert!(
            path.chars().count() <= 513,
            "a path of {} chars",
            path.len()
        );
        assert!(path.ends_with('…'), "{path}");
    }
    let text = metrics(&server);
    let suppressed = text
        .lines()
        .find(|l| l.starts_with("grouptalk_scim_provisioning_log_suppressed_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(suppressed >= 170.0, "suppressed = {suppressed}");
}

/// The client side of an HTTP/2 connection that sends the preface and its SETTINGS, then
/// nothing: a TLS connection offering only `h2`.
fn idle_h2(server: &Server) -> Option<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(server.addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    let mut config = (*server.tls_client_config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls_pki_types::ServerName::try_from("localhost").ok()?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).ok()?;
    }
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").ok()?;
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).ok()?;
    tls.flush().ok()?;
    Some(tls)
}

/// Whether the server has closed the connection (EOF or reset) — reading what it sends meanwhile
/// (its SETTINGS, pings, a GOAWAY).
fn closed_within(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tls.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn idle_http2_connections_are_closed_and_one_address_cannot_hold_every_slot() {
    let TenantCtx { server, token } = TenantCtx::start_with(
        "acme",
        "[limits]\nmax_connections_per_address = 4\nidle_timeout_secs = 3\n",
        &[],
    );
    // 127.0.0.1 opens ten idle HTTP/2 connections: four are served, the rest closed at once.
    let mut held: Vec<_> = (0..10).filter_map(|_| idle_h2(&server)).collect();
    assert!(
        held.len() <= 4,
        "{} connections from one address were accepted",
        held.len()
    );
    assert!(!held.is_empty(), "no connection was accepted at all");
    // Another address is served meanwhile.
    let bystander = client_from(&server, 2);
    let r = get(&bystander, &server, "/Users", &token);
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The idle ones are closed after the idle timeout, not held forever.
    for tls in &mut held {
        assert!(
            closed_within(tls, Duration::from_secs(20)),
            "an idle HTTP/2 connection stayed open"
        );
    }
    // Their slots are free again.
    let again = idle_h2(&server);
    assert!(
        again.is_some(),
        "the address got no slot back after its connections closed"
    );
}

#[test]
fn bad_token_flood_from_one_address_gets_429_while_another_address_and_tenant_are_served() {
    let TenantCtx { server, token } =
        TenantCtx::start_with("acme", "[limits]\nauth_failures_per_minute = 10\n", &[]);
    let beta = server.tenant_token("beta");
    let attacker = client_from(&server, 1);
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(get(&attacker, &server, "/Users", &format!("junk-{i}")));
    }
    let refused = statuses.iter().filter(|r| r.status == 401).count();
    let throttled: Vec<&Reply> = statuses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused, 10, "failures allowed before 429");
    assert_eq!(throttled.len(), 30);
    assert!(throttled[0].headers.get("retry-after").is_some());
    // Another address, two tenants: served.
    let bystander = client_from(&server, 2);
    assert_eq!(get(&bystander, &server, "/Users", &token).status, 200);
    assert_eq!(get(&bystander, &server, "/Users", &beta).status, 200);
    // A wrong token from the bystander is still an honest 401.
    assert_eq!(get(&bystander, &server, "/Users", "junk").status, 401);
}

#[test]
fn per_address_limits_follow_x_forwarded_for_only_from_a_trusted_proxy() {
    let TenantCtx { server, token } = TenantCtx::start_with(
        "acme",
        "[limits]\nauth_failures_per_minute = 5\nmax_connections_per_address = 2\n",
        &[("GROUPTALK_SCIM_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1\"]")],
    );
    let proxy = client_from(&server, 1);
    let via = |client: &Client, xff: &str, tok: &str| {
        reply(
            client
                .get(server.url("/Users"))
                .bearer_auth(tok)
                .header("x-forwarded-for", xff)
                .send()
                .unwrap(),
        )
    };
    // Through the trusted proxy, each client has its own failure budget.
    let first: Vec<u16> = (0..7)
        .map(|_| via(&proxy, "198.51.100.7", "junk").status)
        .collect();
    assert_eq!(first, [401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(via(&proxy, "198.51.100.8", "junk").status, 401);
    assert_eq!(via(&proxy, "198.51.100.8", &token).status, 200);
    // A client that writes its own X-Forwarded-For in front of the proxy's is not believed.
    assert_eq!(
        via(&proxy, "198.51.100.8, 198.51.100.7", "junk").status,
        429
    );
    // An untrusted peer's X-Forwarded-For is ignored: its failures are its own address's.
    let direct = client_from(&server, 3);
    let spoofed: Vec<u16> = (0..7)
        .map(|i| via(&direct, &format!("203.0.113.{i}"), "junk").status)
        .collect();
    assert_eq!(spoofed, [401, 401, 401, 401, 401, 429, 429]);
    // The proxy's connections are not capped per address (it carries every client).
    let conns: Vec<_> = (0..6).filter_map(|_| idle_h2(&server)).collect();
    assert_eq!(conns.len(), 6, "a trusted proxy's connections were capped");
}

#[test]
fn one_tenants_slow_reads_leave_the_other_tenants_reads_writes_and_token_checks_alone() {
    // Each data-sized read holds its connection 3 s (as a slow scan would); point lookups do not.
    let TenantCtx { server, token: a } =
        TenantCtx::start_with("acme", "", &[("GROUPTALK_TEST_READ_DELAY_MS", "3000")]);
    let b = server.tenant_token("beta");
    let b_revoked = server.token("beta");
    let jti = crate::harness::claims(&b_revoked)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.cli(&["token", "revoke", &jti]).0);
    let b_user = create_user(&server.as_tenant(&b), "bob@beta.example");
    let finished: Arc<Mutex<Vec<(String, Instant, u16)>>> = Arc::default();
    let flood: Vec<_> = (0..16)
        .map(|i| {
            let c = server.scim_client(&a);
            let done = finished.clone();
            std::thread::spawn(move || {
                let r = c.try_send("GET", "/Users", None).unwrap();
                done.lock()
                    .unwrap()
                    .push((format!("a{i}"), Instant::now(), r.status));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Tenant B: a lookup by id, a write (its token check), a revoked token, and a list.
    let scim_b = server.as_tenant(&b);
    let point = scim_b.get(&format!("/Users/{b_user}"));
    let point_at = Instant::now();
    let write = scim_b.post("/Users", &crate::harness::user_body("carol@beta.example"));
    let write_at = Instant::now();
    let refused = server
        .as_tenant(&b_revoked)
        .get(&format!("/Users/{b_user}"));
    let refused_at = Instant::now();
    let list = scim_b.get("/Users");
    let list_at = Instant::now();
    for t in flood {
        t.join().unwrap();
    }
    let done = finished.lock().unwrap().clone();
    assert!(done.iter().all(|(_, _, s)| *s == 200), "{done:?}");
    let first_a = done.iter().map(|(_, t, _)| *t).min().unwrap();
    let last_a = done.iter().map(|(_, t, _)| *t).max().unwrap();
    assert_eq!(point.status, 200);
    assert_eq!(write.status, 201, "{:?}", write.body);
    assert_eq!(
        refused.status, 401,
        "a revoked token under load: {:?}",
        refused.body
    );
    assert_eq!(list.status, 200);
    // B's point lookup, write and refusal did not wait for any of A's reads to end, and B's own
    // slow list did not wait for all of them.
    assert!(point_at < first_a, "B's lookup waited for A's reads");
    assert!(write_at < first_a, "B's write waited for A's reads");
    assert!(refused_at < first_a, "B's token check waited for A's reads");
    assert!(
        list_at < last_a,
        "B's list waited for every one of A's reads"
    );
}

#[test]
fn a_group_page_carries_a_bounded_number_of_members_and_paging_still_visits_every_group() {
    let ctx = TenantCtx::start_with("acme", "[limits]\nmax_members_per_page = 5\n", &[]);
    let scim = ctx.scim();
    let users: Vec<String> = (0..3)
        .map(|i| create_user(&scim, &format!("u{i}@x.example")))
        .collect();
    for g in 0..3 {
        let members: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
        let r = scim.post(
            "/Groups",
            &json!({"schemas": [grouptalk_scim::scim::schema::GROUP], "displayName": format!("g{g}"), "members": members}),
        );
        assert_eq!(r.status, 201);
    }
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= 3 {
        let r = scim.get_query("/Groups", &format!("startIndex={start}&count=10"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body["totalResults"], 3);
        let page = r.body["Resources"].as_array().unwrap();
        assert_eq!(r.body["itemsPerPage"], page.len());
        assert!(!page.is_empty());
        for g in page {
            // A group is never cut: all three members, every time.
            assert_eq!(g["members"].as_array().unwrap().len(), 3, "{g}");
            seen.push(g["displayName"].as_str().unwrap().to_string());
        }
        // 3 + 3 members exceed the budget of 5: one group a page.
        assert_eq!(page.len(), 1);
        start += page.len();
    }
    assert_eq!(seen, ["g0", "g1", "g2"]);
}

#[test]
fn a_user_in_many_groups_gets_all_of_them() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let user = create_user(&scim, "many@x.example");
    for g in 0..130 {
        let r = scim.post(
            "/Groups",
            &json!({"schemas": [grouptalk_scim::scim::schema::GROUP], "displayName": format!("g{g}"), "members": [{"value": user}]}),
        );
        assert_eq!(r.status, 201);
    }
    let r = scim.get(&format!("/Users/{user}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["groups"].as_array().unwrap().len(), 130);
    let r = scim.filter("/Users", "userName eq \"many@x.example\"");
    assert_eq!(
        r.body["Resources"][0]["groups"].as_array().unwrap().len(),
        130
    );
}
