use clap::Parser;

/// mimalloc instead of the C library's allocator: musl's (the shipped static binary) serialises
/// threads on one lock and glibc's spent a sixth of the server's time in malloc/free under load
/// (scripts/bench profile). Only Rust allocations; SQLite keeps the C library's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = grouptalk_scim::cli::Cli::parse();
    if let Err(e) = grouptalk_scim::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
