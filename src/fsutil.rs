//! File helpers for secrets and state: private files (0600), a private data dir (0750), the
//! database's files kept private whoever creates them, and handing what a CLI run as root made
//! to the data directory's owner without following anything that owner could have planted.
//!
//! The service account owns the data directory, so it can put anything under any name there: a
//! symbolic link to `/etc/shadow`, a hard link, a FIFO. An administrator runs the CLI as root on
//! the same directory. Everything here that root does to a file in it therefore acts on the file
//! itself, opened with `O_NOFOLLOW`, and checks what it opened before changing it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Open flags that make `open` act on the name itself: never through a symbolic link in the
/// last component (`ELOOP` instead), never blocking on a FIFO, never acquiring a terminal.
const NO_FOLLOW: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// The mode of every file that holds directory data or a secret.
const PRIVATE: u32 = 0o600;

/// Write a file only its owner can read (created 0600; an existing file is tightened to 0600).
/// A symbolic link or anything but a regular file at `path` is refused, not written through.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE)
        .custom_flags(NO_FOLLOW)
        .open(path)
        .map_err(|e| refusal(path, e))
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !f.metadata()?.file_type().is_file() {
        bail!("cannot write {}: it is not a regular file", path.display());
    }
    f.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
    f.set_len(0)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Create a new, empty file only its owner can read, whatever the umask. Fails if anything
/// exists at `path` (a dangling symbolic link too: `O_EXCL` never follows one).
pub fn create_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .open(path)
}

/// Open an existing file read-only without following a symbolic link (None when absent).
fn open_no_follow(path: &Path) -> std::io::Result<Option<File>> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(NO_FOLLOW)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `ELOOP` from an `O_NOFOLLOW` open, said the way an administrator understands it.
fn refusal(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::other(format!(
            "{} is a symbolic link, which is not followed",
            path.display()
        ))
    } else {
        e
    }
}

/// Make the existing file at `path` private (0600) if group or others may read it. Refuses a
/// symbolic link or anything but a regular file. Absent is fine.
pub fn make_private(path: &Path) -> anyhow::Result<()> {
    let Some(f) = open_no_follow(path).map_err(|e| refusal(path, e))? else {
        return Ok(());
    };
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        // fchmod on the file we opened: never a file a link points at. Someone else's file (a
        // user the group lets read it) is not ours to tighten.
        match f.set_permissions(std::fs::Permissions::from_mode(PRIVATE)) {
            Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => {
                return Err(e)
                    .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The database's side files SQLite creates next to it.
pub const DATABASE_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// `db` with `suffix` appended to its file name (`x.db` → `x.db-wal`).
pub fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Before SQLite opens the database at `db`: create it empty and 0600 if it does not exist
/// (SQLite creates files 0644 less the umask — world-readable under a root shell's 022 — and
/// gives `-wal` and `-shm` the database's mode), and make an existing one and its side files
/// 0600 (an earlier version left them 0644). A symbolic link or anything but a regular file
/// under these names is refused: the CLI runs as root in a directory the service account owns.
pub fn prepare_database_files(db: &Path) -> anyhow::Result<()> {
    match create_private(db) {
        Ok(f) => f
            .sync_all()
            .with_context(|| format!("cannot create database {}", db.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create database {}", db.display()))
        }
    }
    make_private(db).with_context(|| format!("cannot use database {}", db.display()))?;
    for suffix in DATABASE_SIDE_FILES {
        let side = with_suffix(db, suffix);
        make_private(&side).with_context(|| format!("cannot use database {}", db.display()))?;
    }
    Ok(())
}

/// Create the data directory (0750) if it does not exist.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// What [`hand_over`] did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// It belonged to root and now belongs to the directory's owner.
    Given,
    /// Nothing to do: absent, or the owner's already.
    Unchanged,
    /// Left as it is, and why: it is not a file root made here.
    Refused(String),
}

/// Give the files `names` of directory `dir` that root made (a CLI run with sudo) to the
/// directory's owner, so the service running as that owner can still write them.
///
/// The directory is opened once (a data dir that is a symbolic link the administrator made is
/// followed there, once) and the owner read from that open directory; every name is then opened
/// inside that same directory, through `/proc/self/fd`, with `O_NOFOLLOW`, and changed with
/// `fchown` on the open file. A file is given only if it is a regular file with a single link,
/// owned by root: a symbolic link, a hard link to a file elsewhere, a FIFO or a file of another
/// user is refused and said so. An empty list when the directory belongs to root.
pub fn hand_over(dir: &Path, names: &[&str]) -> anyhow::Result<Vec<(String, HandOver)>> {
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .with_context(|| format!("cannot open directory {}", dir.display()))?;
    let owner = d.metadata()?;
    if owner.uid() == 0 {
        return Ok(Vec::new());
    }
    let pinned = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&d)
    ));
    if !pinned.is_dir() {
        bail!(
            "cannot reach {} through {} (is /proc mounted?)",
            dir.display(),
            pinned.display()
        );
    }
    let mut done = Vec::with_capacity(names.len());
    for &name in names {
        let outcome = if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            HandOver::Refused("it is not a file name".into())
        } else {
            give(&pinned.join(name), owner.uid(), owner.gid())
        };
        done.push((name.to_string(), outcome));
    }
    Ok(done)
}

fn give(path: &Path, uid: u32, gid: u32) -> HandOver {
    let f = match open_no_follow(path) {
        Ok(None) => return HandOver::Unchanged,
        Ok(Some(f)) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return HandOver::Refused("it is a symbolic link".into())
        }
        Err(e) => return HandOver::Refused(format!("it cannot be opened: {e}")),
    };
    let meta = match f.metadata() {
        Ok(m) => m,
        Err(e) => return HandOver::Refused(format!("it cannot be examined: {e}")),
    };
    if !meta.file_type().is_file() {
        return HandOver::Refused("it is not a regular file".into());
    }
    if meta.nlink() != 1 {
        return HandOver::Refused(format!(
            "it has {} hard links (another name may be a file outside the directory)",
            meta.nlink()
        ));
    }
    if meta.uid() == uid {
        return HandOver::Unchanged;
    }
    if meta.uid() != 0 {
        return HandOver::Refused(format!("it belongs to uid {}, not root", meta.uid()));
    }
    match std::os::unix::fs::fchown(&f, Some(uid), Some(gid)) {
        Ok(()) => HandOver::Given,
        Err(e) => HandOver::Refused(format!("chown failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(outcome: &[(String, HandOver)], name: &str, why: &str) -> bool {
        outcome
            .iter()
            .any(|(n, o)| n == name && matches!(o, HandOver::Refused(w) if w.contains(why)))
    }

    #[test]
    fn hand_over_refuses_links_fifos_and_names_that_are_not_files() {
        // As any user: a directory of our own, handed to ourselves (root: its owner is root,
        // so make it someone else's — the e2e test covers a real hand-over as root).
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        if std::fs::metadata(d).unwrap().uid() == 0 {
            std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
        }
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();
        std::os::unix::fs::symlink(d.join("missing"), d.join("dangling")).unwrap();
        std::fs::write(d.join("twice"), b"x").unwrap();
        std::fs::hard_link(d.join("twice"), d.join("twice-again")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("fifo"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let names = [
            "link", "dangling", "twice", "sub", "fifo", "../x", "..", "absent",
        ];
        let outcome = hand_over(d, &names).unwrap();
        assert!(refused(&outcome, "link", "symbolic link"), "{outcome:?}");
        assert!(
            refused(&outcome, "dangling", "symbolic link"),
            "{outcome:?}"
        );
        assert!(refused(&outcome, "twice", "hard links"), "{outcome:?}");
        assert!(
            refused(&outcome, "sub", "not a regular file"),
            "{outcome:?}"
        );
        assert!(
            refused(&outcome, "fifo", "not a regular file"),
            "{outcome:?}"
        );
        assert!(refused(&outcome, "../x", "not a file name"), "{outcome:?}");
        assert!(refused(&outcome, "..", "not a file name"), "{outcome:?}");
        assert!(outcome.contains(&("absent".into(), HandOver::Unchanged)));
    }

    #[test]
    fn private_files_are_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_private(&link, b"new").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let err = make_private(&link).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let err = prepare_database_files(&link).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert!(create_private(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn database_files_are_created_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        prepare_database_files(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
        let wal = with_suffix(&db, "-wal");
        std::fs::write(&wal, b"").unwrap();
        for p in [&db, &wal] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare_database_files(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        write_private(&dir.path().join("k"), b"secret").unwrap();
        assert_eq!(mode(&dir.path().join("k")), 0o600);
    }
}
