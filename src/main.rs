//! The `grouptalk-scim` binary: parses the command line and runs it (`cli`); errors end as one
//! `error: …` line and exit status 1, never a panic backtrace.

use clap::Parser;

/// mimalloc instead of the C library's allocator: musl's (the shipped static binary) serialises
/// threads on one lock and glibc's spent a sixth of the server's time in malloc/free under load
/// (scripts/bench profile). The crate's `override` feature (Cargo.toml) also replaces malloc and
/// free for the C code — SQLite, AWS-LC: under musl's allocator a durable create cost twice the
/// server CPU it costs with glibc's.
///
/// Built with `no_thp` (Cargo.toml): mimalloc otherwise marks its memory for transparent huge
/// pages, and a touched byte then makes 2 MiB resident; the feed snapshot's peak resident set
/// was 100 MiB instead of 57 (at 100,000 users) on Debian's default THP setting (`madvise`). A
/// host whose THP setting is `always` gives huge pages to every process regardless.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = grouptalk_scim::cli::Cli::parse();
    if let Err(e) = grouptalk_scim::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
