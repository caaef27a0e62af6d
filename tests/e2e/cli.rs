//! The CLI contract: what administrators and scripts rely on.

use crate::harness::{Server, BIN};

#[test]
fn token_issue_prints_the_token_alone_on_the_last_line_and_list_never_shows_it() {
    let server = Server::start();
    let (ok, out, _) = server.cli(&[
        "tenant",
        "create",
        "acme",
        "--azure-tenant-id",
        "8adf8e6e-67b2-4cf2-a259-e3dc5476c621",
    ]);
    assert!(ok);
    assert_eq!(out.trim().len(), 36, "prints the tenant id: {out}");
    let (ok, out, _) = server.cli(&[
        "token",
        "issue",
        "--tenant",
        "acme",
        "--label",
        "entra",
        "--expires-in-days",
        "30",
    ]);
    assert!(ok);
    let token = out.lines().last().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let (ok, list, _) = server.cli(&["token", "list", "--tenant", "acme"]);
    assert!(ok);
    assert!(list.contains("entra") && list.contains("acme"), "{list}");
    assert!(!list.contains(token) && !list.contains(token.split('.').nth(2).unwrap()));
    let (ok, tenants, _) = server.cli(&["tenant", "list"]);
    assert!(ok && tenants.contains("8adf8e6e-67b2-4cf2-a259-e3dc5476c621"));
}

#[test]
fn cli_errors_are_one_clear_line() {
    let server = Server::start();
    let (ok, _, err) = server.cli(&["token", "issue", "--tenant", "nope"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no tenant named \"nope\""), "{err}");
    let (ok, _, err) = server.cli(&["token", "revoke", "00000000-0000-4000-8000-000000000000"]);
    assert!(!ok && err.contains("no token"), "{err}");
    server.cli(&["tenant", "create", "acme"]);
    let (ok, _, err) = server.cli(&["tenant", "create", "acme"]);
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[test]
fn check_config_names_unknown_keys_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisen = \"0.0.0.0:1\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lisen"), "{err}");
    let missing_cert = dir.path().join("c.toml");
    std::fs::write(&missing_cert, "[tls]\ncert = \"/nonexistent/cert.pem\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--config", missing_cert.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let server = Server::start();
    let (ok, out, _) = server.cli(&["check-config"]);
    assert!(ok);
    assert!(out.contains("base_path = \"/api/scim\""), "{out}");
}

#[test]
fn env_overrides_file() {
    let server = Server::start();
    let out = std::process::Command::new(BIN)
        .args(["--config", server.config.to_str().unwrap(), "check-config"])
        .env("GROUPTALK_SCIM_SERVER__BASE_PATH", "/scim")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("base_path = \"/scim\""));
}
