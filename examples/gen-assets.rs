//! Generates the man pages and shell completions that the .deb ships, from the same clap
//! definitions the binary parses with, so they can never drift from the real CLI.
//!
//! Usage: `cargo run --example gen-assets -- [OUT_DIR]` (default `target/assets`). Writes
//!
//! - `OUT_DIR/man/grouptalk-scim.8` and one page per subcommand (`grouptalk-scim-token-issue.8`,
//!   ...), section 8 because this is a system daemon and its administration tool;
//! - `OUT_DIR/completions/grouptalk-scim.bash`, `_grouptalk-scim` (zsh), `grouptalk-scim.fish`.
//!
//! `packaging/build-deb` runs it and gzips the pages; it is an example rather than a `build.rs`
//! so that ordinary builds do not pay for it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use grouptalk_scim::cli::Cli;

const BIN: &str = "grouptalk-scim";

fn main() -> io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/assets"), PathBuf::from);

    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir)?;
    let mut cmd = Cli::command()
        .name(BIN)
        .bin_name(BIN)
        .disable_help_subcommand(true);
    // build() fills in the display names ("grouptalk-scim-token-issue") used for page names.
    cmd.build();
    write_man_pages(&cmd, &man_dir)?;

    let completion_dir = out.join("completions");
    fs::create_dir_all(&completion_dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, BIN, &completion_dir)?;
        println!("{}", path.display());
    }
    Ok(())
}

/// One page for `cmd` and, recursively, one for each visible subcommand.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")));
    let path = man.generate_to(dir)?;
    println!("{}", path.display());
    Ok(())
}
