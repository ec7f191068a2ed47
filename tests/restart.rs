//! A broker restart that loses the topics: the broker process is killed (SIGKILL) and
//! started again on the same port with an empty store; the topics are created again,
//! more input is produced. The running filter consumes again within a bounded time
//! (docs/runbook.md), and logs the outage in a few lines, not one per reconnect.
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

/// The bound docs/runbook.md promises: consuming again within this time of the broker's
/// return (the group session, 45 s by default, plus a rejoin).
const REJOIN_BOUND: Duration = Duration::from_secs(60);

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
    });
    common::io::produce(&t.input, &inputs(91, 2_000));
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    assert!(
        common::io::wait_for_records(&t.security, 100, Duration::from_secs(120)),
        "records flow before the restart; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let lines_before = std::fs::read_to_string(&log).unwrap().lines().count();
    broker.restart(&broker_log, DOWN);
    let back = Instant::now();
    common::broker::create_topics(&[&t.input], 3).await;
    topics_apply(&config);
    common::io::produce(&t.input, &inputs(92, 2_000));

    // Consuming again: the first output of the new input, read from the new topic.
    let again = common::io::wait_for_records(&t.security, 1, REJOIN_BOUND);
    let consuming_after = back.elapsed();
    let exited = filter.wait(Duration::ZERO);
    let text = std::fs::read_to_string(&log).unwrap();
    let outage: Vec<&str> = text.lines().skip(lines_before).collect();
    let minutes = (DOWN + consuming_after).as_secs_f64() / 60.0;
    println!(
        "broker restart: down {DOWN:?}; consuming again {consuming_after:?} after its \
         return ({again}); {} log lines from the restart ({:.1} per minute):\n{}",
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
        "not consuming again within {REJOIN_BOUND:?} of the broker's return; log:\n{text}"
    );
    assert!(
        outage
            .iter()
            .filter(|l| l.contains("all brokers are down"))
            .count()
            <= 1,
        "one line for the outage; log:\n{text}"
    );
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
}
