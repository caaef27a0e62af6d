//! Attacks through the files: a compromised service account that plants links in its data
//! directory for an administrator's `sudo grouptalk-scim …` to follow, directory data left
//! readable by anyone (databases, WAL, backups, restored files), a restore that brings revoked
//! tokens back, and client text that reaches an administrator's terminal through `log`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{patch_op, Server, TenantCtx, BIN};

/// The uid and gid the service account has in these tests (`nobody`: any non-root id will do).
const SERVICE_ID: u32 = 65534;

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

/// The database's side files (`-wal`, `-shm`).
fn side_file(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A file of the test's own, owned by root, outside the data directory: what a planted link
/// points at (in a real attack /etc/shadow).
fn outside_file(server: &Server, name: &str, contents: &[u8]) -> PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn assert_untouched(path: &Path, contents: &[u8]) {
    let m = std::fs::metadata(path).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (0, 0),
        "{path:?} was handed to the service account"
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        contents,
        "{path:?} was written"
    );
}

#[test]
#[ignore = "needs root: the CLI hands files to the service account only when run as root"]
fn cli_as_root_never_hands_a_linked_file_outside_the_data_dir_to_the_service_account() {
    assert!(running_as_root(), "this test needs root");
    let server = Server::prepare("", &[]);
    let (data, db) = (server.data_dir(), server.db_path());
    // The administrator sets up as root; the package then gives the directory to the service.
    let (ok, _, err) = server.cli(&["tenant", "create", "acme"]);
    assert!(ok, "{err}");
    std::os::unix::fs::chown(&data, Some(SERVICE_ID), Some(SERVICE_ID)).unwrap();

    // The compromised service account replaces signing.key by a symbolic link to a root file.
    let secret = b"root:$6$secret:19000:0:99999:7:::\n";
    let shadow = outside_file(&server, "shadow", secret);
    let key = data.join("signing.key");
    std::os::unix::fs::symlink(&shadow, &key).unwrap();
    let (ok, _, err) = server.cli(&["token", "list"]);
    assert!(ok, "{err}");
    assert_untouched(&shadow, secret);
    assert!(
        err.contains("signing.key") && err.contains("symbolic link"),
        "the CLI must say what it refused: {err}"
    );
    // What the CLI made as root still goes to the service account (it must keep working).
    let m = std::fs::metadata(&db).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (SERVICE_ID, SERVICE_ID),
        "database not handed over"
    );

    // A hard link to the root file (possible where fs.protected_hardlinks is off).
    std::fs::remove_file(&key).unwrap();
    std::fs::hard_link(&shadow, &key).unwrap();
    let (ok, _, err) = server.cli(&["token", "list"]);
    assert!(ok, "{err}");
    assert_untouched(&shadow, secret);
    assert!(
        err.contains("signing.key") && err.contains("link"),
        "the CLI must say what it refused: {err}"
    );
    std::fs::remove_file(&key).unwrap();

    // The database itself a link to a root file: the CLI must neither write a database into it
    // nor hand it over; it refuses and names the file.
    let other = outside_file(&server, "other.db", b"");
    std::fs::rename(&db, data.join("moved-away.db")).unwrap();
    std::os::unix::fs::symlink(&other, &db).unwrap();
    let (ok, _, err) = server.cli(&["token", "list"]);
    assert!(
        !ok,
        "the CLI used a database reached through a symbolic link"
    );
    assert!(
        err.contains("grouptalk-scim.db") && err.contains("symbolic link"),
        "{err}"
    );
    assert_untouched(&other, b"");
}

#[test]
fn a_data_dir_that_is_a_symbolic_link_the_administrator_made_still_works() {
    // Links are refused in the database's own name only: moving the data to another disk and
    // linking the configured directory there is an administrator's choice.
    let mut server = Server::prepare("", &[]);
    let real = server.dir.path().join("elsewhere");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, server.data_dir()).unwrap();
    let token = server.tenant_token("acme");
    server.spawn();
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
    assert!(real.join("grouptalk-scim.db").is_file());
    assert_eq!(mode(&real.join("grouptalk-scim.db")), 0o600);
}

/// Set in the child process `under_umask_022` starts.
const UMASK_CHILD: &str = "GROUPTALK_TEST_UMASK_022_CHILD";

/// Run the test `name` (in this module) again in a child process of this test binary whose umask
/// is 022, a root shell's: the server and the CLI it starts inherit it. True in the child, which
/// then does the test's work; the parent asserts that the child passed and gets false.
fn under_umask_022(name: &str) -> bool {
    if std::env::var_os(UMASK_CHILD).is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(
            status.lines().any(|l| l == "Umask:\t0022"),
            "the child does not run under umask 022"
        );
        return true;
    }
    let module = module_path!().split_once("::").unwrap().1;
    let test = format!("{module}::{name}");
    let out = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--include-ignored", "--nocapture"])
        .env(UMASK_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "under umask 022: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[test]
fn database_wal_backups_and_restored_files_are_private_under_umask_022() {
    if !under_umask_022("database_wal_backups_and_restored_files_are_private_under_umask_022") {
        return;
    }
    let mut server = Server::prepare("", &[]);
    let db = server.db_path();
    // A database first created by the CLI.
    let (ok, _, err) = server.cli(&["tenant", "create", "acme"]);
    assert!(ok, "{err}");
    assert_eq!(mode(&db), 0o600, "database created by the CLI");
    // A database created 0644 by an earlier version is tightened the next time it is opened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = server.cli(&["tenant", "list"]);
    assert!(ok, "{err}");
    assert_eq!(mode(&db), 0o600, "database left 0644 by an earlier version");
    // The server's WAL and shared-memory files, while it runs and writes.
    server.spawn();
    let token = server.token("acme");
    let r = server
        .as_tenant(&token)
        .post("/Users", &json!({"userName": "a@x"}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    for suffix in ["-wal", "-shm"] {
        assert_eq!(mode(&side_file(&db, suffix)), 0o600, "database{suffix}");
    }
    // `backup FILE` from the CLI.
    let file = server.dir.path().join("manual.db");
    let (ok, _, err) = server.cli(&["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(mode(&file), 0o600, "backup FILE");
    // Scheduled backups: the function the server's backup loop runs.
    let dir = server.dir.path().join("scheduled");
    let written = grouptalk_scim::maintenance::scheduled_backup(&db, &dir, 3).unwrap();
    assert_eq!(mode(&written), 0o600, "scheduled backup");
    // Restore: the restored database and the one it replaced, even from files that were 0644
    // (a backup or a database from an earlier version).
    server.stop();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(mode(&db), 0o600, "restored database");
    let before = server.data_dir().join("grouptalk-scim.db.before-restore");
    assert_eq!(mode(&before), 0o600, "*.before-restore");
    server.spawn();
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
    for suffix in ["-wal", "-shm"] {
        assert_eq!(
            mode(&side_file(&db, suffix)),
            0o600,
            "restored database{suffix}"
        );
    }
}

#[test]
fn restore_of_a_backup_from_before_a_revocation_keeps_the_token_revoked() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let kept = server.token("acme");
    let jti = |t: &str| {
        crate::harness::claims(t)["jti"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
    let file = server.dir.path().join("before-revocation.db");
    let (ok, _, err) = server.cli(&["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    // After the backup: the token leaks and is revoked; another is issued and revoked too.
    let later = server.token("acme");
    for t in [&token, &later] {
        let (ok, _, err) = server.cli(&["token", "revoke", &jti(t)]);
        assert!(ok, "{err}");
        assert_eq!(server.as_tenant(t).get("/Users").status, 401);
    }
    server.stop();
    let (ok, out, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        format!("{out}{err}").contains("carried over 2 token revocations"),
        "restore must say what it carried over: {out}{err}"
    );
    server.spawn();
    for t in [&token, &later] {
        assert_eq!(
            server.as_tenant(t).get("/Users").status,
            401,
            "a token revoked after the backup is valid again after the restore"
        );
    }
    assert_eq!(server.as_tenant(&kept).get("/Users").status, 200);
    // The token the backup did not know is in the restored database, revoked.
    let (ok, list, err) = server.cli(&["token", "list"]);
    assert!(ok, "{err}");
    let row = list.lines().find(|l| l.starts_with(&jti(&later)));
    assert!(
        row.is_some_and(|r| r
            .split_whitespace()
            .nth(5)
            .is_some_and(|c| c.starts_with("20"))),
        "{list}"
    );
}

#[test]
fn restore_refuses_when_the_current_database_cannot_be_read_unless_told_to_discard_revocations() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let file = server.dir.path().join("b.db");
    let (ok, _, err) = server.cli(&["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    server.stop();
    let db = server.db_path();
    let garbage = b"this is not a SQLite database, and nobody can read its revocations".repeat(100);
    std::fs::write(&db, &garbage).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(side_file(&db, suffix));
    }
    let (ok, _, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(
        !ok,
        "restore went ahead without the revocations of a database it cannot read"
    );
    assert!(err.contains("--discard-revocations"), "{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "a refused restore changed the database"
    );
    let (ok, out, err) = server.cli(&["restore", "--discard-revocations", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        format!("{out}{err}").contains("discarded"),
        "restore must say that revocations may be lost: {out}{err}"
    );
    server.spawn();
    assert_eq!(server.as_tenant(&token).get("/Users").status, 200);
    // `--help` documents the flag.
    let out = Command::new(BIN)
        .args(["restore", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--discard-revocations"));
}

/// Control characters a terminal acts on: C0 (ESC, BEL, CR, LF …), DEL and C1 (U+0080–U+009F,
/// which UTF-8 terminals may take as CSI and friends).
fn terminal_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && c.is_control())
        .collect()
}

#[test]
fn log_escapes_terminal_control_sequences_sent_by_clients() {
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    // Percent-decoded by the server, then echoed in the detail of the error: an OSC that
    // retitles the window, a C1 CSI (UTF-8 C2 9B), DEL, and a line feed that forges a line.
    let hostile = [
        "/Users?filter=%1b%5d0%3bpwned%07",
        "/Users?filter=%C2%9B31m%7F",
        "/Users/a%0a2026-01-01T00:00:00Z%20acme%20DELETE%0d",
        "/Users/%1b%5b2J%C2%9B0m",
    ];
    for path in hostile {
        assert_eq!(scim.get(path).status / 100, 4, "{path}");
    }
    let r = scim.patch(
        "/Users/x",
        &patch_op(json!([{"op": "replace", "path": "name\u{1b}[31m", "value": 1}])),
    );
    assert_eq!(r.status / 100, 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (table, json_lines) = loop {
        let (ok, table, err) = server.cli(&["log"]);
        assert!(ok, "{err}");
        let (ok, json_lines, err) = server.cli(&["log", "--json"]);
        assert!(ok, "{err}");
        if json_lines.lines().count() >= 5 || Instant::now() > deadline {
            break (table, json_lines);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(json_lines.lines().count(), 5, "{json_lines}");
    for (form, text) in [("log", &table), ("log --json", &json_lines)] {
        let found = terminal_controls(text);
        assert!(
            found.is_empty(),
            "`{form}` prints control characters {found:?}:\n{}",
            text.escape_debug()
        );
    }
    assert_eq!(table.lines().count(), 1 + 5, "one line per entry:\n{table}");
    // Escaped, not dropped: the administrator still sees what was sent.
    assert!(
        table.contains("\\x1b") && table.contains("\\u{9b}"),
        "{table}"
    );
    // The JSON still holds exactly what was sent.
    let details: Vec<serde_json::Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|e| e["detail"].as_str().is_some_and(|d| d.contains('\u{9b}'))),
        "{json_lines}"
    );
}
