//! `backup FILE`, `backup --verify FILE` and `restore [--discard-revocations] FILE`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::config::Config;
use crate::store::backup::{self, CarriedOver, Current, Summary};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Check an existing backup file instead of writing one
    #[arg(long)]
    pub verify: bool,
    /// The backup file (must not exist yet, unless --verify)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup written by `grouptalk-scim backup`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Restore even when the current database is missing or cannot be read. Token revocations
    /// made since the backup are then lost: revoke those tokens again. (When the current
    /// database can be read, its revocations are always carried over.)
    #[arg(long)]
    pub discard_revocations: bool,
}

fn print_summary(file: &Path, s: &Summary) {
    println!(
        "{}: ok ({} tenants, {} users, {} groups, {} memberships)",
        file.display(),
        s.tenants,
        s.users,
        s.groups,
        s.memberships
    );
}

pub fn run_backup(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    if args.verify {
        let summary = backup::verify(&args.file)?;
        print_summary(&args.file, &summary);
        return Ok(());
    }
    let db = config.database_path();
    if !db.exists() {
        bail!("no database at {} (check data_dir)", db.display());
    }
    let expected = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let dest = args.file.clone();
    let worker = {
        let (db, dest) = (db.clone(), dest.clone());
        std::thread::spawn(move || backup::backup(&db, &dest))
    };
    // Progress: the copy's size against the database's (an estimate: the copy is compacted).
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(expected.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} backup {bytes}/{total_bytes} {wide_bar} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !worker.is_finished() {
            bar.set_position(std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    } else {
        eprintln!(
            "backup: copying {} ({expected} bytes) to {}",
            db.display(),
            dest.display()
        );
    }
    match worker.join() {
        Ok(result) => result?,
        Err(_) => bail!("the backup thread failed"),
    }
    let summary = backup::verify(&dest)?;
    eprintln!("backup: written and verified");
    print_summary(&dest, &summary);
    Ok(())
}

pub fn run_restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    if crate::lock::server_running(&config.data_dir)? {
        bail!(
            "a grouptalk-scim server is running on {}; stop it first (systemctl stop grouptalk-scim), then restore",
            config.data_dir.display()
        );
    }
    crate::fsutil::ensure_data_dir(&config.data_dir)?;
    let db = config.database_path();
    if !args.file.is_file() {
        bail!("{} does not exist or is not a file", args.file.display());
    }
    // Revocations made since the backup must survive it: a revoked (perhaps leaked) token would
    // otherwise be valid again.
    let (revocations, lost) = match backup::current_revocations(&db) {
        Current::Read(r) => (Some(r), None),
        Current::Missing if args.discard_revocations => {
            (None, Some(format!("there is no database at {}", db.display())))
        }
        Current::Unreadable(why) if args.discard_revocations => (
            None,
            Some(format!("the database {} cannot be read: {why}", db.display())),
        ),
        Current::Missing => bail!(
            "there is no database at {} to carry token revocations over from: tokens revoked since the \
             backup was taken would be valid again. If that is acceptable (e.g. a new machine), run again \
             with --discard-revocations, then revoke those tokens again",
            db.display()
        ),
        Current::Unreadable(why) => bail!(
            "cannot read the token revocations of the current database {} ({why}): tokens revoked since \
             the backup was taken would be valid again. Run again with --discard-revocations to restore \
             anyway, then revoke those tokens again",
            db.display()
        ),
    };
    let (summary, carried) = backup::restore(&args.file, &db, revocations.as_ref())?;
    super::hand_over_to_owner(config);
    eprintln!("restored {} into {}", args.file.display(), db.display());
    for c in &carried {
        eprintln!("{}", carried_line(c));
    }
    if let Some(why) = lost {
        eprintln!(
            "revocations discarded: {why}; revoke again any token revoked since the backup was taken"
        );
    }
    print_summary(&db, &summary);
    Ok(())
}

/// "carried over 2 token revocations made since the backup (1 of a token the backup did not have)".
fn carried_line(c: &CarriedOver) -> String {
    let n = c.revoked + c.inserted;
    let mut line = format!(
        "carried over {n} {}{} made since the backup",
        c.noun,
        if n == 1 {
            " revocation"
        } else {
            " revocations"
        }
    );
    if c.inserted > 0 {
        line.push_str(&format!(
            " ({} of a {} the backup did not have)",
            c.inserted, c.noun
        ));
    }
    if c.without_parent > 0 {
        line.push_str(&format!(
            "; {} more of tenants the backup does not have (unusable with it)",
            c.without_parent
        ));
    }
    line
}
