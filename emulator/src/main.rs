//! `cloud-secrets-emulator`: the systemprompt cloud secrets API on 127.0.0.1, to try
//! cloud-secrets without an account.

use clap::Parser;
use cloud_secrets_emulator::{Emulator, Listing};

/// Serve an emulator of the systemprompt cloud secrets API on 127.0.0.1.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  cloud-secrets-emulator --port 8787 --token dev-token --tenant demo --digests"
)]
struct Args {
    /// Port on 127.0.0.1
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// An API token the token exchange accepts, for every tenant (repeatable)
    #[arg(long, required = true)]
    token: Vec<String>,
    /// A tenant to create, empty (repeatable)
    #[arg(long, required = true)]
    tenant: Vec<String>,
    /// List digests, the salt and an ETag (the default lists names only)
    #[arg(long)]
    digests: bool,
}

#[allow(clippy::print_stdout)]
fn main() {
    let args = Args::parse();
    let emulator = Emulator::start_on(args.port, false);
    if args.digests {
        emulator.set_listing(Listing::Digests);
    }
    for token in &args.token {
        emulator.grant_all(token);
    }
    for tenant in &args.tenant {
        emulator.set_secrets(tenant, &[]);
    }
    println!("systemprompt cloud emulator listening on {} (Ctrl-C to stop)", emulator.url());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
}
