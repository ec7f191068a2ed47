//! Liveness under back-pressure, on librdkafka's mock cluster (in this process, reachable
//! over TCP by the filter binary; no test broker needed): outputs that the broker does
//! not acknowledge for longer than `max.poll.interval.ms` leave the member in its group
//! (its consumer is still polled, its partitions paused), and the filter says it is
//! stalled on its outputs — on `/readyz` and in `cdr_output_stalled`.

mod common;

use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::config::set;
use common::filter::{http_get, Filter};
use common::mock::Mock;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::time::{Duration, Instant};

const GROUP: &str = "liveness-stall";
const OLDEST: &str = "cdr_oldest_unacknowledged_input_age_seconds";
const SINCE_PROGRESS: &str = "cdr_last_progress_age_seconds";

/// The value of an unlabelled gauge in a Prometheus scrape.
fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every produce request refused (a retriable error) for 20 s, three times the
/// consumer's `max.poll.interval.ms` (6 s): the filter takes no more input but stays in
/// the group — no "maximum poll interval exceeded", no revoke, no replay — says it is
/// stalled, and once the broker takes writes again every input is committed.
#[test]
fn outputs_stalled_past_max_poll_interval_keep_the_member_in_its_group() {
    let mock = Mock::new(2);
    let mut g = Generator::new(41, Utc::now());
    let events: Vec<_> = (0..2_000).map(|_| g.next_event()).collect();
    mock.load(&events, 2);
    mock.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 100_000],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), GROUP, |c| {
        c.delivery.max_in_flight = 100;
        let p = &mut c.kafka.consumer_properties;
        set(p, "session.timeout.ms", "6000");
        set(p, "heartbeat.interval.ms", "1000");
        set(p, "max.poll.interval.ms", "6000");
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let addr = filter.http_address(&log);
    assert!(
        filter.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
        "{}",
        text()
    );
    let stalled_at = Instant::now();
    let mut said_stalled = None;
    // The largest age of the oldest unacknowledged input, and of the last progress, seen.
    let (mut waiting, mut idle) = (0.0f64, 0.0f64);
    while stalled_at.elapsed() < Duration::from_secs(20) {
        let scrape = http_get(addr, "/metrics").map(|r| r.1).unwrap_or_default();
        waiting = waiting.max(gauge(&scrape, OLDEST).unwrap_or(0.0));
        idle = idle.max(gauge(&scrape, SINCE_PROGRESS).unwrap_or(0.0));
        if let Some((503, body)) = http_get(addr, "/readyz") {
            if body.contains("stalled on its outputs") {
                said_stalled.get_or_insert((body, gauge(&scrape, "cdr_output_stalled")));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    mock.cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let deadline = Instant::now() + Duration::from_secs(60);
    while mock.committed(GROUP, 2) < 2_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let committed = mock.committed(GROUP, 2);
    let scrape = http_get(addr, "/metrics").map(|r| r.1).unwrap_or_default();
    let after = (gauge(&scrape, OLDEST), gauge(&scrape, SINCE_PROGRESS));
    // Before the shutdown, which revokes.
    let text = text();
    filter.signal("TERM");
    let code = filter.wait(Duration::from_secs(30));
    let (body, gauge) = said_stalled
        .unwrap_or_else(|| panic!("/readyz never said the filter is stalled; log:\n{text}"));
    println!(
        "while stalled: /readyz {}; cdr_output_stalled {gauge:?}",
        body.trim()
    );
    assert_eq!(gauge, Some(1.0), "cdr_output_stalled while stalled");
    // Input waits and nothing moves: both ages grow past 10 s of the 20 s stall (the
    // wedged-consumer alert's inputs); once everything is acknowledged, none waits.
    println!(
        "while stalled: oldest unacknowledged {waiting}s, since progress {idle}s; after: {after:?}"
    );
    assert!(waiting >= 10.0, "{OLDEST} reached {waiting}");
    assert!(idle >= 10.0, "{SINCE_PROGRESS} reached {idle}");
    assert_eq!(after.0, Some(0.0), "{OLDEST} once all is acknowledged");
    assert!(
        after.1.is_some_and(|s| s < 10.0),
        "{SINCE_PROGRESS} after: {after:?}"
    );
    assert!(
        !text.contains("maximum poll interval"),
        "the member left its group while stalled; log:\n{text}"
    );
    assert!(
        !text.contains("partitions revoked"),
        "the partitions were revoked while stalled; log:\n{text}"
    );
    assert_eq!(committed, 2_000, "every input committed; log:\n{text}");
    assert_eq!(code, Some(0), "clean stop; log:\n{text}");
}
