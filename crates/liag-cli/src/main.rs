//! The `liag` command: link aggregation from the command line.

mod demo;
mod limits;
mod links;
mod proxy;
mod relay;
mod speed;
mod speed_stream;
mod tunnel;
mod view;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// liag joins several links into one connection with their combined bandwidth.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, after_help = "\
Examples:
  liag demo                                   three emulated links, one black-holed mid-way
  liag demo --link 100mbit/2ms --link 50mbit/30ms --duration 10
  liag demo --json > result.json
  liag speed server                           answer speed tests on TCP port 5700
  liag speed client --tcp server.example -t 5 --json
  liag speed client --websocket server.example --tls
                                              WebSocket links inside TLS, as agg-speed --tls
  liag tunnel server -p 22 --tcp 5800        publish local port 22
  liag tunnel client -p 22:2222 --tcp server.example:5800
                                              then: ssh -p 2222 localhost
  liag proxy server --token-file token        open destinations for clients with the token
  liag proxy client --tcp server.example --token-file token
                                              then: curl --socks5-hostname localhost:1080 URL

Logging: set RUST_LOG, for example RUST_LOG=liag=debug.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows aggregation at work in one process: a verified stream over emulated links, the
    /// fastest of them silenced and healed on the way.
    Demo(demo::Args),
    /// Measures speed over real TCP and WebSocket links, optionally with TLS (compatible with
    /// agg-speed).
    #[command(subcommand)]
    Speed(speed::Args),
    /// Forwards TCP ports over aggregated connections of TCP and WebSocket links, optionally
    /// with TLS (compatible with agg-tunnel).
    #[command(subcommand)]
    Tunnel(tunnel::Args),
    /// A SOCKS5 proxy on this machine whose connections the server opens, all carried over
    /// one aggregated connection (liag at both ends).
    #[command(subcommand)]
    Proxy(proxy::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("liag: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Tunnel(args) => tunnel::run(args).await,
            Command::Speed(args) => speed::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("liag: {e}");
            ExitCode::FAILURE
        }
    }
}
