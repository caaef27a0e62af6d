//! Process lifecycle: systemd readiness notification (sd_notify) and signal handling.
//!
//! sd_notify is one datagram to `$NOTIFY_SOCKET`; writing it here avoids a dependency for ten
//! lines. Abstract socket names (leading `@`) are supported as systemd uses them.

use std::os::unix::net::UnixDatagram;

/// Send a notification such as `READY=1` or `STOPPING=1` if run under systemd `Type=notify`.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}
