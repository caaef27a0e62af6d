//! The `client` commands' contract (OAuth clients for Entra's client-credentials grant): what
//! scripts parse from `--json` and the last stdout line, that a secret is shown once and stored
//! only as an argon2id PHC string, secret rotation and revocation, the expiry bounds, and
//! `token issue --scope`. The token endpoint (`/oauth2/token`) is tested with the HTTP side.

use serde_json::Value;

use crate::harness::Server;

/// The four keys `client create --json` and `client secret add --json` print, and nothing else.
const SECRET_KEYS: [&str; 4] = ["client_id", "client_secret", "expires_at", "secret_id"];

fn server_with_tenant(name: &str) -> Server {
    let server = Server::start();
    let (ok, _, err) = server.cli(&["tenant", "create", name]);
    assert!(ok, "tenant create: {err}");
    server
}

/// Run a `--json` command: it succeeds and its stdout is exactly one JSON object.
fn json_cli(server: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = server.cli(args);
    assert!(ok, "{args:?}: {err}");
    assert_eq!(out.trim().lines().count(), 1, "one line of JSON: {out:?}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v.is_object(), "{v}");
    v
}

fn create_json(server: &Server, tenant: &str, extra: &[&str]) -> Value {
    let mut args = vec!["client", "create", "--tenant", tenant, "--json"];
    args.extend_from_slice(extra);
    json_cli(server, &args)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Days from now to an RFC 3339 time, rounded.
fn days_until(rfc3339: &str) -> i64 {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    ((at - time::OffsetDateTime::now_utc()).as_seconds_f64() / 86_400.0).round() as i64
}

#[test]
fn client_create_json_is_one_object_with_the_client_id_the_secret_its_id_and_expiry() {
    let server = server_with_tenant("acme");
    let v = create_json(&server, "acme", &[]);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, SECRET_KEYS);
    let (client_id, secret, secret_id) = (
        s(&v, "client_id"),
        s(&v, "client_secret"),
        s(&v, "secret_id"),
    );
    uuid::Uuid::parse_str(client_id).unwrap();
    uuid::Uuid::parse_str(secret_id).unwrap();
    // The secret starts with its id; 256 random bits follow.
    let (id_part, random) = secret.split_once('.').unwrap();
    assert_eq!(id_part, secret_id);
    assert_eq!(random.len(), 43, "32 bytes base64url: {secret}");
    assert_eq!(days_until(s(&v, "expires_at")), 365, "default expiry");
    let v = create_json(&server, "acme", &["--secret-expires-in-days", "1095"]);
    assert_eq!(days_until(s(&v, "expires_at")), 1095);
}

#[test]
fn client_create_prints_the_client_id_then_the_secret_alone_on_the_last_line() {
    let server = server_with_tenant("acme");
    let (ok, out, err) = server.cli(&["client", "create", "--tenant", "acme", "--label", "entra"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let (client_id, secret) = (lines[0], lines[1]);
    uuid::Uuid::parse_str(client_id).unwrap();
    assert!(err.contains(client_id) && err.contains("acme"), "{err}");
    assert!(!err.contains(secret), "the secret only on stdout: {err}");
    let list = json_cli(&server, &["client", "list", "--json"]);
    let c = &list["clients"][0];
    assert_eq!(
        (s(c, "client_id"), s(c, "label"), s(c, "scopes")),
        (client_id, "entra", "scim")
    );
    assert_eq!(
        format!("{}.", s(&c["secrets"][0], "secret_id")),
        secret[..37],
        "the secret's id is its first part"
    );
}

#[test]
fn client_list_shows_clients_and_their_secrets_ids_but_never_a_secret() {
    let server = server_with_tenant("acme");
    server.cli(&["tenant", "create", "other"]);
    let a = create_json(
        &server,
        "acme",
        &[
            "--label",
            "entra",
            "--scope",
            "scim",
            "--scope",
            "feed.read",
        ],
    );
    let b = create_json(&server, "other", &[]);
    let added = json_cli(
        &server,
        &["client", "secret", "add", s(&a, "client_id"), "--json"],
    );
    let secrets = [
        s(&a, "client_secret"),
        s(&b, "client_secret"),
        s(&added, "client_secret"),
    ];
    let randoms: Vec<&str> = secrets
        .iter()
        .map(|x| x.split_once('.').unwrap().1)
        .collect();

    let (ok, table, _) = server.cli(&["client", "list"]);
    assert!(ok);
    for id in [
        s(&a, "client_id"),
        s(&b, "client_id"),
        s(&a, "secret_id"),
        s(&added, "secret_id"),
    ] {
        assert!(table.contains(id), "{id} missing: {table}");
    }
    assert!(
        table.contains("scim feed.read") && table.contains("entra"),
        "{table}"
    );
    let all = json_cli(&server, &["client", "list", "--json"]);
    let acme = json_cli(&server, &["client", "list", "--tenant", "acme", "--json"]);
    for out in [table, all.to_string(), acme.to_string()] {
        for r in &randoms {
            assert!(!out.contains(r), "a secret in `client list`: {out}");
        }
        assert!(!out.contains("argon2"), "a hash in `client list`: {out}");
    }
    assert_eq!(all["clients"].as_array().unwrap().len(), 2);
    let acme = acme["clients"].as_array().unwrap();
    assert_eq!(acme.len(), 1, "--tenant shows that tenant's clients only");
    assert_eq!(s(&acme[0], "tenant"), "acme");
    assert_eq!(s(&acme[0], "scopes"), "scim feed.read");
    let ids: Vec<&str> = acme[0]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| s(x, "secret_id"))
        .collect();
    assert_eq!(ids, [s(&a, "secret_id"), s(&added, "secret_id")]);
    let (ok, _, err) = server.cli(&["client", "list", "--tenant", "nope"]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("no tenant named"),
        "{err}"
    );
}

#[test]
fn client_secret_add_and_revoke_rotate_the_secrets_of_one_client() {
    let server = server_with_tenant("acme");
    let first = create_json(&server, "acme", &[]);
    let client_id = s(&first, "client_id");
    let second = json_cli(
        &server,
        &[
            "client",
            "secret",
            "add",
            client_id,
            "--expires-in-days",
            "30",
            "--json",
        ],
    );
    let mut keys: Vec<&str> = second
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, SECRET_KEYS, "the same JSON as create");
    assert_eq!(s(&second, "client_id"), client_id);
    assert_ne!(s(&second, "secret_id"), s(&first, "secret_id"));
    assert_eq!(days_until(s(&second, "expires_at")), 30);
    // Without --json: the secret alone on the last line.
    let (ok, out, err) = server.cli(&["client", "secret", "add", client_id]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    let (id, random) = out.trim().split_once('.').unwrap();
    uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(random.len(), 43, "{out:?}");
    assert!(err.contains(id), "the new secret's id on stderr: {err}");

    let (ok, _, err) = server.cli(&["client", "secret", "revoke", s(&first, "secret_id")]);
    assert!(ok, "{err}");
    // Revoking by the pasted secret works too, and the secret is not echoed.
    let pasted = s(&second, "client_secret");
    let (ok, out, err) = server.cli(&["client", "secret", "revoke", pasted]);
    assert!(ok, "{err}");
    let random = pasted.split_once('.').unwrap().1;
    assert!(!out.contains(random) && !err.contains(random), "{out}{err}");

    let list = json_cli(&server, &["client", "list", "--json"]);
    let secrets = list["clients"][0]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 3);
    assert!(secrets[0]["revoked"].is_string() && secrets[1]["revoked"].is_string());
    assert!(secrets[2]["revoked"].is_null(), "the third secret stands");
    let (ok, _, err) = server.cli(&[
        "client",
        "secret",
        "revoke",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("no client secret"),
        "{err}"
    );
    let (ok, _, err) = server.cli(&[
        "client",
        "secret",
        "add",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("no client with id"),
        "{err}"
    );
}

#[test]
fn a_revoked_client_is_marked_and_gets_no_new_secret() {
    let server = server_with_tenant("acme");
    let v = create_json(&server, "acme", &[]);
    let id = s(&v, "client_id");
    let (ok, _, err) = server.cli(&["client", "revoke", id]);
    assert!(ok, "{err}");
    let list = json_cli(&server, &["client", "list", "--json"]);
    assert!(list["clients"][0]["revoked"].is_string(), "{list}");
    let (ok, _, err) = server.cli(&["client", "secret", "add", id]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("revoked"),
        "{err}"
    );
    let (ok, _, err) = server.cli(&["client", "revoke", "00000000-0000-4000-8000-000000000000"]);
    assert!(!ok && err.contains("no client with id"), "{err}");
}

#[test]
fn client_secrets_are_stored_only_as_argon2id_phc_strings() {
    let server = server_with_tenant("acme");
    let v = create_json(&server, "acme", &[]);
    let added = json_cli(
        &server,
        &["client", "secret", "add", s(&v, "client_id"), "--json"],
    );
    let (ok, out, _) = server.cli(&["client", "create", "--tenant", "acme"]);
    assert!(ok);
    let plain = out.lines().last().unwrap().to_string();
    let secrets = [
        s(&v, "client_secret").to_string(),
        s(&added, "client_secret").to_string(),
        plain,
    ];

    let conn = server.open_db_read_only();
    let hashes: Vec<String> = conn
        .prepare("SELECT hash FROM client_secrets")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hashes.len(), 3);
    for h in &hashes {
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        for secret in &secrets {
            assert!(
                !h.contains(secret.split_once('.').unwrap().1),
                "a secret in a hash column"
            );
        }
    }
    drop(conn);
    // Nowhere in the database files either (the table, the WAL, anything else).
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = server.db_path().into_os_string();
        p.push(suffix);
        bytes.extend(std::fs::read(p).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in &secrets {
        assert!(
            !text.contains(secret.split_once('.').unwrap().1),
            "a secret in the database"
        );
    }
}

#[test]
fn secret_lifetimes_outside_one_day_to_three_years_are_refused_in_one_line() {
    let server = server_with_tenant("acme");
    for days in ["0", "-1", "1096", "36500"] {
        let (ok, out, err) = server.cli(&[
            "client",
            "create",
            "--tenant",
            "acme",
            "--secret-expires-in-days",
            days,
        ]);
        assert!(!ok, "{days} accepted: {out}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("from 1 to 1095 days"), "{err}");
    }
    assert_eq!(
        json_cli(&server, &["client", "list", "--json"])["clients"],
        Value::Array(vec![])
    );
    let v = create_json(&server, "acme", &["--secret-expires-in-days", "1"]);
    assert_eq!(days_until(s(&v, "expires_at")), 1);
    for days in ["0", "1096"] {
        let (ok, _, err) = server.cli(&[
            "client",
            "secret",
            "add",
            s(&v, "client_id"),
            "--expires-in-days",
            days,
        ]);
        assert!(
            !ok && err.trim().lines().count() == 1 && err.contains("from 1 to 1095 days"),
            "{err}"
        );
    }
    let list = json_cli(&server, &["client", "list", "--json"]);
    assert_eq!(list["clients"][0]["secrets"].as_array().unwrap().len(), 1);
    let (ok, _, err) = server.cli(&["client", "create", "--tenant", "nope"]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("no tenant named"),
        "{err}"
    );
}

#[test]
fn token_issue_scope_is_stored_with_the_token_and_defaults_to_scim() {
    let server = server_with_tenant("acme");
    server.token("acme");
    let (ok, _, err) = server.cli(&[
        "token",
        "issue",
        "--tenant",
        "acme",
        "--scope",
        "feed.read",
        "--label",
        "feed",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = server.cli(&[
        "token",
        "issue",
        "--tenant",
        "acme",
        "--scope",
        "feed.read",
        "--scope",
        "scim",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = server.cli(&["token", "issue", "--tenant", "acme", "--scope", "admin"]);
    assert!(!ok && err.contains("admin"), "{err}");
    let conn = server.open_db_read_only();
    let scopes: Vec<String> = conn
        .prepare("SELECT scopes FROM tokens ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scopes, ["scim", "feed.read", "scim feed.read"]);
    let (ok, list, _) = server.cli(&["token", "list"]);
    assert!(
        ok && list.contains("SCOPES") && list.contains("feed.read"),
        "{list}"
    );
}

#[test]
fn stats_shows_each_tenants_clients_and_secrets_expiring_soon() {
    let server = server_with_tenant("acme");
    let v = create_json(
        &server,
        "acme",
        &["--label", "entra", "--secret-expires-in-days", "10"],
    );
    let later = json_cli(
        &server,
        &["client", "secret", "add", s(&v, "client_id"), "--json"],
    );
    let (ok, out, err) = server.cli(&["stats", "--tenant", "acme"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "client {} [entra] scopes: scim",
            s(&v, "client_id")
        )),
        "{out}"
    );
    let line = |id: &str| {
        out.lines()
            .find(|l| l.contains(id))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(s(&v, "secret_id")).contains("EXPIRES SOON"), "{out}");
    assert!(
        !line(s(&later, "secret_id")).contains("EXPIRES SOON"),
        "{out}"
    );
    for x in [&v, &later] {
        assert!(!out.contains(s(x, "client_secret").split_once('.').unwrap().1));
    }
}

#[test]
fn check_config_names_the_token_endpoint_and_each_client_with_its_first_secret_expiry() {
    let server = server_with_tenant("acme");
    let check = |public_url: &str| {
        let out = std::process::Command::new(crate::harness::BIN)
            .args(["--config", server.config.to_str().unwrap(), "check-config"])
            .env("GROUPTALK_SCIM_SERVER__PUBLIC_URL", public_url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let err = check("");
    assert!(err.contains("OAuth token endpoint: off"), "{err}");
    assert!(err.contains("OAuth clients: 0"), "{err}");

    let soon = create_json(&server, "acme", &["--secret-expires-in-days", "3"]);
    let later = create_json(&server, "acme", &["--scope", "feed.read"]);
    let revoked = create_json(&server, "acme", &[]);
    let (ok, _, e) = server.cli(&["client", "revoke", s(&revoked, "client_id")]);
    assert!(ok, "{e}");
    let err = check("https://scim.example.test/");
    assert!(
        err.contains("OAuth token endpoint: https://scim.example.test/oauth2/token"),
        "{err}"
    );
    assert!(err.contains("OAuth clients: 2"), "{err}");
    let line = |id: &str| {
        err.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in {err}"))
            .to_string()
    };
    let soon_line = line(s(&soon, "client_id"));
    assert!(soon_line.contains("tenant acme"), "{soon_line}");
    assert!(soon_line.contains("1 usable secret(s)"), "{soon_line}");
    assert!(
        soon_line.contains("expires in 2 days") || soon_line.contains("expires in 3 days"),
        "{soon_line}"
    );
    let later_line = line(s(&later, "client_id"));
    assert!(later_line.contains("feed.read"), "{later_line}");
    assert!(!later_line.contains("expires in"), "{later_line}");
    assert!(!err.contains(s(&revoked, "client_id")), "{err}");
    for v in [&soon, &later] {
        assert!(
            !err.contains(s(v, "client_secret")),
            "a secret in check-config: {err}"
        );
    }
}

#[test]
fn metrics_publish_seconds_until_each_active_client_secret_expires() {
    let server = server_with_tenant("acme");
    let v = create_json(&server, "acme", &["--secret-expires-in-days", "10"]);
    let added = json_cli(
        &server,
        &["client", "secret", "add", s(&v, "client_id"), "--json"],
    );
    let metrics = || {
        reqwest::blocking::get(server.admin_url("/metrics"))
            .unwrap()
            .text()
            .unwrap()
    };
    let gauge = |text: &str, secret_id: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.starts_with("grouptalk_scim_client_secret_seconds_until_expiry{")
                    && l.contains(&format!("secret=\"{secret_id}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
    };
    let text = metrics();
    let first = gauge(&text, s(&v, "secret_id")).unwrap_or_else(|| panic!("{text}"));
    assert!((first - 10.0 * 86_400.0).abs() < 120.0, "{first}");
    let second = gauge(&text, s(&added, "secret_id")).unwrap_or_else(|| panic!("{text}"));
    assert!((second - 365.0 * 86_400.0).abs() < 120.0, "{second}");
    assert!(
        text.contains(&format!("client=\"{}\"", s(&v, "client_id"))),
        "{text}"
    );

    let (ok, _, e) = server.cli(&["client", "secret", "revoke", s(&v, "secret_id")]);
    assert!(ok, "{e}");
    let text = metrics();
    assert_eq!(
        gauge(&text, s(&v, "secret_id")),
        None,
        "a revoked secret's gauge: {text}"
    );
    assert!(gauge(&text, s(&added, "secret_id")).is_some(), "{text}");
    assert!(!text.contains(s(&v, "client_secret")) && !text.contains(s(&added, "client_secret")));
}

#[test]
fn a_secret_about_to_expire_is_warned_about_when_the_server_starts() {
    let mut server = server_with_tenant("acme");
    let soon = create_json(&server, "acme", &["--secret-expires-in-days", "3"]);
    let fine = create_json(&server, "acme", &[]);
    server.stop();
    server.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let warned = loop {
        let lines = server.log_lines();
        if let Some(l) = lines
            .iter()
            .find(|l| l.contains("client secret expires soon"))
        {
            break l.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no warning in {lines:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(warned.contains(s(&soon, "secret_id")), "{warned}");
    assert!(warned.contains("acme"), "{warned}");
    let lines = server.log_lines();
    assert!(
        !lines.iter().any(|l| l.contains(s(&fine, "secret_id"))),
        "a secret a year away is not warned about: {lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(s(&soon, "client_secret")) || l.contains(s(&fine, "client_secret"))),
        "a secret in the log"
    );
}
