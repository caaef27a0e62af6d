//! Faults from outside the process: the database locked by an administrator's shell, a full
//! disk, and broken files at start (signing key, certificate, database from a newer version).
//!
//! What a client must see: a write that cannot be done now is a SCIM 503/507 with `Retry-After`
//! within a bounded time, never a hang or a 500; reads go on where SQLite allows it; the service
//! recovers by itself once the cause is gone. A file the server cannot use stops it at start
//! with one line that names the file.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::harness::{assert_scim_error, create_user, patch_op, Reply, Scim, Server, TenantCtx};

/// The server waits `busy_timeout` (5 s) for a lock. A write queued behind another batch that is
/// already waiting can take two such waits; more than that is a hang.
const LOCK_ANSWER_BOUND: Duration = Duration::from_secs(12);

/// A 503 (or 507) SCIM error with a `Retry-After` in seconds, and no internals in the body.
fn assert_retry_later(r: &Reply, allowed: &[u16]) {
    assert!(
        allowed.contains(&r.status),
        "expected one of {allowed:?}, got {} {:?}",
        r.status,
        r.body
    );
    assert_scim_error(r, r.status, None);
    let retry = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After", r.status))
        .to_str()
        .unwrap();
    assert!(
        retry.parse::<u32>().is_ok_and(|s| s >= 1),
        "Retry-After {retry:?}"
    );
    let detail = r.body["detail"].as_str().unwrap().to_ascii_lowercase();
    for internal in [
        "sqlite",
        "sql",
        ".db",
        "/tmp",
        "database is locked",
        "error code",
    ] {
        assert!(!detail.contains(internal), "internals in detail: {detail}");
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

#[test]
fn outside_write_lock_gives_bounded_503_while_reads_go_on() {
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    // Before the lock: the token's first use (and its `last_used` write) is behind us.
    let id = create_user(&scim, "before@contoso.com");

    for begin in ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"] {
        // An administrator's sqlite3 shell in the middle of a write transaction.
        let admin = Connection::open(server.db_path()).unwrap();
        admin.execute_batch(begin).unwrap();
        admin
            .execute_batch("UPDATE tenants SET name = name")
            .unwrap();

        let (r, took) = timed(|| scim.post("/Users", &json!({"userName": "during@contoso.com"})));
        assert!(
            took < LOCK_ANSWER_BOUND,
            "{begin}: write answered after {took:?}"
        );
        assert_retry_later(&r, &[503]);
        let (r, took) = timed(|| {
            scim.patch(
                &format!("/Users/{id}"),
                &patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])),
            )
        });
        assert!(
            took < LOCK_ANSWER_BOUND,
            "{begin}: PATCH answered after {took:?}"
        );
        assert_retry_later(&r, &[503]);

        // WAL: readers do not wait for a writer, whatever kind of write transaction it is.
        let (r, took) = timed(|| scim.get(&format!("/Users/{id}")));
        assert_eq!(r.status, 200, "{begin}: read during the lock: {:?}", r.body);
        assert!(took < Duration::from_secs(2), "{begin}: read took {took:?}");
        let (r, _) = timed(|| scim.filter("/Users", "userName eq \"before@contoso.com\""));
        assert_eq!(r.body["totalResults"], 1, "{begin}");
        let health = server
            .client()
            .get(server.public_url("/healthz"))
            .send()
            .unwrap();
        assert_eq!(health.status(), 200, "{begin}: /healthz during the lock");

        // The shell commits: writes work again without a restart; nothing from the refused
        // requests was stored.
        admin.execute_batch("ROLLBACK").unwrap();
        drop(admin);
        assert_eq!(
            scim.filter("/Users", "userName eq \"during@contoso.com\"")
                .body["totalResults"],
            0
        );
        let r = scim.get(&format!("/Users/{id}"));
        assert!(r.body.get("title").is_none(), "refused PATCH was applied");
        let created = scim.post("/Users", &json!({"userName": format!("after-{begin}")}));
        assert_eq!(created.status, 201, "{begin}: {:?}", created.body);
    }
    server.assert_db_intact();
}

#[test]
fn outside_process_cannot_lock_readers_out_while_the_server_runs() {
    // In WAL mode `BEGIN EXCLUSIVE` is a plain write lock (readers go on, see above). What
    // would shut readers out is an exclusive lock on the file itself (`PRAGMA
    // locking_mode=EXCLUSIVE`); the server's open connections hold the file shared, so a shell
    // cannot get it: it fails, and the server keeps reading and writing.
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    let id = create_user(&scim, "before@contoso.com");
    let admin = Connection::open(server.db_path()).unwrap();
    admin.busy_timeout(Duration::from_millis(500)).unwrap();
    let (taken, took) = timed(|| {
        admin.execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE tenants SET name = name; COMMIT;",
        )
    });
    assert!(
        matches!(&taken, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy),
        "an outside process took the database exclusively: {taken:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (r, took) = timed(|| scim.get(&format!("/Users/{id}")));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(took < Duration::from_secs(2), "read took {took:?}");
    let r = scim.post("/Users", &json!({"userName": "during@contoso.com"}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    drop(admin);
    server.assert_db_intact();
}

/// A user document of about `size` bytes (most of it in `title`), to fill a database fast.
fn big_user(name: &str, size: usize) -> Value {
    json!({"userName": name, "title": "x".repeat(size)})
}

/// Fill the database until a write is refused; returns the ids stored and the refusal.
fn fill_until_refused(scim: &Scim<'_>, size: usize, max: usize) -> (Vec<String>, Reply) {
    let mut ids = Vec::new();
    for i in 0..max {
        let r = scim.post("/Users", &big_user(&format!("filler-{i}"), size));
        if r.status != 201 {
            return (ids, r);
        }
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    panic!(
        "{max} users of {size} bytes were all stored: the disk-full simulation did not take effect"
    );
}

/// Everything a full disk must not break, then recovery once `make_room` frees space (it gets
/// the client and the ids of the users that filled the disk).
fn check_full_disk_behaviour(
    server: &Server,
    size: usize,
    max: usize,
    make_room: impl FnOnce(&Scim<'_>, &[String]),
) {
    let token = server.tenant_token("acme");
    let scim = server.as_tenant(&token);
    let (ids, refused) = fill_until_refused(&scim, size, max);
    assert!(!ids.is_empty(), "nothing fit: {:?}", refused.body);
    assert_retry_later(&refused, &[507, 503]);
    // Every kind of write gets the same clean answer, never a 500.
    let g = scim.post("/Groups", &json!({"displayName": "x".repeat(size)}));
    assert_retry_later(&g, &[507, 503]);
    let p = scim.patch(
        &format!("/Users/{}", ids[0]),
        &patch_op(json!([{"op": "replace", "path": "displayName", "value": "y".repeat(size)}])),
    );
    assert_retry_later(&p, &[507, 503]);
    // Reads go on.
    let r = scim.get(&format!("/Users/{}", ids[0]));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("displayName").is_none(), "refused PATCH applied");
    let list = scim.get_query("/Users", "count=1");
    assert_eq!(list.status, 200);
    assert_eq!(list.body["totalResults"], ids.len());
    // Nothing is corrupted.
    server.assert_db_intact();
    make_room(&scim, &ids);
    // Space is back: writes succeed again, without a restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = scim.post("/Users", &json!({"userName": "after@contoso.com"}));
        if r.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not recover without a restart: {} {:?}",
            r.status,
            r.body
        );
        assert_retry_later(&r, &[507, 503]);
        std::thread::sleep(Duration::from_millis(500));
    }
    server.assert_db_intact();
}

/// Needs the test-only knob `GROUPTALK_TEST_MAX_PAGE_COUNT` (applied as
/// `PRAGMA max_page_count` on the server's write connection; outside the `GROUPTALK_SCIM_`
/// prefix, which the configuration claims): SQLite then fails writes with SQLITE_FULL as on a
/// full disk, portably and without privileges.
#[test]
fn full_database_refuses_writes_with_retry_after_reads_go_on_and_deletes_make_room() {
    let server = Server::start_with("", &[("GROUPTALK_TEST_MAX_PAGE_COUNT", "400")]);
    // The room comes back the way a directory shrinks: deprovisioned users are deleted.
    check_full_disk_behaviour(&server, 16 * 1024, 400, |scim, ids| {
        for id in &ids[..ids.len().min(8)] {
            let r = scim.delete(&format!("/Users/{id}"));
            assert_eq!(
                r.status, 204,
                "deleting frees space even when full: {:?}",
                r.body
            );
        }
    });
}

/// A real full file system: a small tmpfs as the data directory. Needs root (mount), so it is
/// not in the default run: `cargo test --test e2e -- --ignored real_full_disk`.
#[test]
#[ignore = "needs root: mounts a tmpfs as the data directory"]
fn real_full_disk_refuses_writes_with_retry_after_and_recovers_without_restart() {
    let mut server = Server::prepare("", &[]);
    let data = server.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed (not root?)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(data.clone());
    server.spawn();
    // Leave about 1 MiB free; the filler file is what the administrator deletes.
    let filler = data.join("filler");
    let free = {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&data)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    std::fs::write(&filler, vec![0u8; free.saturating_sub(1 << 20)]).unwrap();
    check_full_disk_behaviour(&server, 32 * 1024, 200, |_, _| {
        std::fs::remove_file(&filler).unwrap();
    });
    server.stop();
}

/// What every refusal to start must look like: a non-zero exit within seconds, and exactly one
/// error line, last, naming `file` and containing each of `words` (what is wrong, what to do).
fn assert_refuses_to_start(server: &Server, file: &std::path::Path, words: &[&str]) {
    let (code, stderr) = server.serve_expecting_refusal(Duration::from_secs(10));
    assert_ne!(code, 0, "serve exited 0: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {stderr}");
    let line = *errors[0];
    assert_eq!(
        Some(&line),
        lines.last(),
        "the error line is the last: {stderr}"
    );
    assert!(
        line.contains(&file.display().to_string()),
        "the line names {}: {line}",
        file.display()
    );
    for w in words {
        assert!(
            line.to_ascii_lowercase().contains(&w.to_ascii_lowercase()),
            "the line says {w:?}: {line}"
        );
    }
}

/// A server that ran once (database, signing key and a token exist), now stopped.
fn stopped_server() -> Server {
    let mut server = TenantCtx::start("acme").server;
    server.stop();
    server
}

#[test]
fn corrupt_signing_key_refuses_to_start_naming_the_file() {
    let server = stopped_server();
    let key = server.data_dir().join("signing.key");
    std::fs::write(&key, b"0123456789").unwrap();
    assert_refuses_to_start(&server, &key, &["corrupt", "backup"]);
    std::fs::write(&key, vec![7u8; 65]).unwrap();
    assert_refuses_to_start(&server, &key, &["corrupt", "backup"]);
}

#[test]
fn missing_signing_key_with_issued_tokens_refuses_to_start() {
    // A fresh data dir gets a new key; but when tokens were issued, a silently regenerated key
    // would turn every token Entra holds into a 401 with no hint why.
    let server = stopped_server();
    let key = server.data_dir().join("signing.key");
    std::fs::remove_file(&key).unwrap();
    assert_refuses_to_start(&server, &key, &["missing", "backup"]);
    assert!(
        !key.exists(),
        "no new key was generated in place of the lost one"
    );
}

#[test]
fn unusable_certificate_or_key_refuses_to_start_naming_the_file() {
    let server = stopped_server();
    let cert = server.dir.path().join("cert.pem");
    let key = server.dir.path().join("key.pem");
    let good_cert = std::fs::read(&cert).unwrap();
    let good_key = std::fs::read(&key).unwrap();

    std::fs::write(&cert, b"this is not a certificate\n").unwrap();
    assert_refuses_to_start(&server, &cert, &["certificate"]);
    std::fs::write(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_refuses_to_start(&server, &cert, &["certificate"]);
    std::fs::remove_file(&cert).unwrap();
    assert_refuses_to_start(&server, &cert, &["certificate"]);
    // Unreadable (we may be root, so permissions do not stop us: a directory does).
    std::fs::create_dir(&cert).unwrap();
    assert_refuses_to_start(&server, &cert, &["certificate"]);
    std::fs::remove_dir(&cert).unwrap();
    std::fs::write(&cert, &good_cert).unwrap();

    std::fs::write(&key, b"garbage").unwrap();
    assert_refuses_to_start(&server, &key, &["key"]);
    // A key that does not belong to the certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
    assert_refuses_to_start(&server, &key, &["key"]);
    std::fs::write(&key, &good_key).unwrap();
}

#[test]
fn database_from_a_newer_version_refuses_to_start() {
    let server = stopped_server();
    let db = server.db_path();
    {
        let conn = Connection::open(&db).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "user_version", v + 1).unwrap();
    }
    assert_refuses_to_start(&server, &db, &["newer"]);
    // Refusing changed nothing: the version is still the newer one.
    let conn = Connection::open(&db).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 2, "user_version was rewritten to {v}");
}

#[test]
fn database_file_that_is_not_a_database_refuses_to_start() {
    let server = stopped_server();
    let db = server.db_path();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, vec![0x5au8; 64 * 1024]).unwrap();
    assert_refuses_to_start(&server, &db, &["database"]);
}

/// `limits.request_timeout_secs` bounds a request stuck behind an outside write lock: 503 with
/// Retry-After well before the 5 s busy timeout, and the abandoned create is not applied once
/// the lock goes away (nobody was told it succeeded; Entra's retry creates it).
#[test]
fn a_request_past_its_timeout_gets_503_and_is_not_applied_later() {
    let ctx = TenantCtx::start_with("acme", "[limits]\nrequest_timeout_secs = 1\n", &[]);
    let (server, scim) = (&ctx.server, ctx.scim());
    create_user(&scim, "before@contoso.com");

    let admin = Connection::open(server.db_path()).unwrap();
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    admin
        .execute_batch("UPDATE tenants SET name = name")
        .unwrap();
    let (r, took) = timed(|| scim.post("/Users", &json!({"userName": "late@contoso.com"})));
    assert_retry_later(&r, &[503]);
    assert!(
        took < Duration::from_secs(4),
        "answered after {took:?}: the 1 s request timeout did not fire"
    );
    admin.execute_batch("ROLLBACK").unwrap();
    drop(admin);

    // The writer gets the lock now and reaches the abandoned job: it must skip it.
    let after = create_user(&scim, "after@contoso.com");
    assert!(!after.is_empty());
    assert_eq!(
        scim.filter("/Users", "userName eq \"late@contoso.com\"")
            .body["totalResults"],
        0,
        "the timed-out create was applied after its 503"
    );
}
