//! Signals and clean shutdown. The first SIGINT or SIGTERM stops new work and ends every
//! connection gracefully: a liag `Connection` dropped sends the end of its stream after the
//! data written, so the peer reads everything and then a clean end. The process waits, within
//! [`GRACE`], for its peers to acknowledge it. A second signal exits at once. SIGHUP asks for
//! the configuration to be read again.

use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use liag_transports::liag_tokio::Control;

/// How long a shutdown waits for connections to end gracefully.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// The exit status of a process stopped by a second signal.
const FORCED_EXIT: i32 = 130;

/// The stop token and the tasks a shutdown waits for.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// Listens for SIGINT, SIGTERM and SIGHUP; the receiver gets a message per SIGHUP.
    pub(crate) fn on_signals(who: &'static str) -> (Shutdown, mpsc::Receiver<()>) {
        let shutdown = Shutdown {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let (reload_tx, reload_rx) = mpsc::channel(1);
        tokio::spawn(watch_signals(who, shutdown.stop.clone(), reload_tx));
        (shutdown, reload_rx)
    }

    /// Starts the shutdown, as a signal does.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Resolves when shutdown starts.
    pub(crate) async fn stopping(&self) {
        self.stop.cancelled().await
    }

    /// Whether shutdown has started.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Runs `task`; [`Shutdown::drain`] waits for it.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Waits for the spawned tasks, within [`GRACE`]; true if all ended in time.
    pub(crate) async fn drain(&self) -> bool {
        self.tasks.close();
        tokio::time::timeout(GRACE, self.tasks.wait()).await.is_ok()
    }

    /// Runs `work` on a connection until it ends or shutdown starts. On shutdown `work` is
    /// dropped, which ends the connection gracefully if `work` held it, and the connection is
    /// given until [`GRACE`] to close; `None` then.
    pub(crate) async fn guard<F: Future>(&self, control: &Control, work: F) -> Option<F::Output> {
        tokio::select! {
            done = work => Some(done),
            () = self.stop.cancelled() => {
                let _ = tokio::time::timeout(GRACE, control.closed()).await;
                None
            }
        }
    }
}

#[cfg(unix)]
async fn watch_signals(who: &'static str, stop: CancellationToken, reload: mpsc::Sender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        say!("{who}: cannot watch signals; SIGTERM ends the process at once");
        return;
    };
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => {
                // A reload already asked for and not yet done covers this one too.
                let _ = reload.try_send(());
                continue;
            }
        };
        if stop.is_cancelled() {
            say!("{who}: {name} again: exiting at once");
            std::process::exit(FORCED_EXIT);
        }
        say!(
            "{who}: {name}: ending connections gracefully (within {} s); signal again to exit \
             at once",
            GRACE.as_secs()
        );
        super::notify_stopping();
        stop.cancel();
    }
}

#[cfg(not(unix))]
async fn watch_signals(who: &'static str, stop: CancellationToken, _reload: mpsc::Sender<()>) {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        if stop.is_cancelled() {
            say!("{who}: interrupted again: exiting at once");
            std::process::exit(FORCED_EXIT);
        }
        say!("{who}: interrupted: ending connections gracefully; again to exit at once");
        stop.cancel();
    }
}
