//! Attacks from the network: another tenant's token, forged and stale tokens, secrets leaking
//! into logs, weak TLS, request smuggling, slow and flooding clients, oversized and hostile
//! input. Each test asserts what the attacker sees (status, body, connection state) and that
//! nothing changed for the victim. SECURITY.md maps the threat model onto these tests.

mod files;
mod flood;
mod input;
mod tenants;
mod tokens;
mod transport;
mod writes;

use std::io::Write;
use std::time::Duration;

use crate::harness::{read_responses, RawOutcome, Server};

/// Send raw bytes on a fresh TLS connection (HTTP/1.1 by ALPN) and read what comes back until
/// the server closes the connection or `quiet` passes without data.
fn raw_exchange(server: &Server, bytes: &[u8], quiet: Duration) -> RawOutcome {
    let mut tls = server.raw_tls(quiet);
    // A server may refuse before reading everything; what it answered is what counts.
    let _ = tls.write_all(bytes).and_then(|()| tls.flush());
    read_responses(&mut tls)
}

/// The head of a request with our token, for hand-made requests.
fn head(method: &str, path: &str, token: &str, extra: &str) -> String {
    format!(
        "{method} /api/scim{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\n{extra}\r\n"
    )
}

/// Send `head` and then `send` bytes of `chunk` repeated (never the whole declared body),
/// reading at the same time — a server that answers early and closes would otherwise reset the
/// connection before its answer is read. The status code, or None if none came within 10 s.
fn status_while_sending(server: &Server, head: String, chunk: Vec<u8>, send: usize) -> Option<u16> {
    let config = server.tls_client_config();
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        let (mut rd, mut wr) = tokio::io::split(tls);
        let writer = tokio::spawn(async move {
            if wr.write_all(head.as_bytes()).await.is_err() {
                return wr;
            }
            let mut sent = 0;
            while sent < send && !chunk.is_empty() {
                if wr.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            let _ = wr.flush().await;
            // Keep the connection open: the rest of the body never comes.
            std::future::pending::<()>().await;
            wr
        });
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        writer.abort();
        read.ok()?;
        String::from_utf8_lossy(&got)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
    })
}
