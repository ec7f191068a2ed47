//! A broker outage: the broker process is frozen (SIGSTOP) for four times the clients'
//! request timeout, then thawed (SIGCONT). (Not longer than the consumer group's session
//! timeout: see the configuration below for why, on this test broker.) The filter recovers by itself, loses
//! nothing, reports not-ready on `/readyz` during the outage, and logs the outage in a
//! few lines — one per change of state, not one per retry.
//!
//! It freezes a broker of its own (tansu on another port), so the other tests, which
//! share the test broker, are not disturbed; it is alone in this test binary because it
//! points the shared helpers at that broker through `CDR_TEST_BROKERS`.

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::Outcome;
use chrono::Utc;
use common::{broker::OwnBroker, config::Topics, filter::Filter, io::Input};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Four times the socket timeout set below (5 s): every request in flight times out,
/// every connection is dropped and retried, during the outage.
const OUTAGE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_broker_is_survived_without_loss_or_a_flood_of_logs() {
    // Like every broker test, this one fails without the test broker's environment.
    let _ = common::broker::brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker_log = std::env::var("OUTAGE_TANSU_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("tansu.log"));
    let broker = OwnBroker::start(&broker_log, None);
    // Alone in this binary: no other test reads the variable concurrently.
    std::env::set_var(common::broker::BROKERS_ENV, &broker.advertised);

    let t = Topics::new("outage");
    common::broker::create_topics(&[&t.input], 2).await;
    // librdkafka notices a silent broker when a request times out: 5 s instead of 60.
    // The group session (45 s, Kafka's default) outlives the outage: on tansu, an outage
    // longer than the session leaves the group unable to re-form (its coordinator expires
    // each new member id before the group syncs, round after round; Apache Kafka
    // re-forms it), which would test tansu rather than the filter.
    let config = t.config_with(dir.path(), |c| {
        common::config::set(&mut c.kafka.properties, "socket.timeout.ms", "5000");
        common::config::set(
            &mut c.kafka.consumer_properties,
            "session.timeout.ms",
            "45000",
        );
    });

    let mut g = Generator::new(81, Utc::now());
    let events: Vec<_> = (0..40_000).map(|_| g.next_event()).collect();
    let inputs: Vec<Input> = events
        .iter()
        .map(|e| Input::value(prost::Message::encode_to_vec(e)))
        .collect();
    // Half before the outage, half after it.
    common::io::produce(&t.input, &inputs[..20_000]);
    let settings = config::load(&config).unwrap();
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &events {
        for (p, o) in settings.policy.apply(e, Utc::now()).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                want.entry(settings.topic_of(p).unwrap().to_string())
                    .or_default()
                    .insert(e.event_id.clone());
            }
        }
    }

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let addr = filter.http_address(&log);
    // Ready and flowing before the outage.
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::filter::http_get(addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "never ready before the outage");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        common::io::wait_for_records(&t.security, 1000, Duration::from_secs(60)),
        "records flow before the outage"
    );

    let lines_before = std::fs::read_to_string(&log).unwrap().lines().count();
    broker.pause();
    let paused = Instant::now();
    let mut not_ready = None;
    while paused.elapsed() < OUTAGE {
        if let Some((503, body)) = common::filter::http_get(addr, "/readyz") {
            not_ready.get_or_insert((paused.elapsed(), body));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        filter.wait(Duration::ZERO),
        None,
        "the filter survives the outage"
    );
    broker.resume();
    let resumed = Instant::now();

    // Recovers by itself: ready again, then the rest of the input flows.
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::filter::http_get(addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "not ready again within 2 minutes of the broker's return; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let ready_again = resumed.elapsed();
    common::io::produce(&t.input, &inputs[20_000..]);
    let mut report = Vec::new();
    for topic in [&t.billing, &t.security] {
        let wanted = &want[topic.as_str()];
        let records = common::io::read_keys(topic, wanted, Duration::from_secs(240));
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = common::checks::at_least_once(topic, wanted, &records);
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing}",
            wanted.len()
        ));
        assert_eq!(missing, 0, "{topic}: records lost in the outage");
    }

    // The outage ends once the brokers stayed reachable for 30 s: its second line.
    assert!(
        filter.wait_for_log(&log, "brokers reachable again", Duration::from_secs(90)),
        "the recovery is logged"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let outage_lines: Vec<&str> = text.lines().skip(lines_before).collect();
    let warnings: Vec<&&str> = outage_lines
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    println!(
        "outage: {} events; broker frozen {OUTAGE:?}; /readyz not ready after {:?} ({}); \
         ready again {ready_again:?} after the broker's return; {} log lines from the \
         outage to the end ({} warnings or errors):\n{}\n{}",
        events.len(),
        not_ready.as_ref().map(|n| n.0),
        not_ready.as_ref().map_or("", |n| n.1.trim()),
        outage_lines.len(),
        warnings.len(),
        outage_lines.join("\n"),
        report.join("; ")
    );
    let (_, body) = not_ready.expect("/readyz reported not ready during the outage");
    assert!(body.contains("not ready"), "{body}");
    assert!(
        outage_lines
            .iter()
            .any(|l| l.contains("all brokers are down")),
        "the outage is logged"
    );
    assert!(
        outage_lines
            .iter()
            .any(|l| l.contains("brokers reachable again")),
        "the recovery is logged"
    );
    // One line per change of state (per client and broker connection), not one per
    // retry: a 20 s outage with retries every few hundred ms would print hundreds.
    assert!(
        warnings.len() <= 25,
        "{} warnings and errors for one outage",
        warnings.len()
    );
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
}
