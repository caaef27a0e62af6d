use clap::Parser;

fn main() {
    let cli = grouptalk_scim::cli::Cli::parse();
    if let Err(e) = grouptalk_scim::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
