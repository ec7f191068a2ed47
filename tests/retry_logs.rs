//! The log volume of refused deliveries: an output topic the brokers refuse (here: the
//! filter's principal not authorized on billing) while input keeps coming at 50 events/s.
//! Every batch of the stuck records retries on its own; the log must not grow with the
//! number of batches: failed deliveries (and records the client refuses to enqueue for
//! now) are logged for the whole process — one line at once, then one line summing the
//! retries after 1, 2, 4, 8, 16 s, then every 30 s. The old log wrote one line per batch
//! and attempt, and one per stuck record and second.
//!
//! On librdkafka's mock cluster (in this process, over TCP): tansu acknowledges writes to
//! a deleted topic and has no ACLs, so it cannot refuse a write. Once the refusal is
//! lifted, everything consumed is delivered and committed.

mod common;

use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::filter::Filter;
use common::mock::{Mock, BILLING};
use rdkafka::types::RDKafkaRespErr;
use std::time::{Duration, Instant};

const GROUP: &str = "retry-logs";
/// How long the output is refused while input comes.
const WINDOW: Duration = Duration::from_secs(40);
const RATE: u64 = 50;

#[test]
fn refused_deliveries_log_a_few_lines_a_minute_whatever_the_number_of_batches() {
    let mock = Mock::new(1);
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), GROUP, |_| {});
    let log = dir.path().join("filter.log");
    mock.cluster
        .topic_error(
            BILLING,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let mut filter = Filter::start(&config, &log);
    assert!(
        filter.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
        "never assigned; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let lines_before = std::fs::read_to_string(&log).unwrap().lines().count();

    // 50 events/s for the window, a few at a time: many small batches.
    let mut g = Generator::new(6, Utc::now());
    let start = Instant::now();
    let mut loaded = 0u64;
    while start.elapsed() < WINDOW {
        let due = (start.elapsed().as_millis() as u64 * RATE / 1000).saturating_sub(loaded);
        if due > 0 {
            let events: Vec<_> = (0..due).map(|_| g.next_event()).collect();
            mock.load(&events, 1);
            loaded += due;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().skip(lines_before).collect();
    let warnings: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    let per_minute = warnings.len() as f64 * 60.0 / elapsed.as_secs_f64();
    println!(
        "{loaded} events in {elapsed:?} with billing refused: {} WARN/ERROR lines \
         ({per_minute:.1} a minute), {} lines in all:\n{}",
        warnings.len(),
        lines.len(),
        lines.join("\n")
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("retrying") && l.contains("Broker: Topic authorization failed")),
        "the refusal is logged with its reason:\n{}",
        lines.join("\n")
    );
    // At once, then after 1, 2, 4, 8, 16 and 30 s: 7 lines in 40 s; a few more for the
    // start of the episode and the clients' own lines.
    assert!(
        warnings.len() <= 15,
        "{} WARN/ERROR lines in {elapsed:?}:\n{}",
        warnings.len(),
        lines.join("\n")
    );

    // The refusal lifted: everything consumed is delivered and committed.
    mock.cluster
        .topic_error(BILLING, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while mock.committed(GROUP, 1) < loaded as i64 {
        assert!(
            Instant::now() < deadline,
            "not every record committed after the refusal was lifted ({} of {loaded}); log:\n{}",
            mock.committed(GROUP, 1),
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
}
