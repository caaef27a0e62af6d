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

/// One page for `cmd` and, recursively, one for each visible subcommand. The top-level page
/// also gets the sections clap knows nothing about: FILES, ENVIRONMENT, NOTES, SEE ALSO.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page)?;
    if cmd.get_name() == BIN {
        page.extend_from_slice(TOP_LEVEL_EXTRA.as_bytes());
    }
    let path = dir.join(man.get_filename());
    fs::write(&path, page)?;
    println!("{}", path.display());
    Ok(())
}

/// roff for the top-level page; what the package installs and where (keep in step with
/// packaging/ and config/grouptalk-scim.toml).
const TOP_LEVEL_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/grouptalk\-scim/config.toml\fR
The configuration (TOML). Every key is documented there with its default;
\fBgrouptalk\-scim check\-config\fR prints the effective configuration and checks the TLS files.
.TP
\fI/etc/grouptalk\-scim/tls/\fR
The TLS certificate chain and private key (\fIfullchain.pem\fR, \fIprivkey.pem\fR): directory
root:grouptalk\-scim 0750, key root:grouptalk\-scim 0640, so the service reads the key and other
users cannot. \fBsystemctl reload grouptalk\-scim\fR re\-reads both without dropping connections.
.TP
\fI/var/lib/grouptalk\-scim/\fR
The SQLite database and the token signing key, owned by the grouptalk\-scim user. Back it up.
.TP
\fI/usr/lib/systemd/system/grouptalk\-scim.service\fR
The systemd unit (Type=notify, sandboxed, only CAP_NET_BIND_SERVICE). Change it with
\fBsystemctl edit grouptalk\-scim\fR.
.SH ENVIRONMENT
.TP
\fBGROUPTALK_SCIM_CONFIG\fR
The configuration file to read instead of \fI/etc/grouptalk\-scim/config.toml\fR.
.TP
\fBGROUPTALK_SCIM_\fR\fIKEY\fR, \fBGROUPTALK_SCIM_\fR\fITABLE\fR\fB__\fR\fIKEY\fR
Override one configuration key, e.g. \fBGROUPTALK_SCIM_SERVER__LISTEN=127.0.0.1:9443\fR.
.TP
\fBRUST_LOG\fR
Log filter; overrides \fBlog.level\fR.
.SH NOTES
Run the administration commands as the service user, so that every file they create in
\fI/var/lib/grouptalk\-scim\fR stays usable by the service:
.PP
.nf
.RS
runuser \-u grouptalk\-scim \-\- grouptalk\-scim tenant create NAME
runuser \-u grouptalk\-scim \-\- grouptalk\-scim token issue \-\-tenant NAME
.RE
.fi
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fI/usr/share/doc/grouptalk\-scim/\fR
"#;
