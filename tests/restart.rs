//! A broker restart that loses the topics: the broker process is killed (SIGKILL) and
//! started again on the same port with an empty store; the topics are created again,
//! more input is produced. The running filter serves the revoke of its lost partitions
//! at once and is assigned partitions again within a bounded time (docs/runbook.md), and
//! logs the outage in a few lines, not one per reconnect.
//!
//! It runs a broker of its own (tansu on another port), so the other tests, which share
//! the test broker, are not disturbed; it is alone in this test binary because it points
//! the shared helpers at that broker through `CDR_TEST_BROKERS`.

mod common;

use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::{broker::OwnBroker, config::Topics, filter::Filter, io::Input};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the broker stays down.
const DOWN: Duration = Duration::from_secs(10);

/// The bound docs/runbook.md promises: partitions assigned again within this time of the
/// broker's return.
const REJOIN_BOUND: Duration = Duration::from_secs(30);

/// From librdkafka's session timeout (it hands the lost partitions' revoke to the
/// filter) to the filter's "partitions revoked" line, by the log's timestamps.
fn revoke_delay(lines: &[&str]) -> Option<Duration> {
    let at = |l: &str| {
        let stamp = l.split_whitespace().next()?;
        chrono::DateTime::parse_from_rfc3339(stamp).ok()
    };
    let timeout = lines.iter().position(|l| l.contains("SESSTMOUT"))?;
    let revoked = lines[timeout..]
        .iter()
        .find(|l| l.contains("partitions revoked"))?;
    let delay = at(revoked)? - at(lines[timeout])?;
    delay.to_std().ok()
}

fn inputs(seed: u64, n: usize) -> Vec<Input> {
    let mut g = Generator::new(seed, Utc::now());
    (0..n)
        .map(|_| Input::value(prost::Message::encode_to_vec(&g.next_event())))
        .collect()
}

/// `cdr-purpose-filter topics apply`: the output topics, as an operator creates them.
fn topics_apply(config: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["topics", "apply", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "topics apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_broker_restart_the_filter_consumes_again_within_a_bounded_time() {
    // Like every broker test, this one fails without the test broker's environment.
    let _ = common::broker::brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker_log = dir.path().join("tansu.log");
    let mut broker = OwnBroker::start(&broker_log, None);
    // Alone in this binary: no other test reads the variable concurrently.
    std::env::set_var(common::broker::BROKERS_ENV, &broker.advertised);
    let t = Topics::new("restart");
    common::broker::create_topics(&[&t.input], 3).await;
    let config = t.config_with(dir.path(), |c| {
        common::config::set(&mut c.kafka.properties, "socket.timeout.ms", "5000");
        // The producer learns that the output topics exist again at its next metadata
        // refresh: librdkafka's default interval is 5 minutes.
        common::config::set(
            &mut c.kafka.properties,
            "topic.metadata.refresh.interval.ms",
            "10000",
        );
    });
    common::io::produce(&t.input, &inputs(91, 2_000));
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    assert!(
        common::io::wait_for_records(&t.security, 100, Duration::from_secs(120)),
        "records flow before the restart; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let assigned = |text: &str| text.matches("partitions assigned").count();
    let text_before = std::fs::read_to_string(&log).unwrap();
    let lines_before = text_before.lines().count();
    // Counted before the restart: the filter may be assigned again while the topics are
    // created and the input produced, before the wait below starts.
    let before = assigned(&text_before);
    broker.restart(&broker_log, DOWN);
    let back = Instant::now();
    common::broker::create_topics(&[&t.input], 3).await;
    topics_apply(&config);
    common::io::produce(&t.input, &inputs(92, 2_000));

    // Consuming again: the partitions assigned anew after the broker's return. (The
    // outputs of this broker do not flow again in this process: tansu, restarted with an
    // empty store, answers UNKNOWN_PRODUCER_ID to every epoch the idempotent producer
    // bumps to, forever; Apache Kafka keeps its producer state, and a new process gets a
    // new producer id.)
    let deadline = back + REJOIN_BOUND;
    while assigned(&std::fs::read_to_string(&log).unwrap()) <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let consuming_after = back.elapsed();
    let exited = filter.wait(Duration::ZERO);
    let text = std::fs::read_to_string(&log).unwrap();
    let again = assigned(&text) > before;
    let outage: Vec<&str> = text.lines().skip(lines_before).collect();
    let minutes = (DOWN + consuming_after).as_secs_f64() / 60.0;
    let revoke_delay = revoke_delay(&outage);
    println!(
        "broker restart: down {DOWN:?}; partitions assigned again {consuming_after:?} after \
         its return ({again}); the lost partitions' revoke served {revoke_delay:?} after \
         librdkafka's session timeout; {} log lines from the restart ({:.1} per minute):\n{}",
        outage.len(),
        outage.len() as f64 / minutes,
        outage.join("\n")
    );
    assert_eq!(
        exited, None,
        "the filter survives the restart; log:\n{text}"
    );
    assert!(
        again,
        "not assigned again within {REJOIN_BOUND:?} of the broker's return; log:\n{text}"
    );
    // Served within its poll, not after the consumer-error pauses queued before it.
    let delay = revoke_delay.expect("a session timeout, then a revoke");
    assert!(
        delay <= Duration::from_secs(5),
        "the revoke was served {delay:?} after the session timeout; log:\n{text}"
    );
    assert!(
        outage
            .iter()
            .filter(|l| l.contains("all brokers are down"))
            .count()
            <= 1,
        "one line for the outage; log:\n{text}"
    );
    // The outputs held by tansu's producer-id loop are not acknowledged: the stop is
    // bounded by delivery.shutdown_timeout (30 s) and says what was not done (exit 1).
    filter.signal("TERM");
    let code = filter.wait(Duration::from_secs(32));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        code == Some(0) || (code == Some(1) && text.contains("shutdown deadline")),
        "exit {code:?}; log:\n{text}"
    );
}
