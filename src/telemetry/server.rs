//! The HTTP side of telemetry, on `metrics.listen`: `/metrics` (Prometheus text format),
//! `/healthz` (liveness: the process serves) and `/readyz` (readiness: partitions
//! assigned, output topics verified, brokers reachable, not shutting down).
//!
//! Readiness gates nothing inside the filter; it tells Kubernetes and Prometheus whether
//! this instance is doing its job. Liveness stays 200 during a broker outage on purpose:
//! restarting the pod would not bring the brokers back.

use crate::health::Health;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct AppState {
    handle: PrometheusHandle,
    health: Arc<Health>,
    /// Cancelled when shutdown is requested: not ready while draining.
    shutdown: CancellationToken,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on metrics.listen = {addr}")]
pub struct ServerError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// A listen address that cannot be bound (in use, not this host's): at run time.
impl crate::error::Classify for ServerError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::World
    }
}

/// The reasons an instance is not ready; empty when it is.
pub fn not_ready_reasons(health: &Health, shutting_down: bool) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    if shutting_down {
        reasons.push("shutting down".into());
    }
    if !health
        .topics_verified
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        let bad = health
            .non_compliant_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join(", ");
        if bad.is_empty() {
            reasons.push("output topics not verified yet".into());
        } else {
            reasons.push(format!("output topics not compliant: {bad}"));
        }
    }
    if health
        .brokers_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        reasons.push("all brokers down".into());
    }
    let missing = health.missing_input_topics();
    if !missing.is_empty() {
        reasons.push(format!("input topics missing: {}", missing.join(", ")));
    }
    if !health.assigned.load(std::sync::atomic::Ordering::SeqCst) {
        reasons.push("no partitions assigned".into());
    }
    if let Some(s) = crate::health::seconds_since(&health.output_stalled_since) {
        reasons.push(format!(
            "stalled on its outputs for {s:.0}s (the producer's queue is full or \
             delivery.max_in_flight records await acknowledgement; input paused)"
        ));
    }
    reasons
}

/// Binds `addr` (so a taken port fails the start, not later), then serves until `stop`
/// is cancelled. Returns the bound address (useful with port 0) and the server task.
pub async fn start(
    addr: SocketAddr,
    handle: PrometheusHandle,
    health: Arc<Health>,
    shutdown: CancellationToken,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError { addr, source })?;
    // Histograms are drained into their buckets, and descriptions published, by upkeep.
    let upkeep = handle.clone();
    let upkeep_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = upkeep_stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
            }
        }
    });
    let state = AppState {
        handle,
        health,
        shutdown,
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok((bound, task))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let reasons = not_ready_reasons(&s.health, s.shutdown.is_cancelled());
    super::emit(super::events::HealthSampled {
        ready: reasons.is_empty(),
        health: &s.health,
    });
    super::process_sampled();
    s.handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.handle.render())
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let reasons = not_ready_reasons(&s.health, s.shutdown.is_cancelled());
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn ready_only_when_assigned_verified_and_brokers_up() {
        let h = Health::default();
        assert_eq!(
            not_ready_reasons(&h, false),
            vec!["output topics not verified yet", "no partitions assigned"]
        );
        h.topics_verified.store(true, Ordering::SeqCst);
        h.assigned.store(true, Ordering::SeqCst);
        assert!(not_ready_reasons(&h, false).is_empty());
        h.brokers_down.store(true, Ordering::SeqCst);
        assert_eq!(not_ready_reasons(&h, false), vec!["all brokers down"]);
        h.brokers_down.store(false, Ordering::SeqCst);
        assert_eq!(not_ready_reasons(&h, true), vec!["shutting down"]);
        h.output_stalled_since
            .store(crate::health::unix_millis() - 3000, Ordering::SeqCst);
        let reasons = not_ready_reasons(&h, false);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("stalled on its outputs for 3s"),
            "{reasons:?}"
        );
        h.output_stalled_since.store(0, Ordering::SeqCst);
        h.topics_verified.store(false, Ordering::SeqCst);
        *h.non_compliant_topics.lock().unwrap() = vec!["cdr.billing".into()];
        assert_eq!(
            not_ready_reasons(&h, false),
            vec!["output topics not compliant: cdr.billing"]
        );
    }
}
