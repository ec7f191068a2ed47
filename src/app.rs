//! The service wired together (row 4): metrics and probes, the transport check, the
//! output topics prepared and watched, then the pipeline — and a shutdown bounded by
//! `delivery.shutdown_timeout` whatever the brokers do. `cli` parses the command line and
//! calls [`run`]; the demo wires its own embedded cluster.

use crate::config::Settings;
use crate::error::{Failure, Fault};
use crate::kafka::{Context, TransportSecurityError};
use crate::pipeline::{self, records::Transform};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The multi-threaded runtime every command that talks to Kafka runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::world(e).context("cannot start the async runtime"))
}

/// Runs the filter, then shuts the runtime down without waiting on blocking work still
/// tied to a broker that does not answer (a commit or a client close during an outage):
/// the pipeline bounds every step by `delivery.shutdown_timeout` from the shutdown on,
/// and what it left running past that holds nothing to drain or commit.
/// `passthrough` (only with the `bench-passthrough` feature) forwards records unfiltered.
pub fn run(settings: Settings, passthrough: bool) -> Result<(), Failure> {
    let rt = runtime()?;
    let result = rt.block_on(serve(settings, passthrough));
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn serve(settings: Settings, passthrough: bool) -> Result<(), Failure> {
    let shutdown = crate::shutdown::install();
    let context = Context::default();
    let health = context.health.clone();
    // Metrics and probes first: /healthz answers while topics are prepared, and the
    // recorder is in place before the first event is counted.
    let handle = crate::telemetry::install(settings.policy.version())
        .map_err(|e| Failure::bug(e).context("cannot install the metrics recorder"))?;
    crate::telemetry::emit(crate::telemetry::events::DeliveryModeStarted(
        settings.guarantee,
    ));
    let stop_server = CancellationToken::new();
    let (_, server) = crate::telemetry::server::start(
        settings.metrics_listen,
        handle,
        context.health.clone(),
        shutdown.clone(),
        stop_server.clone(),
    )
    .await?;
    let result = start_and_run(settings, passthrough, context, shutdown).await;
    // The last scrape can still see the final counts while the pipeline drained.
    stop_server.cancel();
    // Bounded: a client holding its connection open does not hold the exit.
    let _ = tokio::time::timeout(Duration::from_millis(250), server).await;
    // A start that failed after TLS or SASL failed (a topic check timing out on a wrong
    // CA, say) says so, rather than "broker transport failure" — unless the failure is
    // already one the user must fix (a refused property, a TLS error named as such).
    match (result, health.transport_security_error()) {
        (Err(e), Some(reason)) if e.fault() != Fault::User => Err(TransportSecurityError {
            reason,
            source: Some(e.into_error()),
        }
        .into()),
        (result, _) => result,
    }
}

/// Checks the transport and prepares the topics, then runs the pipeline until `shutdown`
/// (a shutdown during the start ends it at once, nothing consumed).
async fn start_and_run(
    settings: Settings,
    passthrough: bool,
    context: Context,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    // The start's metadata and admin requests block for up to their timeouts when no
    // broker answers: run apart, so that a shutdown is acted on at once (exit 0,
    // nothing consumed yet) rather than when they give up.
    let mut start = tokio::spawn({
        let context = context.clone();
        async move {
            crate::kafka::check_transport(&settings, &context).await?;
            crate::topics::prepare(&settings, context.clone()).await?;
            Ok::<Settings, Failure>(settings)
        }
    });
    let settings = tokio::select! {
        biased;
        _ = shutdown.cancelled() => {
            start.abort();
            tracing::info!("stopped during the start: nothing consumed, nothing to commit");
            return Ok(());
        }
        r = &mut start => r.map_err(|e| Failure::bug(e).context("the start failed"))??,
    };
    let settings = Arc::new(settings);
    tokio::spawn(crate::topics::watch(
        settings.clone(),
        context.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(crate::topics::watch_inputs(
        settings.clone(),
        context.clone(),
        shutdown.clone(),
    ));
    // Readiness keeps the verdict `topics::prepare` published (and `topics::watch`
    // updates): not ready while an output topic is not compliant.
    let stats = Arc::new(crate::telemetry::Stats::default());
    let transform = Arc::new(transform(settings.clone(), passthrough));
    pipeline::run_with(settings, transform, shutdown, stats, context).await?;
    Ok(())
}

#[cfg(feature = "bench-passthrough")]
fn transform(settings: Arc<Settings>, passthrough: bool) -> Transform {
    if passthrough {
        tracing::warn!("pass-through benchmark mode: records are forwarded UNFILTERED");
        Transform::passthrough(settings)
    } else {
        Transform::new(settings)
    }
}

#[cfg(not(feature = "bench-passthrough"))]
fn transform(settings: Arc<Settings>, _passthrough: bool) -> Transform {
    Transform::new(settings)
}
