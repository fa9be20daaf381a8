//! The `liag` command: link aggregation from the command line.

mod allowance;
mod demo;
mod limits;
mod links;
mod listeners;
mod proxy;
mod relay;
mod service;
mod speed;
mod speed_stream;
mod tunnel;
mod view;

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
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
    /// Read flags from this TOML file: each key is a long flag of the command, without the
    /// dashes (`tcp = 5800`, `port = ["22"]`, `tls = true`); flags given here override it.
    #[arg(long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How log lines look: `text` for people, `json` (one object a line) for journald and
    /// log collectors.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The form of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// Works with configuration files (see --config).
    #[command(subcommand)]
    Config(ConfigArgs),
}

/// `liag config ...`.
#[derive(Debug, Subcommand)]
enum ConfigArgs {
    /// Prints the effective configuration of a command, every default included, as TOML for
    /// --config: `liag config show tunnel server`, with the command's own flags and --config
    /// after it to see what they make.
    Show {
        /// The command and its flags, as they would be run: `tunnel server -p 22`.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<OsString>,
    },
}

/// Why the command line could not be read.
enum ParseError {
    /// The configuration file's.
    File(String),
    /// clap's, or its help or version.
    Clap(clap::Error),
}

/// The command line, with the configuration file's keys where it names one.
fn parse(argv: Vec<OsString>) -> Result<Cli, ParseError> {
    let argv = service::config_file::layered(&Cli::command(), argv).map_err(ParseError::File)?;
    Cli::try_parse_from(argv).map_err(ParseError::Clap)
}

impl Command {
    /// The command's name in its messages.
    fn who(&self) -> &'static str {
        use proxy::Args as P;
        use speed::Args as S;
        use tunnel::Args as T;
        match self {
            Command::Tunnel(T::Server(_)) => "liag tunnel server",
            Command::Tunnel(T::Client(_)) => "liag tunnel client",
            Command::Speed(S::Server { .. }) => "liag speed server",
            Command::Speed(S::Client { .. }) => "liag speed client",
            Command::Proxy(P::Server(_)) => "liag proxy server",
            Command::Proxy(P::Client(_)) => "liag proxy client",
            Command::Demo(_) => "liag demo",
            Command::Config(_) => "liag config",
        }
    }

    fn tunnel(self) -> Option<tunnel::Args> {
        match self {
            Command::Tunnel(args) => Some(args),
            _ => None,
        }
    }

    fn speed(self) -> Option<speed::Args> {
        match self {
            Command::Speed(args) => Some(args),
            _ => None,
        }
    }

    fn proxy(self) -> Option<proxy::Args> {
        match self {
            Command::Proxy(args) => Some(args),
            _ => None,
        }
    }
}

/// Signals, reloads and connections for the long-running command `who`; `pick` takes its
/// options out of the command line read again on a reload.
fn service_for<A: 'static>(
    who: &'static str,
    pick: fn(Command) -> Option<A>,
) -> service::Service<A> {
    service::Service::new(who, reparse(pick))
}

/// Reads the command line and configuration file again into `pick`'s options (a reload).
fn reparse<A: 'static>(
    pick: fn(Command) -> Option<A>,
) -> impl Fn() -> Result<A, String> + Send + Sync + 'static {
    let argv: Vec<OsString> = std::env::args_os().collect();
    move || match parse(argv.clone()) {
        Ok(cli) => pick(cli.command).ok_or_else(|| "another command".to_string()),
        Err(ParseError::File(e)) => Err(e),
        Err(ParseError::Clap(e)) => Err(e.render().to_string().trim().to_string()),
    }
}

/// `liag config show COMMAND...`: the configuration `liag COMMAND...` would run with.
fn show_config(command: Vec<OsString>) -> Result<(), String> {
    let mut argv = vec![OsString::from("liag")];
    argv.extend(command);
    let argv = service::config_file::layered(&Cli::command(), argv)?;
    let cli = Cli::command();
    // Required flags may be missing: the configuration is shown all the same.
    let matches = cli
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(argv)
        .map_err(|e| e.to_string())?;
    let (path, leaf, _) = service::config_file::leaf(&cli, &matches);
    if path.is_empty() || leaf.has_subcommands() {
        let choices: Vec<&str> = leaf.get_subcommands().map(|c| c.get_name()).collect();
        return Err(format!(
            "liag config show: which command? one of: {}",
            choices.join(", ")
        ));
    }
    print!("{}", service::config_file::show(&cli, &matches));
    Ok(())
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::File(e)) => {
            eprintln!("liag: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init(),
        LogFormat::Json => {
            // The operator's messages are log events here: shown unless RUST_LOG says less.
            let filter = tracing_subscriber::EnvFilter::builder()
                .with_default_directive("liag::cli=info".parse().expect("a valid directive"))
                .from_env_lossy();
            logs.json().with_env_filter(filter).init();
            service::set_json_logs();
        }
    }
    if let Command::Config(ConfigArgs::Show { command }) = cli.command {
        return match show_config(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("liag: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let who = cli.command.who();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Tunnel(args) => tunnel::run(args, service_for(who, Command::tunnel)).await,
            Command::Speed(args) => speed::run(args, service_for(who, Command::speed)).await,
            Command::Proxy(args) => proxy::run(args, service_for(who, Command::proxy)).await,
            Command::Config(_) => Ok(ExitCode::SUCCESS),
        }
    });
    service::live::release();
    if let Err(e) = allowance::save() {
        eprintln!("liag: cannot keep the allowances' counts: {e}");
    }
    // Blocking work still running (a name lookup with DNS down, say) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            service::fail(&e);
            ExitCode::FAILURE
        }
    }
}
