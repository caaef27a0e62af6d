//! Operations: provisioning log, metrics, health, certificate reload, graceful stop, backups,
//! limits — what an administrator relies on to see and prove what Entra did.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{assert_scim_error, create_user, reply, user_body, Server, TenantCtx, BIN};

fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Read `grouptalk-scim log --json` until `pred` holds for some entry (bounded wait).
fn log_entries(server: &Server, args: &[&str], pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut full = vec!["log", "--json"];
        full.extend_from_slice(args);
        let (ok, out, err) = server.cli(&full);
        assert!(ok, "{err}");
        let entries: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if pred(&entries) || Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn provisioning_log_records_success_and_failure_without_tokens() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let scim = server.as_tenant(&token);
    let created = scim.post("/Users", &json!({"userName": "a@x", "active": "True"}));
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_scim_error(
        &scim.post("/Users", &json!({"userName": "A@x"})),
        409,
        Some("uniqueness"),
    );
    // Literal: the body as Entra sends it (capitalised op), which the notes below record.
    scim.send("PATCH", &format!("/Users/{id}?aadOptscim062020"), &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}));
    server.as_tenant("garbage").get("/Users");

    let entries = log_entries(&server, &[], |e| e.len() >= 4);
    assert_eq!(entries.len(), 4, "{entries:#?}");
    let create = &entries[0];
    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], "/api/scim/Users");
    assert_eq!(create["status"], 201);
    assert_eq!(create["tenant"], "acme");
    assert_eq!(create["resource_type"], "User");
    assert_eq!(create["resource_id"], id.as_str());
    assert!(create["token_id"].as_str().is_some_and(|t| t.len() == 36));
    assert!(
        create["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "string boolean"),
        "{create}"
    );
    let conflict = &entries[1];
    assert_eq!(conflict["status"], 409);
    assert_eq!(conflict["scim_type"], "uniqueness");
    assert!(conflict["detail"]
        .as_str()
        .unwrap()
        .contains("already in use"));
    let patch = &entries[2];
    assert_eq!(patch["status"], 200);
    let notes: Vec<&str> = patch["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.contains(&"capitalised op") && notes.contains(&"aadOptscim062020 flag"),
        "{notes:?}"
    );
    let refused = &entries[3];
    assert_eq!(refused["status"], 401);
    assert!(refused["tenant"].is_null());

    // Filters: --status, --resource, --tenant, --since; table output; never the token.
    assert_eq!(
        log_entries(&server, &["--status", "4xx"], |_| true).len(),
        2
    );
    assert_eq!(
        log_entries(&server, &["--status", "409"], |_| true).len(),
        1
    );
    assert_eq!(
        log_entries(&server, &["--resource", &id], |_| true).len(),
        2
    );
    assert_eq!(
        log_entries(&server, &["--tenant", "acme", "--since", "1h"], |_| true).len(),
        3
    );
    let (ok, table, _) = server.cli(&["log"]);
    assert!(
        ok && table.contains("uniqueness") && table.contains("POST"),
        "{table}"
    );
    let (_, all_json, _) = server.cli(&["log", "--json"]);
    for text in [&table, &all_json] {
        assert!(!text.contains(&token) && !text.contains(token.split('.').nth(2).unwrap()));
    }
}

#[test]
fn log_follow_sees_a_new_request() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let mut child = Command::new(BIN)
        .args([
            "--config",
            server.config.to_str().unwrap(),
            "log",
            "--follow",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    let created = server
        .as_tenant(&token)
        .post("/Users", &json!({"userName": "followed"}));
    let id = created.body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = line.contains(&id);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "log --follow did not show the new request");
}

fn counter(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_move_after_requests_and_stay_off_the_public_port() {
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    let url = server.admin_url("/metrics");
    let (status, before) = get_text(&url);
    assert_eq!(status, 200);
    let label = "route=\"/Users\"";
    let n0 = counter(
        &before,
        "grouptalk_scim_requests_total",
        &[label, "status=\"201\""],
    );
    for i in 0..3 {
        assert_eq!(
            scim.post("/Users", &json!({"userName": format!("m{i}")}))
                .status,
            201
        );
    }
    assert_scim_error(
        &scim.post("/Users", &json!({"userName": "m0"})),
        409,
        Some("uniqueness"),
    );
    let (_, after) = get_text(&url);
    assert_eq!(
        counter(
            &after,
            "grouptalk_scim_requests_total",
            &[label, "status=\"201\""]
        ) - n0,
        3.0,
        "{after}"
    );
    assert_eq!(
        counter(
            &after,
            "grouptalk_scim_requests_total",
            &[label, "status=\"409\"", "scim_type=\"uniqueness\""]
        ),
        1.0
    );
    assert!(
        counter(
            &after,
            "grouptalk_scim_request_duration_seconds_count",
            &[label]
        ) >= 4.0
    );
    assert_eq!(
        counter(
            &after,
            "grouptalk_scim_resources",
            &["tenant=\"acme\"", "kind=\"User\""]
        ),
        3.0
    );
    assert!(counter(&after, "grouptalk_scim_writer_batch_size_count", &[]) >= 3.0);
    assert!(counter(&after, "grouptalk_scim_database_size_bytes", &[]) > 0.0);
    let idle = counter(
        &after,
        "grouptalk_scim_token_seconds_since_last_request",
        &["tenant=\"acme\""],
    );
    assert!((0.0..60.0).contains(&idle), "{idle}");
    // Health on the admin listener, and /metrics is not on the public port.
    assert_eq!(get_text(&server.admin_url("/healthz")).0, 200);
    assert_eq!(get_text(&server.admin_url("/readyz")).0, 200);
    let public = reply(
        server
            .client()
            .get(server.public_url("/metrics"))
            .send()
            .unwrap(),
    );
    assert_eq!(public.status, 404);
    let ready = reply(
        server
            .client()
            .get(server.public_url("/readyz"))
            .send()
            .unwrap(),
    );
    assert_eq!(ready.status, 200);
}

fn write_cert(server: &Server) -> Vec<u8> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(server.dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(
        server.dir.path().join("key.pem"),
        ck.signing_key.serialize_pem(),
    )
    .unwrap();
    ck.cert.pem().into_bytes()
}

fn client_trusting(server: &Server, pem: &[u8]) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .resolve("localhost", server.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn sighup_reloads_the_certificate_and_refuses_a_bad_one() {
    let server = Server::start();
    let old_pem = std::fs::read(server.dir.path().join("cert.pem")).unwrap();
    let livez = server.public_url("/livez");
    let new_pem = write_cert(&server);
    let pid = server.pid().unwrap().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS certificate reloaded"))
    {
        assert!(
            Instant::now() < deadline,
            "no reload: {:?}",
            server.log_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        client_trusting(&server, &new_pem)
            .get(&livez)
            .send()
            .is_ok(),
        "new connections see the new certificate"
    );
    assert!(
        client_trusting(&server, &old_pem)
            .get(&livez)
            .send()
            .is_err(),
        "the old certificate is gone"
    );
    // A broken certificate is refused and the current one stays.
    std::fs::write(server.dir.path().join("cert.pem"), "not a certificate").unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS reload refused"))
    {
        assert!(
            Instant::now() < deadline,
            "no refusal: {:?}",
            server.log_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(client_trusting(&server, &new_pem)
        .get(&livez)
        .send()
        .is_ok());
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let body = json!({"userName": "slow@x"}).to_string();
    let mut tls = server.raw_tls(Duration::from_secs(20));
    let head = format!(
        "POST /api/scim/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&body.as_bytes()[..5]).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.pid().unwrap().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tls.write_all(&body.as_bytes()[5..]).unwrap();
    tls.flush().unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("slow@x") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    server.stop();
    // A clean stop checkpoints the WAL into the database and removes it, so the next start has
    // nothing to replay (read-only connections closing last would leave it behind).
    let wal = server.dir.path().join("data/grouptalk-scim.db-wal");
    assert!(
        !wal.exists(),
        "WAL left after a clean stop: {}",
        wal.display()
    );
    // The acknowledged write is on disk after the clean stop.
    let conn =
        rusqlite::Connection::open(server.dir.path().join("data/grouptalk-scim.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM resources WHERE user_name = 'slow@x'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(
        server.log_lines().iter().any(|l| l.contains("stopped")),
        "{:?}",
        server.log_lines()
    );
}

#[test]
fn backup_during_concurrent_writes_holds_every_acknowledged_write() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, url, token, acked, stop) = (
                server.client().clone(),
                server.url("/Users"),
                token.clone(),
                acked.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(json!({"userName": format!("w{w}-{i}")}).to_string())
                        .send();
                    if let Ok(r) = r {
                        if r.status().as_u16() == 201 {
                            let v: Value = r.json().unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push((Instant::now(), v["id"].as_str().unwrap().to_string()));
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let file = server.dir.path().join("backup.db");
    let started = Instant::now();
    let (ok, out, err) = server.cli(&["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("ok ("), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let (ok, out, err) = server.cli(&["backup", "--verify", file.to_str().unwrap()]);
    assert!(ok && out.contains(": ok"), "{out}{err}");
    let conn = rusqlite::Connection::open(&file).unwrap();
    let before: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t < started)
        .map(|(_, id)| id.clone())
        .collect();
    assert!(before.len() > 10, "writes were running: {}", before.len());
    for id in &before {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM resources WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "acknowledged write {id} missing from the backup");
    }
    // Restore is refused while the server runs.
    let (ok, _, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(!ok && err.contains("running"), "{err}");
    let (ok, _, err) = server.cli(&["backup", file.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[test]
fn restore_brings_back_the_backup_when_stopped() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let id = server
        .as_tenant(&token)
        .post("/Users", &user_body("kept@x"))
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = server.dir.path().join("b.db");
    assert!(server.cli(&["backup", file.to_str().unwrap()]).0);
    assert_eq!(
        server
            .as_tenant(&token)
            .delete(&format!("/Users/{id}"))
            .status,
        204
    );
    server.stop();
    let (ok, out, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 users"), "{out}");
    server.spawn();
    assert_eq!(
        server.as_tenant(&token).get(&format!("/Users/{id}")).status,
        200
    );
    let (ok, _, err) = server.cli(&[
        "backup",
        "--verify",
        server.dir.path().join("nope.db").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[test]
fn oversized_body_is_413_and_rate_limit_is_429_with_retry_after() {
    let TenantCtx { server, token } = TenantCtx::start_with(
        "acme",
        "[limits]\nrate_per_token = 1\nrate_burst = 3\n",
        &[],
    );
    // A 3 MiB body is refused from its Content-Length, before it is sent: the client gets the
    // 413 after writing only the head (a client still pushing the body could instead see the
    // connection close under it).
    let mut tls = server.raw_tls(Duration::from_secs(10));
    let head = format!(
        "POST /api/scim/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        3 * 1024 * 1024
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("\"status\":\"413\"") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/scim+json"), "{text}");
    let mut limited = None;
    for _ in 0..20 {
        let r = server.as_tenant(&token).get("/Users");
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no 429 after 20 quick requests with rate 1/s");
    assert_scim_error(&r, 429, None);
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // A write the limiter stops is refused before it runs; both refusals are in the provisioning
    // log under their tenant (the token was confirmed before either answer).
    let post = server
        .as_tenant(&token)
        .post("/Users", &json!({"userName": "late"}));
    assert_scim_error(&post, 429, None);
    let refused = |e: &Value, method: &str| e["status"] == 429 && e["method"] == method;
    let entries = log_entries(&server, &["--tenant", "acme"], |e| {
        e.iter().any(|x| refused(x, "GET")) && e.iter().any(|x| refused(x, "POST"))
    });
    assert!(
        entries.iter().any(|x| refused(x, "GET")) && entries.iter().any(|x| refused(x, "POST")),
        "{entries:?}"
    );
}

#[test]
fn stats_show_directory_and_traffic() {
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    let u = create_user(&scim, "s1");
    scim.post(
        "/Groups",
        &json!({"displayName": "G", "members": [{"value": u}]}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out, err) = server.cli(&["stats", "--tenant", "acme"]);
        assert!(ok, "{err}");
        if out.contains("2xx: 2") || Instant::now() > deadline {
            assert!(
                out.contains("users        1")
                    && out.contains("groups       1")
                    && out.contains("memberships  1"),
                "{out}"
            );
            assert!(out.contains("2xx: 2"), "{out}");
            assert!(out.contains("last request: 20"), "{out}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
