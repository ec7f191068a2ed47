//! A hung broker is seen with the filter's default client settings: the broker process
//! is frozen (SIGSTOP) — its connections stay open, nothing answers — and `/readyz`
//! turns 503 and `cdr_kafka_brokers_down` 1 within the bound the documentation gives
//! (docs/runbook.md, *A frozen or hung broker*), without any timeout in the
//! configuration. librdkafka's own defaults (a 60 s request timeout, a 45 s session)
//! kept the filter "ready" for the 45 s of the freeze.
//!
//! It freezes a broker of its own (tansu on another port), so the other tests are not
//! disturbed; it is alone in this test binary because it points the shared helpers at
//! that broker through `CDR_TEST_BROKERS`.

mod common;

use common::{broker::OwnBroker, config::Topics, filter::Filter, io::Input};
use std::time::{Duration, Instant};

/// How long the broker stays frozen: as long as librdkafka's default group session.
const FREEZE: Duration = Duration::from_secs(45);
/// The documented bound for readiness to turn 503 (about 10 s measured; generous for a
/// shared machine).
const BOUND: Duration = Duration::from_secs(25);

/// The value of a sample of the filter's `/metrics` (the first whose name and labels
/// start with `series`).
fn sample(addr: std::net::SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = common::filter::http_get(addr, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_broker_turns_readiness_503_within_the_documented_bound_by_default() {
    let _ = common::broker::brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker = OwnBroker::start(&dir.path().join("tansu.log"), None);
    // Alone in this binary: no other test reads the variable concurrently.
    std::env::set_var(common::broker::BROKERS_ENV, &broker.advertised);

    let t = Topics::new("hung");
    common::broker::create_topics(&[&t.input], 2).await;
    // The filter's defaults: no socket, session or metadata setting (the tests' usual
    // 6 s session is taken out).
    let config = t.config_with(dir.path(), |c| {
        c.kafka.consumer_properties.remove("session.timeout.ms");
    });
    let text = std::fs::read_to_string(&config).unwrap();
    for key in [
        "socket.timeout.ms",
        "session.timeout.ms",
        "topic.metadata.refresh.interval.ms",
    ] {
        assert!(!text.contains(key), "{key} configured:\n{text}");
    }

    let mut g = cdr_purpose_filter::gen::Generator::new(7, chrono::Utc::now());
    let inputs: Vec<Input> = (0..200)
        .map(|_| Input::value(prost::Message::encode_to_vec(&g.next_event())))
        .collect();
    common::io::produce(&t.input, &inputs);

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let addr = filter.http_address(&log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::filter::http_get(addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "never ready; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        common::io::wait_for_records(&t.security, 10, Duration::from_secs(60)),
        "records flow before the freeze"
    );
    assert_eq!(sample(addr, "cdr_kafka_brokers_down"), Some(0.0));

    broker.pause();
    let frozen = Instant::now();
    let mut not_ready: Option<(Duration, String)> = None;
    let mut brokers_down: Option<Duration> = None;
    while frozen.elapsed() < FREEZE && (not_ready.is_none() || brokers_down.is_none()) {
        if let Some((503, body)) = common::filter::http_get(addr, "/readyz") {
            not_ready.get_or_insert((frozen.elapsed(), body.trim().to_string()));
        }
        if sample(addr, "cdr_kafka_brokers_down") == Some(1.0) {
            brokers_down.get_or_insert(frozen.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Samples through the rest of the freeze: still not ready, brokers still down.
    let (mut ready_during, mut up_during) = (0, 0);
    while frozen.elapsed() < FREEZE {
        if common::filter::http_get(addr, "/readyz").map(|r| r.0) == Some(200) {
            ready_during += 1;
        }
        if brokers_down.is_some() && sample(addr, "cdr_kafka_brokers_down") == Some(0.0) {
            up_during += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    broker.resume();
    println!(
        "broker frozen {FREEZE:?}: /readyz 503 after {:?} ({}); cdr_kafka_brokers_down 1 after \
         {brokers_down:?}; later in the freeze /readyz answered 200 {ready_during} times, \
         cdr_kafka_brokers_down was 0 {up_during} times",
        not_ready.as_ref().map(|n| n.0),
        not_ready.as_ref().map_or("", |n| n.1.as_str()),
    );
    let (after, body) = not_ready.unwrap_or_else(|| {
        panic!(
            "/readyz stayed 200 through a {FREEZE:?} freeze; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        )
    });
    assert!(
        after <= BOUND,
        "503 only after {after:?} (bound {BOUND:?}): {body}"
    );
    let down = brokers_down.expect("cdr_kafka_brokers_down turned 1 during the freeze");
    assert!(
        down <= BOUND,
        "cdr_kafka_brokers_down 1 only after {down:?}"
    );
    // Not ready for the rest of the freeze: an idle client's connection that no request
    // timed out on does not make the brokers "reachable again".
    assert_eq!(
        ready_during,
        0,
        "/readyz answered 200 again during the freeze; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(
        up_during,
        0,
        "cdr_kafka_brokers_down went back to 0 during the freeze; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(filter.wait(Duration::ZERO), None, "the filter survives");
}
