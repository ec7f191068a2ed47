//! Shutdown: the first SIGTERM or SIGINT cancels a token that every task watches (stop
//! consuming, drain, flush, commit, exit); a second one exits at once (130).
//!
//! Both handlers are installed when the filter starts, before anything else runs: a
//! second signal is never lost to a handler not yet installed.

use tokio_util::sync::CancellationToken;

/// Installs the signal handlers and spawns their listener; returns the token it
/// cancels. Must be called inside the runtime.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "shutdown requested; a second signal exits at once"
        );
        t.cancel();
        let name = signals.next().await;
        tracing::warn!(signal = name, "second signal: exiting now without draining");
        std::process::exit(130);
    });
    token
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Signals {
        Signals
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
