//! Shutdown: the first SIGTERM or SIGINT cancels a token that every task watches (stop
//! consuming, drain, flush, commit, exit); a second one exits at once.

use tokio_util::sync::CancellationToken;

/// Spawns the signal listener; returns the token it cancels.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let name = next_signal().await;
        tracing::info!(
            signal = name,
            "shutdown requested; a second signal exits at once"
        );
        t.cancel();
        let name = next_signal().await;
        tracing::warn!(signal = name, "second signal: exiting now without draining");
        std::process::exit(130);
    });
    token
}

#[cfg(unix)]
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
