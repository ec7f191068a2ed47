//! The last lines of a shutdown say what was done: on librdkafka's mock cluster (no test
//! broker needed), a broker that refuses every write, then SIGTERM.

mod common;

use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::filter::Filter;
use common::mock::Mock;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::time::Duration;

/// Every output refused (a retriable error, again and again) and SIGTERM: nothing
/// completed, so nothing was committed — the shutdown line says so, not "offsets
/// committed" — and the exit is 1 with the shutdown-deadline line.
#[test]
fn a_shutdown_with_nothing_acknowledged_does_not_claim_a_commit() {
    let mock = Mock::new(1);
    let mut g = Generator::new(3, Utc::now());
    let events: Vec<_> = (0..50).map(|_| g.next_event()).collect();
    mock.load(&events, 1);
    mock.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 5000],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), "shutdown-line", |c| {
        c.delivery.shutdown_timeout = "3s".into();
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        filter.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
        "{}",
        text()
    );
    // Time to consume the 50 records and send their outputs (all refused).
    std::thread::sleep(Duration::from_secs(3));
    filter.signal("TERM");
    let signalled = std::time::Instant::now();
    let code = filter.wait(Duration::from_secs(60));
    let took = signalled.elapsed();
    let text = text();
    assert_eq!(
        code,
        Some(1),
        "the outputs were not acknowledged; log:\n{text}"
    );
    // From SIGTERM to exit: at most delivery.shutdown_timeout + 2 s, whatever the
    // broker does.
    println!("SIGTERM with every write refused, delivery.shutdown_timeout 3s: exit after {took:?}");
    assert!(
        took <= Duration::from_secs(5),
        "exit {took:?} after SIGTERM, more than delivery.shutdown_timeout (3s) + 2s; log:\n{text}"
    );
    let stopped = text
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("a stopped line; log:\n{text}"));
    println!("{stopped}");
    assert!(stopped.contains("completed=0"), "{stopped}");
    assert!(
        !stopped.contains("offsets committed"),
        "no commit happened: {stopped}"
    );
    assert!(stopped.contains("no offsets to commit"), "{stopped}");
    assert!(mock.committed("shutdown-line", 1) == 0, "nothing committed");
}

/// Exactly once, nothing to consume, SIGTERM: exit 0, and the shutdown line does not
/// claim a transaction that never ran.
#[test]
fn an_exactly_once_shutdown_with_nothing_consumed_does_not_claim_a_transaction() {
    let mock = Mock::new(1);
    mock.load(&[], 1);
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), "shutdown-line-eos", |c| {
        c.delivery.guarantee = cdr_purpose_filter::config::Guarantee::ExactlyOnce;
        c.delivery.transactional_id = Some("shutdown-line-eos".into());
        c.delivery.shutdown_timeout = "3s".into();
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        filter.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
        "{}",
        text()
    );
    filter.signal("TERM");
    let code = filter.wait(Duration::from_secs(60));
    let text = text();
    assert_eq!(code, Some(0), "log:\n{text}");
    let stopped = text
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("a stopped line; log:\n{text}"));
    assert!(stopped.contains("completed=0"), "{stopped}");
    assert!(stopped.contains("no transaction to commit"), "{stopped}");
}
