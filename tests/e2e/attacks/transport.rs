//! The transport: TLS versions and suites, HTTP/1 request smuggling, slow clients, connection
//! floods and oversized bodies. Raw bytes go over a real TLS connection; old TLS versions and
//! weak suites are offered by `openssl s_client`, which can still speak them.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{head, raw_exchange, status_while_sending};
use crate::harness::{RawTls, Server, TenantCtx};

// --- TLS -----------------------------------------------------------------------------------------

/// Run `openssl s_client` against the server; (handshake completed, everything it printed).
fn s_client(server: &Server, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-brief", "-servername", "localhost", "-connect"])
        .arg(format!("127.0.0.1:{}", server.addr.port()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is needed for the TLS tests (apt install openssl)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "openssl s_client {args:?} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text.contains("CONNECTION ESTABLISHED"), text)
}

/// Whether the local OpenSSL can offer this TLS 1.2 suite at all (else the test would prove
/// nothing about the server).
fn openssl_offers(suite: &str) -> bool {
    Command::new("openssl")
        .args(["ciphers", &format!("{suite}:@SECLEVEL=0")])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(suite))
}

#[test]
fn old_tls_versions_and_weak_suites_are_refused() {
    let server = Server::start();
    // Controls: the same client completes TLS 1.3 and a strong TLS 1.2 suite.
    let (ok, out) = s_client(&server, &["-tls1_3"]);
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    let (ok, out) = s_client(
        &server,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    assert!(ok && out.contains("TLSv1.2"), "{out}");

    // TLS 1.0 and 1.1, offered for real (security level 0 lets OpenSSL 3 send them).
    for version in ["-tls1", "-tls1_1"] {
        let (ok, out) = s_client(&server, &[version, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        assert!(!ok, "{version} was accepted: {out}");
        assert!(
            !out.contains("no protocols available"),
            "the client never offered {version}: {out}"
        );
        assert!(
            out.contains("alert") || out.contains("wrong version number"),
            "{version}: the server did not answer with a TLS alert: {out}"
        );
    }

    // TLS 1.2 suites without forward secrecy, without AEAD, or without encryption.
    let weak = [
        "DES-CBC3-SHA",
        "RC4-SHA",
        "AES128-SHA",
        "AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-ECDSA-NULL-SHA",
        "NULL-SHA256",
    ];
    let mut tried = 0;
    for suite in weak.iter().filter(|s| openssl_offers(s)) {
        tried += 1;
        let (ok, out) = s_client(
            &server,
            &["-tls1_2", "-cipher", &format!("{suite}:@SECLEVEL=0")],
        );
        assert!(!ok, "weak suite {suite} was accepted: {out}");
        assert!(
            out.contains("alert"),
            "{suite}: the server did not answer with a TLS alert: {out}"
        );
    }
    assert!(tried >= 4, "only {tried} weak suites could be offered");
}

// --- Request smuggling ---------------------------------------------------------------------------

fn user_json(name: &str) -> String {
    json!({"userName": name}).to_string()
}

/// A complete request that creates `smuggled-{n}`: it must never be processed.
fn smuggled(token: &str, n: usize) -> String {
    let body = user_json(&format!("smuggled-{n}"));
    format!(
        "{}{body}",
        head(
            "POST",
            "/Users",
            token,
            &format!("Content-Length: {}\r\n", body.len())
        )
    )
}

#[test]
fn ambiguous_http1_framing_is_never_read_as_two_requests() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let mut cases: Vec<(&str, String)> = Vec::new();
    for n in 0..8 {
        let front = user_json(&format!("front-{n}"));
        let chunked = format!(
            "{:x}\r\n{front}\r\n0\r\n\r\n{}",
            front.len(),
            smuggled(&token, n)
        );
        let (name, extra, body) = match n {
            // CL.TE: by Content-Length the smuggled request is body; by chunked it is next.
            0 => (
                "Content-Length and Transfer-Encoding",
                format!(
                    "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    chunked.len()
                ),
                chunked,
            ),
            // TE.CL: the other order, with a short Content-Length.
            1 => (
                "Transfer-Encoding then a short Content-Length",
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n".to_string(),
                chunked,
            ),
            2 => (
                "two different Content-Lengths",
                format!(
                    "Content-Length: {}\r\nContent-Length: {}\r\n",
                    front.len(),
                    front.len() + smuggled(&token, n).len()
                ),
                format!("{front}{}", smuggled(&token, n)),
            ),
            3 => (
                "a Content-Length list with different values",
                format!(
                    "Content-Length: {}, {}\r\n",
                    front.len(),
                    front.len() + smuggled(&token, n).len()
                ),
                format!("{front}{}", smuggled(&token, n)),
            ),
            4 => (
                "Transfer-Encoding with a space before the colon",
                format!(
                    "Transfer-Encoding : chunked\r\nContent-Length: {}\r\n",
                    front.len()
                ),
                format!("{front}{}", smuggled(&token, n)),
            ),
            5 => (
                "Transfer-Encoding folded onto a continuation line",
                format!(
                    "Transfer-Encoding:\r\n chunked\r\nContent-Length: {}\r\n",
                    chunked.len()
                ),
                chunked,
            ),
            6 => (
                "chunked not last in Transfer-Encoding",
                format!(
                    "Transfer-Encoding: chunked, identity\r\nContent-Length: {}\r\n",
                    front.len()
                ),
                format!("{front}{}", smuggled(&token, n)),
            ),
            _ => (
                "a chunk size that overflows",
                "Transfer-Encoding: chunked\r\n".to_string(),
                format!(
                    "1000000000000000{:x}\r\n{front}\r\n0\r\n\r\n{}",
                    front.len(),
                    smuggled(&token, n)
                ),
            ),
        };
        cases.push((
            name,
            format!("{}{body}", head("POST", "/Users", &token, &extra)),
        ));
    }
    // With both headers RFC 9112 §6.1 allows processing by Transfer-Encoding alone, provided
    // the connection is closed after the response.
    let both_framings = [cases[0].0, cases[1].0];
    for (name, request) in &cases {
        let out = raw_exchange(&server, request.as_bytes(), Duration::from_secs(3));
        let heads: Vec<&str> = out.responses.iter().map(|r| r.head.as_str()).collect();
        assert!(
            out.responses.len() <= 1,
            "{name}: {} responses — read as more than one request: {heads:?}",
            out.responses.len(),
        );
        assert!(
            out.trailing.is_empty(),
            "{name}: a partial response: {:?}",
            String::from_utf8_lossy(&out.trailing)
        );
        assert!(
            out.closed,
            "{name}: the connection stayed open after an ambiguous request"
        );
        if let Some(r) = out.responses.first() {
            // Rejected, or (RFC 9112 §6.1, both headers) processed by Transfer-Encoding alone.
            assert!(
                r.status == 400 || (r.status == 201 && both_framings.contains(name)),
                "{name}: answered {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    let scim = server.as_tenant(&token);
    let smuggled = scim.filter("/Users", "userName sw \"smuggled\"");
    assert_eq!(
        smuggled.body["totalResults"], 0,
        "a smuggled request was processed: {:?}",
        smuggled.body
    );
    // Of the front requests, only those with both headers may have been processed (by their
    // chunked bodies).
    let fronts = scim.filter(
        "/Users",
        "userName sw \"front-\" and userName ne \"front-0\" and userName ne \"front-1\"",
    );
    assert_eq!(fronts.body["totalResults"], 0, "{:?}", fronts.body);
}

// --- Slow clients --------------------------------------------------------------------------------

/// Until the server closes `tls` (EOF or reset), reading; optionally writes one byte of
/// `trickle` per `every`. Returns how long it stayed open, or None if still open after `bound`.
fn time_until_closed(
    tls: &mut RawTls,
    trickle: &[u8],
    every: Duration,
    bound: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    tls.sock.set_read_timeout(Some(every)).unwrap();
    let mut sent = 0;
    let mut buf = [0u8; 4096];
    while started.elapsed() < bound {
        if sent < trickle.len() {
            if tls
                .write_all(&trickle[sent..=sent])
                .and_then(|()| tls.flush())
                .is_err()
            {
                return Some(started.elapsed());
            }
            sent += 1;
        }
        match tls.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {} // e.g. a 408 before the close: keep reading until the close.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_idle_clients_are_cut_off_while_others_are_served() {
    const HEADER_TIMEOUT: u64 = 3;
    const HANDSHAKE_TIMEOUT: u64 = 2;
    let TenantCtx { server, token } = TenantCtx::start_with(
        "acme",
        &format!(
            "[limits]\nheader_read_timeout_secs = {HEADER_TIMEOUT}\nhandshake_timeout_secs = {HANDSHAKE_TIMEOUT}\n"
        ),
        &[],
    );
    let bound = Duration::from_secs(HEADER_TIMEOUT * 4);
    // Closed by the timeout: not (much) later than it. A client that is still sending must not
    // be cut off (much) earlier either, or honest slow networks would be.
    let window = |what: &str, took: Option<Duration>, limit: u64, sending: bool| match took {
        None => Some(format!(
            "{what}: still open after {bound:?} (timeout {limit} s)"
        )),
        Some(t) if t > Duration::from_secs(limit + 3) => {
            Some(format!("{what}: closed after {t:?}, timeout is {limit} s"))
        }
        Some(t) if sending && t < Duration::from_millis(limit * 1000 - 700) => Some(format!(
            "{what}: cut off after {t:?}, before the {limit} s timeout"
        )),
        Some(_) => None,
    };
    let request = format!(
        "GET /api/scim/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64)
    );
    let mut attackers = Vec::new();
    // Slowloris: headers one byte a second, from 20 connections.
    for _ in 0..20 {
        let mut tls = server.raw_tls(Duration::from_secs(1));
        let trickle = request.clone().into_bytes();
        attackers.push(std::thread::spawn(move || {
            (
                "slowloris",
                time_until_closed(&mut tls, &trickle, Duration::from_secs(1), bound),
                HEADER_TIMEOUT,
            )
        }));
    }
    // TLS done, then silence.
    let mut idle = server.raw_tls(Duration::from_secs(1));
    attackers.push(std::thread::spawn(move || {
        (
            "idle after the handshake",
            time_until_closed(&mut idle, b"", Duration::from_millis(200), bound),
            HEADER_TIMEOUT,
        )
    }));
    // One complete request, then an idle keep-alive connection.
    let mut kept = server.raw_tls(Duration::from_secs(3));
    kept.write_all(request.as_bytes()).unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the kept-alive request was served");
    attackers.push(std::thread::spawn(move || {
        let mut sink = Vec::new();
        // Drain the rest of the response first, then time the silence.
        kept.sock
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _ = kept.read_to_end(&mut sink);
        (
            "idle keep-alive",
            time_until_closed(&mut kept, b"", Duration::from_millis(200), bound)
                .map(|t| t + Duration::from_millis(300)),
            HEADER_TIMEOUT,
        )
    }));
    // TCP connected, no ClientHello.
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    attackers.push(std::thread::spawn(move || {
        let started = Instant::now();
        tcp.set_read_timeout(Some(bound)).unwrap();
        let closed =
            matches!((&tcp).read(&mut [0u8; 1]), Ok(0) | Err(_)) && started.elapsed() < bound;
        (
            "TCP without a TLS handshake",
            closed.then(|| started.elapsed()),
            HANDSHAKE_TIMEOUT,
        )
    }));
    // Meanwhile an honest client is served promptly, again and again.
    let scim = server.as_tenant(&token);
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(HEADER_TIMEOUT + 1) {
        let t = Instant::now();
        assert_eq!(scim.get("/Users").status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "an honest request took {:?}",
            t.elapsed()
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(served >= 5);
    let mut failures: Vec<String> = attackers
        .into_iter()
        .filter_map(|a| {
            let (what, took, limit) = a.join().unwrap();
            window(what, took, limit, what == "slowloris")
        })
        .collect();
    failures.dedup();
    assert!(failures.is_empty(), "{failures:#?}");
}

// --- Connection flood ----------------------------------------------------------------------------

fn get_on(tls: &mut RawTls, token: &str) -> u16 {
    let req = format!(
        "GET /api/scim/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).unwrap();
    let mut status = [0u8; 12];
    tls.read_exact(&mut status).unwrap();
    String::from_utf8_lossy(&status[9..12]).parse().unwrap_or(0)
}

/// Connect and try the TLS handshake; Err says how it ended and how fast.
fn try_connect(server: &Server) -> Result<RawTls, Duration> {
    let started = Instant::now();
    let tcp = std::net::TcpStream::connect(server.addr).map_err(|_| started.elapsed())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(server.tls_client_config(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return Err(started.elapsed());
        }
    }
    Ok(tls)
}

#[test]
fn connections_beyond_the_cap_are_refused_fast_and_served_again_when_one_closes() {
    const CAP: usize = 8;
    let TenantCtx { server, token } = TenantCtx::start_with(
        "acme",
        &format!("[limits]\nmax_connections = {CAP}\nheader_read_timeout_secs = 60\n"),
        &[],
    );
    let mut held: Vec<RawTls> = (0..CAP)
        .map(|i| {
            let mut tls = try_connect(&server)
                .unwrap_or_else(|t| panic!("connection {i} refused after {t:?}"));
            tls.sock
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            assert_eq!(get_on(&mut tls, &token), 200, "connection {i}");
            let mut rest = [0u8; 1];
            // Drain the response so the connection is idle again.
            tls.sock
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while tls.read(&mut rest).is_ok_and(|n| n > 0) {}
            tls
        })
        .collect();
    for attempt in 0..3 {
        match try_connect(&server) {
            Ok(_) => panic!(
                "connection {} beyond the cap of {CAP} was accepted (attempt {attempt})",
                CAP + 1
            ),
            Err(took) => assert!(took < Duration::from_secs(1), "refusal took {took:?}"),
        }
    }
    // The held connections were not the ones dropped.
    held[1]
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(get_on(&mut held[1], &token), 200);
    // One closes: a newcomer gets in.
    drop(held.remove(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Ok(mut tls) = try_connect(&server) {
            tls.sock
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            assert_eq!(get_on(&mut tls, &token), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slot came free after a connection closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// --- Oversized bodies ----------------------------------------------------------------------------

#[test]
fn twelve_mib_body_is_refused_with_413_before_it_is_all_sent() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    const DECLARED: usize = 12 * 1024 * 1024;
    // A little over the 2 MiB limit is all we ever send.
    const SENT: usize = 2 * 1024 * 1024 + 256 * 1024;
    let head_cl = head(
        "POST",
        "/Users",
        &token,
        &format!("Content-Length: {DECLARED}\r\n"),
    );
    let status = status_while_sending(&server, head_cl, vec![b' '; 64 * 1024], SENT);
    assert_eq!(status, Some(413), "declared 12 MiB, sent {SENT} bytes");
    // The same without a declared length: chunked, 64 KiB chunks.
    let head_chunked = head("POST", "/Users", &token, "Transfer-Encoding: chunked\r\n");
    let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
    chunk.extend(vec![b' '; 64 * 1024]);
    chunk.extend(b"\r\n");
    let status = status_while_sending(&server, head_chunked, chunk, SENT);
    assert_eq!(status, Some(413), "chunked, sent {SENT} bytes");
    // The server is fine afterwards.
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
}
