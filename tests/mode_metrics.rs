//! Which delivery guarantee runs, on `/metrics`: `cdr_delivery_mode{mode}` (the dashboard's
//! *Delivery mode*), and under exactly-once the transaction metrics the dashboard and the
//! alerts read exported at 0 from the start — before the first transaction, not from it.
//! At least once there are no transactions and no transaction metrics.
//!
//! On librdkafka's mock cluster (in this process, over TCP): it runs the transactional
//! protocol, which tansu does not.

mod common;

use cdr_purpose_filter::config::Guarantee;
use common::filter::{http_get, Filter};
use common::mock::Mock;
use std::time::{Duration, Instant};

/// The filter's `/metrics` once it has partitions (no input: no transaction yet).
fn scrape_when_assigned(guarantee: Guarantee) -> String {
    let mock = Mock::new(1);
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), "mode-metrics", |c| {
        c.delivery.guarantee = guarantee;
        if guarantee == Guarantee::ExactlyOnce {
            c.delivery.transactional_id = Some("mode-metrics".into());
        }
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let addr = filter.http_address(&log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !filter.wait_for_log(&log, "partitions assigned", Duration::from_millis(200)) {
        assert!(
            Instant::now() < deadline,
            "never assigned; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
    }
    let (status, body) = http_get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
    body
}

fn samples<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name))
        .collect()
}

#[test]
fn exactly_once_exports_its_mode_and_the_transaction_metrics_at_zero_from_the_start() {
    let body = scrape_when_assigned(Guarantee::ExactlyOnce);
    for line in [
        "cdr_delivery_mode{mode=\"exactly_once\"} 1",
        "cdr_transactions_in_flight 0",
        "cdr_transactions_committed_total 0",
        "cdr_transactions_aborted_total 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} not in /metrics:\n{}",
            samples(&body, "cdr_").join("\n")
        );
    }
    assert!(samples(&body, "cdr_delivery_mode").len() == 1, "one mode");
}

#[test]
fn at_least_once_exports_its_mode_and_no_transaction_metrics() {
    let body = scrape_when_assigned(Guarantee::AtLeastOnce);
    assert_eq!(
        samples(&body, "cdr_delivery_mode"),
        vec!["cdr_delivery_mode{mode=\"at_least_once\"} 1"]
    );
    assert!(samples(&body, "cdr_transactions_").is_empty(), "{body}");
}
