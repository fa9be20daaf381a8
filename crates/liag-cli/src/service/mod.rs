//! What running liag as a service takes: the configuration file, the live connections the
//! monitor and the metrics read, clean shutdown on signals, readiness for systemd, and logs
//! as people or as log collectors read them.

/// Says something to the operator: a line on standard error, or with `--log-format json` a
/// log event (target `liag::cli`) that the JSON log carries.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::service::emit(format!($($arg)*))
    };
}
pub(crate) use say;

pub(crate) mod config_file;
pub(crate) mod connections;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod shutdown;

pub(crate) use connections::Connections;
pub(crate) use shutdown::Shutdown;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// Whether the operator's messages go into the JSON log.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Sends the operator's messages into the JSON log from now on.
pub(crate) fn set_json_logs() {
    JSON_LOGS.store(true, Ordering::Relaxed);
}

/// Reports the error a command ended with: an ERROR event with `--log-format json`, a line on
/// standard error otherwise.
pub(crate) fn fail(error: &dyn std::fmt::Display) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::error!(target: "liag::cli", "{error}");
    } else {
        eprintln!("liag: {error}");
    }
}

/// Says, on a reload, that options which apply only at a restart (`what`, as `fixed` shows
/// them) differ between the running options `old` and the reloaded `new`.
pub(crate) fn restart_only<A>(
    who: &str,
    what: &str,
    (old, new): (&A, &A),
    fixed: fn(&A) -> String,
) {
    if fixed(old) != fixed(new) {
        say!("{who}: reload: {what} changed; they apply at a restart");
    }
}

/// Gives the operator `message` ([`say!`]): as a log event with `--log-format json`, in the
/// monitor's message pane while it runs, on standard error otherwise.
pub(crate) fn emit(message: String) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::info!(target: "liag::cli", "{message}");
    } else if let Some(message) = live::divert(message) {
        eprintln!("{message}");
    }
}

/// Options every long-running command has.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ServiceArgs {
    /// Serve Prometheus metrics on http://ADDR/metrics, for example 127.0.0.1:9810.
    #[arg(long = "metrics", value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
}

/// What a long-running command gets from `main`: shutdown, reloads and its connections.
pub(crate) struct Service<A> {
    /// Stops on SIGINT and SIGTERM.
    pub(crate) shutdown: Shutdown,
    /// The connections the command holds, for the monitor and the metrics.
    pub(crate) connections: Connections,
    reloads: mpsc::Receiver<()>,
    reparse: Box<dyn Fn() -> Result<A, String> + Send + Sync>,
}

impl<A> Service<A> {
    /// Watches signals for `who`; `reparse` reads the command line and configuration file
    /// again into the command's options.
    pub(crate) fn new(
        who: &'static str,
        reparse: impl Fn() -> Result<A, String> + Send + Sync + 'static,
    ) -> Self {
        let (shutdown, reloads) = Shutdown::on_signals(who);
        Service {
            shutdown,
            connections: Connections::default(),
            reloads,
            reparse: Box::new(reparse),
        }
    }

    /// Waits for SIGHUP, then reads the configuration again: the new options, or why they
    /// cannot be had. Pending forever once signals cannot be watched.
    pub(crate) async fn reloaded(&mut self) -> Result<A, String> {
        if self.reloads.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        notify_reloading();
        (self.reparse)()
    }
}

/// Tells systemd (`Type=notify`) that the command is serving; nothing without systemd.
pub(crate) fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// Tells systemd the command is reading its configuration again.
pub(crate) fn notify_reloading() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
}

/// Tells systemd the command is stopping.
pub(crate) fn notify_stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}
