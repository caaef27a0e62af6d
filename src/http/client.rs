//! Which address a request comes from, for the per-address budgets (`budget`).
//!
//! The connection's peer, unless that peer is one of `server.trusted_proxies`: then the
//! `X-Forwarded-For` chain is read from the right (the entries the trusted proxies appended
//! themselves) and the first address that is not a trusted proxy is the client. Entries left of
//! it were written by the client and are never believed. A chain that does not parse ends the
//! walk at the last trusted hop, so a proxy that forgot the header cannot make every client one.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in chain.iter().rev() {
        let Some(addr) = parse_entry(entry) else {
            break;
        };
        client = addr;
        if !is_trusted(&addr) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(a) = entry.parse::<IpAddr>() {
        return Some(a);
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_can_name_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_addr(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted),
            ip("203.0.113.9")
        );
        // Trusted proxy: the rightmost untrusted entry; what the client wrote further left is
        // not believed.
        assert_eq!(
            client_addr(
                ip("10.0.0.2"),
                &headers(&["6.6.6.6, 198.51.100.7", "10.0.0.1"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.2"), &headers(&[]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_addr(ip("10.0.0.2"), &headers(&["bogus"]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_addr(ip("10.0.0.2"), &headers(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
    }
}
